import { endTime, startTime } from 'hono/timing';
import { targetLabel } from '../../registry/model-catalog.repository.ts';
import { latestPipelineRun, latestRunOutcomes } from '../../registry/pipeline-runs.repository.ts';
import { driftSource, evaluationData, funnelSource, MODEL_CHARTS, modelCharts } from '../chart-sources.ts';
import { ModelPage, NoChampionPage } from '../model.page.tsx';
import { categoryExists, findProduct, topScored } from '../model.repository.ts';
import { chartSlots, errorPage, type UiApp, type UiRouteDeps, viewerOf } from '../ui-env.tsx';
import { chartSrc } from './model-charts.get.tsx';
import { headOf, resolveTarget } from './model-target.ts';

const TOP_PEOPLE = 5;

/** GET /ui/models/:target: one model, its figures and charts; or why it has no live model. */
export function registerModelPage(ui: UiApp, { reviewers, charts }: UiRouteDeps): void {
  ui.get('/models/:target', reviewers, async (c) => {
    startTime(c, 'db', 'database');
    const resolved = await resolveTarget(c);
    if (resolved instanceof Response) return resolved;
    const { target, record } = resolved;
    const label = targetLabel(target);
    const outcome = (await latestRunOutcomes(c.var.db, label)).get(label) ?? null;
    const viewer = viewerOf(c)!;

    if (!record?.champion) {
      let name: string | null = record?.productName ?? null;
      if (!record) {
        const known =
          target.kind === 'product'
            ? await findProduct(c.var.db, target.key)
            : target.kind === 'category'
              ? (await categoryExists(c.var.db, target.key)) || null
              : true;
        if (!known && !outcome) {
          return errorPage(c, 404, 'No such model', `No model, product or category is named “${label}”. The overview lists every model.`);
        }
        if (known && typeof known === 'object') name = known.name;
      }
      const latest = record?.history[record.history.length - 1] ?? null;
      const run = await latestPipelineRun(c.var.db);
      endTime(c, 'db');
      const status = outcome?.status === 'not eligible' || !latest ? 'not enough data' : 'rejected';
      const reason =
        outcome?.status === 'not eligible'
          ? `The latest run, #${outcome.runId}, did not model it: ${outcome.reason}.`
          : latest
            ? `v${latest.version} was not promoted: ${latest.decisionReason ?? 'no reason recorded'}.`
            : outcome
              ? `The latest run, #${outcome.runId}: ${outcome.reason}.`
              : 'No run has modelled it yet.';
      const minPositives = run?.params.minPositives;
      const rules =
        typeof minPositives === 'number'
          ? `A target is modelled when at least ${minPositives} people bought it in each of the two latest ${run?.horizonDays ?? ''}-day windows before a run (and at least ${String(run?.params.minNegatives ?? '')} did not).`
          : null;
      const slots =
        record && record.history.length > 0
          ? chartSlots(c, charts, [MODEL_CHARTS.history.draw({ history: record.history })], chartSrc(target))
          : [];
      return c.html(
        <NoChampionPage
          viewer={viewer}
          target={target}
          name={name}
          record={record}
          status={status}
          reason={reason}
          rules={rules}
          charts={slots}
        />,
      );
    }

    const champion = record.champion;
    const metrics = champion.metrics;
    const evaluation = evaluationData(metrics, champion.baselineMetrics);
    const trainingBuyers = metrics.trainingWindow?.buyers ?? null;

    const head = headOf(record);
    const [drift, funnel, top] = [
      await driftSource(c.var.db, head),
      await funnelSource(c.var.db, head),
      record.liveSet ? await topScored(c.var.db, record.liveSet.id, TOP_PEOPLE) : [],
    ];
    endTime(c, 'db');

    const slots = chartSlots(c, charts, modelCharts({ evaluation, history: record.history, drift, funnel }), chartSrc(target));

    return c.html(
      <ModelPage
        viewer={viewer}
        record={record}
        outcome={outcome}
        charts={slots}
        evaluation={{
          model: evaluation.model,
          rfm: evaluation.rfm,
          bgnbd: evaluation.bgnbd,
          window: metrics.evaluationWindow,
        }}
        buyers={{
          count: trainingBuyers ?? evaluation.model?.positives ?? null,
          window: trainingBuyers !== null ? 'training' : evaluation.model?.positives != null ? 'evaluation' : null,
        }}
        drift={drift.drift}
        driftNote={drift.note}
        funnel={funnel}
        top={top}
        judged={{ design: metrics.evaluationDesign, interval: metrics.aucInterval, candidates: metrics.candidates, margin: metrics.margin }}
      />,
    );
  });
}
