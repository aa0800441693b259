import type { Command } from 'commander';
import { UserError, withContext } from './cli-context.ts';

const f3 = (value: number | null | undefined, width = 5) =>
  (typeof value === 'number' && Number.isFinite(value) ? value.toFixed(3) : 'n/a').padStart(width);

const interval = (value: { auc: number; low: number; high: number } | null | undefined) =>
  value ? `${value.auc.toFixed(3)} [${value.low.toFixed(3)}, ${value.high.toFixed(3)}]` : 'n/a';

const auc = (evaluation: { rocAuc?: number | null } | null) => f3(evaluation?.rocAuc);

export function registerModelCommands(program: Command): void {
  const models = program.command('models').description('the model registry: champions, versions, metrics, lineage');
  models
    .command('list')
    .description('every model with its champion and how it compares with the baselines')
    .option('--json', 'print JSON')
    .action((flags: { json?: boolean }) =>
      withContext({ migrate: true }, async (context) => {
        const { listModels, targetLabel } = await import('../registry/model-catalog.repository.ts');
        const summaries = await listModels(context.database.db);
        if (flags.json) {
          console.log(JSON.stringify(summaries, null, 2));
          return;
        }
        console.log(`${'target'.padEnd(28)} champion  algo       AUC   RFM BG/NBD  lift@10%  versions  trained`);
        for (const model of summaries) {
          const champion = model.champion;
          console.log(
            `${targetLabel(model.target).padEnd(28)} ${(champion ? `v${champion.version}` : 'none').padEnd(9)} ${(champion?.algorithm ?? '-').padEnd(8)} ${f3(champion?.auc.model)} ${f3(champion?.auc.rfm)} ${f3(champion?.auc.bgnbd, 6)}  ${f3(champion?.liftTopDecile.model, 8)}  ${String(model.versions).padStart(8)}  ${champion ? champion.trainedAt.toISOString().slice(0, 16) : '-'}`,
          );
        }
      }),
    );

  models
    .command('show <target>')
    .description('every version of one model (a SKU, "any" or "category:NAME"): metrics, baselines, decision, lineage')
    .option('--json', 'print JSON')
    .action((target: string, flags: { json?: boolean }) =>
      withContext({ migrate: true }, async (context) => {
        const [{ findModel, parseModelTarget, targetLabel }, { readBaselineMetrics, readVersionMetrics }] = await Promise.all([
          import('../registry/model-catalog.repository.ts'),
          import('../registry/model-metrics.ts'),
        ]);
        const wanted = parseModelTarget(target);
        const model = await findModel(context.database.db, wanted);
        if (!model || model.versions.length === 0)
          throw new UserError(`no model for ${wanted.kind} "${wanted.key}"; see cible models list`);
        if (flags.json) {
          console.log(JSON.stringify(model, null, 2));
          return;
        }
        const label = targetLabel(model.target);
        for (const version of model.versions) {
          const { lineage } = version;
          const metrics = readVersionMetrics(version.metrics);
          const baselineMetrics = readBaselineMetrics(version.baselineMetrics);
          const evaluation = metrics.evaluation;
          console.log(`${label} v${version.version} ${version.status} (${version.algorithm}), run ${lineage.runId}`);
          console.log(`  decision: ${version.decisionReason ?? '-'}`);
          const design = metrics.evaluationDesign;
          console.log(`  evaluation design: ${design ? design.reason : 'out-of-time (recorded before designs were)'}`);
          const candidates = metrics.candidates;
          if (candidates) {
            const margin = metrics.margin;
            console.log(
              `  candidates (ROC AUC, 95% DeLong interval): ${Object.entries(candidates)
                .map(([name, value]) => `${name} ${interval(value)}`)
                .join(', ')}`,
            );
            console.log(
              `  winner: ${version.algorithm}${margin ? `, ahead of ${margin.over} by ${margin.difference.toFixed(3)} [${margin.low.toFixed(3)}, ${margin.high.toFixed(3)}] (paired DeLong)` : ''}`,
            );
          }
          const champion = metrics.champion;
          if (champion?.difference) {
            console.log(
              `  against champion v${champion.version} (${champion.algorithm}) on the same rows: ${champion.difference.difference.toFixed(3)} [${champion.difference.low.toFixed(3)}, ${champion.difference.high.toFixed(3)}]`,
            );
          }
          console.log(
            `  lineage: consent snapshot ${lineage.consentSnapshotAt.toISOString()} (${lineage.populationSize} people), cutoff ${lineage.trainingCutoff.toISOString().slice(0, 10)}, horizon ${lineage.horizonDays} d, code ${lineage.codeVersion}, data sha256 ${lineage.trainingDataHash.slice(0, 16)}…, ${lineage.features.length} features`,
          );
          if (evaluation) {
            const f = (value: number | null | undefined) => (typeof value === 'number' ? value.toFixed(3) : 'n/a');
            console.log(
              `  evaluation: ROC AUC ${f(evaluation.rocAuc)} ${interval(metrics.aucInterval)}, PR AUC ${f(evaluation.prAuc)}, log loss ${f(evaluation.logLoss)}, Brier ${f(evaluation.brier)}, ECE ${f(evaluation.expectedCalibrationError)}; baselines RFM ${auc(baselineMetrics.rfm).trim()}, BG/NBD ${auc(baselineMetrics.bgnbd).trim()}`,
            );
            const gains = evaluation.gains ?? [];
            console.log(`  lift by decile: ${gains.map((g) => g.lift.toFixed(2)).join(' ')}`);
            console.log(`  cumulative gains: ${gains.map((g) => g.cumulativeGain.toFixed(2)).join(' ')}`);
          }
          const importance = metrics.importance ?? [];
          if (importance.length > 0) {
            console.log(
              `  importance (AUC drop): ${importance
                .slice(0, 5)
                .map((i) => `${i.group} ${(i.aucDrop ?? 0).toFixed(3)}`)
                .join(', ')}`,
            );
          }
        }
      }),
    );
}
