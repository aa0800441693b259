import type { Kysely } from 'kysely';
import { PSI_THRESHOLD } from '../../models/drift.ts';
import type { Database } from '../db/database.ts';
import type { BaselineMetrics, GainsInput, RocInput, StoredEvaluation, VersionMetrics } from '../registry/model-metrics.ts';
import { runConsentFunnel, type StageTiming } from '../registry/pipeline-runs.repository.ts';
import type { Chart, Series } from './charts/chart.ts';
import {
  gainsChart,
  importanceChart,
  liftChart,
  type RocSeries,
  reliabilityChart,
  rocChart,
  scoreDistributionChart,
} from './charts/evaluation.specs.ts';
import {
  driftChart,
  funnelChart,
  type HistoryInput,
  historyChart,
  runDurationsChart,
  stageDurationsChart,
} from './charts/monitoring.specs.ts';
import { type ModelChartHead, scoreSetProfile, storedEvaluation, trainingBins, versionHistory } from './model.repository.ts';
import { computeDrift, type FeatureDrift, type FunnelView, funnelView } from './review.service.ts';

/*
 * Where each chart of the review pages gets its data. A page builds every chart's spec (cheap:
 * no drawing) to write its <img> and alternative text; each chart is then drawn by its own
 * request, which reads only the source that chart needs. Both go through the functions here,
 * so a chart's image and the page's description of it come from the same data.
 */

/** Where a chart would be, when there is nothing to draw: the reason, shown instead. */
export interface MissingChart {
  missing: { id: string; title: string; reason: string };
}

export type ChartEntry = Chart | MissingChart;

export const missingChart = (id: string, title: string, reason: string): MissingChart => ({ missing: { id, title, reason } });

/** A chart without a single data point is not drawn either. */
function entry(chart: Chart): ChartEntry {
  return chart.points === 0 ? missingChart(chart.id, chart.title, 'No data point to draw.') : chart;
}

const NOT_RECORDED = 'not recorded for this version (trained before the review pages stored it); the next run records it';

// ---- sources of a model's charts ---------------------------------------------------------------

export type { StoredEvaluation } from '../registry/model-metrics.ts';

/** The stored evaluation of a version: its own, both baselines', and the permutation importance. */
export interface EvaluationData {
  model: StoredEvaluation | null;
  rfm: StoredEvaluation | null;
  bgnbd: StoredEvaluation | null;
  importance: Array<{ group: string; aucDrop: number | null }> | null;
}

/** The evaluation out of a version's metrics and baseline metrics, as the typed readers read them. */
export function evaluationData(
  metrics: Pick<VersionMetrics, 'evaluation' | 'importance'>,
  baselineMetrics: BaselineMetrics,
): EvaluationData {
  return { model: metrics.evaluation, rfm: baselineMetrics.rfm, bgnbd: baselineMetrics.bgnbd, importance: metrics.importance };
}

/**
 * A baseline's ROC points at its decile cut-offs, from its gains table: selecting the top share
 * q of people reaches the share g of buyers (the true positive rate), and q·n − g·P non-buyers,
 * so the false positive rate is (q − g·b) / (1 − b) with b the base rate. Exact at each cut-off;
 * the pipelines store a baseline's full curve only when it wins.
 */
export function rocAtDeciles(gains: readonly GainsInput[] | undefined, baseRate: number | null | undefined): RocInput[] {
  if (!gains?.length || baseRate == null || !(baseRate > 0 && baseRate < 1)) return [];
  const points: RocInput[] = [{ falsePositiveRate: 0, truePositiveRate: 0 }];
  let selected = 0;
  for (const row of gains) {
    selected += row.populationShare;
    if (!Number.isFinite(row.cumulativeGain)) return [];
    const fpr = (selected - row.cumulativeGain * baseRate) / (1 - baseRate);
    points.push({ falsePositiveRate: Math.min(1, Math.max(0, fpr)), truePositiveRate: Math.min(1, Math.max(0, row.cumulativeGain)) });
  }
  const last = points[points.length - 1]!;
  if (last.falsePositiveRate < 1 - 1e-9 || last.truePositiveRate < 1 - 1e-9) points.push({ falsePositiveRate: 1, truePositiveRate: 1 });
  return points;
}

/** The ROC curves of a version: the model's, and each baseline's (its full curve when stored, else its decile cut-offs). */
export function rocSeries(e: EvaluationData): RocSeries[] {
  const series: RocSeries[] = [{ series: 'model', points: e.model?.curves?.roc ?? [], auc: e.model?.rocAuc ?? null, resolution: 'curve' }];
  for (const [name, baseline] of [
    ['RFM', e.rfm],
    ['BG/NBD', e.bgnbd],
  ] as Array<[Series, StoredEvaluation | null]>) {
    if (!baseline) continue;
    const full = baseline.curves?.roc ?? [];
    const points = full.length > 0 ? full : rocAtDeciles(baseline.gains, baseline.baseRate);
    if (points.length > 0)
      series.push({ series: name, points, auc: baseline.rocAuc ?? null, resolution: full.length > 0 ? 'curve' : 'deciles' });
  }
  return series;
}

export interface DriftData {
  /** PSI per feature, most shifted first */
  drift: FeatureDrift[];
  /** why there is no drift to show, when there is none */
  note: string | null;
}

/** Drift of the champion's inputs: its training sample's bins against the population it scored. */
export async function driftSource(db: Kysely<Database>, head: ModelChartHead): Promise<DriftData> {
  const { champion, live } = head;
  const training = champion?.networkId ? await trainingBins(db, champion.networkId) : null;
  const scored = live ? await scoreSetProfile(db, live.id) : null;
  const drift = computeDrift(training ?? undefined, scored?.bins);
  const note = !live
    ? 'No live scores from this version: nothing to compare the training population with.'
    : drift.length === 0
      ? 'No feature profile of the scored population was recorded with these scores (scored before drift was recorded): the next run records it.'
      : null;
  return { drift, note };
}

/** The consent funnel recorded by the run that scored the champion's live set. */
export async function funnelSource(db: Kysely<Database>, head: ModelChartHead): Promise<FunnelView | null> {
  const recorded = head.live?.runId ? await runConsentFunnel(db, head.live.runId) : null;
  return funnelView(recorded, head.champion?.populationSize ?? null, head.live?.rowCount ?? null);
}

/** Everything a model page's charts are drawn from. */
export interface ModelChartData {
  evaluation: EvaluationData;
  history: readonly HistoryInput[];
  drift: DriftData;
  funnel: FunnelView | null;
}

export type ModelChartSource = keyof ModelChartData;

const NO_EVALUATION: EvaluationData = { model: null, rfm: null, bgnbd: null, importance: null };

/** Each source read on its own, for a chart request: the narrowest queries that draw it. */
const LOADERS: { [S in ModelChartSource]: (db: Kysely<Database>, head: ModelChartHead) => Promise<ModelChartData[S]> } = {
  async evaluation(db, head) {
    const stored = head.champion ? await storedEvaluation(db, head.champion.id) : null;
    return stored ? evaluationData(stored.metrics, stored.baselineMetrics) : NO_EVALUATION;
  },
  history: (db, head) => versionHistory(db, head.modelId),
  drift: driftSource,
  funnel: funnelSource,
};

interface ModelChartDefinition {
  source: ModelChartSource;
  /** the chart, or why it cannot be drawn, from its source (only that one need be loaded) */
  draw(data: Partial<ModelChartData>): ChartEntry;
}

function define<S extends ModelChartSource>(source: S, draw: (data: ModelChartData[S]) => ChartEntry): ModelChartDefinition {
  return {
    source,
    draw(data) {
      const value = data[source];
      if (value === undefined) throw new Error(`the ${source} of the chart was not loaded`);
      return draw(value as ModelChartData[S]);
    },
  };
}

const gainsOf = (e: EvaluationData) => ({ model: e.model?.gains ?? null, RFM: e.rfm?.gains ?? null, 'BG/NBD': e.bgnbd?.gains ?? null });

/** The charts of a model page, in the order the page shows them; the key is the chart's name in its address. */
export const MODEL_CHARTS = {
  roc: define('evaluation', (e) =>
    e.model?.curves?.roc?.length ? entry(rocChart(rocSeries(e))) : missingChart('roc', 'ROC curve', `ROC curve ${NOT_RECORDED}.`),
  ),
  gains: define('evaluation', (e) =>
    e.model?.gains?.length ? entry(gainsChart(gainsOf(e))) : missingChart('gains', 'Cumulative gains', `Gains ${NOT_RECORDED}.`),
  ),
  lift: define('evaluation', (e) =>
    e.model?.gains?.length ? entry(liftChart(gainsOf(e))) : missingChart('lift', 'Lift by decile', `Lift ${NOT_RECORDED}.`),
  ),
  reliability: define('evaluation', (e) => {
    const calibration = e.model?.curves?.calibration ?? e.model?.reliability ?? null;
    return calibration?.length
      ? entry(reliabilityChart(calibration, e.model?.expectedCalibrationError ?? null))
      : missingChart('reliability', 'Reliability', `Reliability bins ${NOT_RECORDED}.`);
  }),
  'score-distribution': define('evaluation', (e) =>
    e.model?.curves?.scoreHistogram?.length
      ? entry(scoreDistributionChart(e.model.curves.scoreHistogram))
      : missingChart('score-distribution', 'Score distribution', `Score histograms ${NOT_RECORDED}.`),
  ),
  importance: define('evaluation', (e) =>
    e.importance?.length
      ? entry(importanceChart(e.importance))
      : missingChart('importance', 'Feature importance', `Importance ${NOT_RECORDED}.`),
  ),
  history: define('history', (history) => entry(historyChart(history))),
  drift: define('drift', ({ drift, note }) =>
    drift.length > 0
      ? entry(
          driftChart(
            drift.map((d) => ({ feature: d.feature, psi: d.psi, exempt: d.exempt !== null })),
            PSI_THRESHOLD,
          ),
        )
      : missingChart('drift', 'Input drift', note ?? ''),
  ),
  funnel: define('funnel', (funnel) =>
    funnel
      ? entry(funnelChart(funnel.population, funnel.channels))
      : missingChart('funnel', 'Consent funnel', 'No consent funnel was recorded with the live scores.'),
  ),
} satisfies Record<string, ModelChartDefinition>;

export type ModelChartName = keyof typeof MODEL_CHARTS;

export const MODEL_CHART_NAMES = Object.keys(MODEL_CHARTS) as ModelChartName[];

export function isModelChart(name: string): name is ModelChartName {
  return Object.hasOwn(MODEL_CHARTS, name);
}

/** Every chart of a model page, from the data the page read for its tables. */
export function modelCharts(data: ModelChartData): ChartEntry[] {
  return MODEL_CHART_NAMES.map((name) => MODEL_CHARTS[name].draw(data));
}

/** One chart of a model, reading only its own source. */
export async function loadModelChart(db: Kysely<Database>, head: ModelChartHead, name: ModelChartName): Promise<ChartEntry> {
  const { source, draw } = MODEL_CHARTS[name];
  return draw(await loadSource(db, head, source));
}

async function loadSource<S extends ModelChartSource>(
  db: Kysely<Database>,
  head: ModelChartHead,
  source: S,
): Promise<Partial<ModelChartData>> {
  const loaded: Partial<ModelChartData> = {};
  loaded[source] = await LOADERS[source](db, head);
  return loaded;
}

// ---- sources of the runs' charts ---------------------------------------------------------------

type Timed = { id: number; status: string; stages: StageTiming[] };

/** Time in stages of the runs listed on a page of the runs list; null when none of them has a timing. */
export function runDurationsEntry(runs: readonly Timed[]): ChartEntry | null {
  const timed = runs.filter((run) => run.stages.length > 0);
  if (timed.length === 0) return null;
  return entry(
    runDurationsChart(
      timed.map((run) => ({ id: run.id, minutes: run.stages.reduce((sum, stage) => sum + stage.seconds, 0) / 60, status: run.status })),
    ),
  );
}

/** The stages of one run. */
export function stagesEntry(stages: readonly StageTiming[]): ChartEntry {
  return stages.length > 0
    ? entry(stageDurationsChart(stages))
    : missingChart('stages', 'Stage durations', 'No stage finished in this run.');
}
