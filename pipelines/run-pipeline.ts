import { loadTensorflow } from '../models/tensorflow.ts';
import type { AppContext } from '../src/context.ts';
import { createRun, finishRun, startHeartbeat } from '../src/registry/registry.repository.ts';
import { DEFAULT_SPECIAL_CATEGORIES } from './feature-spec.ts';
import { type Progress, silentProgress, stageTimer } from './progress.ts';
import { publishRun } from './publish-part.ts';
import { DEFAULT_PIPELINE_OPTIONS, type PipelineOptions, type PipelineReport } from './run-types.ts';
import { type ShardOutput, scoreShard } from './score-part.ts';
import { buildScoreSetTable } from './scoring.ts';
import { trainRun } from './train-part.ts';

// the run's types live in run-types.ts (the parts import them from there); callers of the run keep importing them from here
export {
  type Algorithm,
  DEFAULT_PIPELINE_OPTIONS,
  type EvaluationDesign,
  type EvaluationDesignOptions,
  type PipelineOptions,
  type PipelineReport,
  type StageFigure,
  type TargetOutcome,
} from './run-types.ts';

/** What a run records as its parameters (the pipeline_runs row). */
export function runParams(options: PipelineOptions): Record<string, unknown> {
  return {
    products: options.products,
    minPositives: options.minPositives,
    minNegatives: options.minNegatives,
    training: options.training,
    evaluation: options.evaluation,
  };
}

/**
 * The whole pipeline in this process (cible pipeline run, backtests, the demo): the same
 * parts the job queue hands to workers (train-part → score-part → ranked tables →
 * publish-part), one after the other, with one scoring shard. A run queued for workers goes
 * through pipelines/queue instead.
 */
export async function runPipeline(
  context: AppContext,
  options: PipelineOptions,
  progress: Progress = silentProgress,
): Promise<PipelineReport> {
  const { db } = context.database;
  const startedAt = context.clock.now();
  const runId = await createRun(
    db,
    {
      kind: options.kind,
      trigger: options.trigger,
      asOf: options.asOf ?? startedAt,
      horizonDays: options.horizonDays,
      params: runParams(options),
      startedAt,
    },
    context.config.jobs.staleRunSeconds,
  );
  progress.runStarted?.(runId);
  const heartbeat = startHeartbeat(db, runId, () => context.clock.now());
  try {
    const t = await loadTensorflow({ prefer: options.backend, logger: context.logger });
    const plan = await trainRun(context, t, runId, options, progress, startedAt);
    const shards: ShardOutput[] = [];
    const ranked = new Map<number, number>();
    const { stages, timed } = stageTimer(progress);
    if (plan.versions.some((entry) => entry.scoreSetId !== null)) {
      const shard = await scoreShard(context, t, plan, { index: 0, count: 1 }, 'a1', progress);
      shards.push(shard);
      stages.push(...shard.stages);
      await timed('rank', async () => {
        for (const [id, table] of Object.entries(shard.tables))
          ranked.set(Number(id), await buildScoreSetTable(context.database, Number(id), [table]));
        return { value: undefined, rows: shard.rows * ranked.size };
      });
    }
    progress.stage('publish');
    const report = await publishRun(context, { plan, shards, ranked, stages });
    progress.done('publish', report.stages.at(-1)?.seconds ?? 0, plan.versions.length);
    return report;
  } catch (error) {
    await finishRun(db, runId, {
      status: 'failed',
      finishedAt: context.clock.now(),
      summary: {},
      error: error instanceof Error ? error.message : String(error),
    }).catch(() => undefined);
    throw error;
  } finally {
    heartbeat.stop();
  }
}

/** Options with the installation's special categories and backend added to the defaults. */
export function defaultOptionsFor(context: AppContext): Omit<PipelineOptions, 'kind' | 'trigger' | 'asOf'> {
  return {
    ...DEFAULT_PIPELINE_OPTIONS,
    specialCategories: [...new Set([...DEFAULT_SPECIAL_CATEGORIES, ...context.config.specialCategories])],
    backend: context.config.tfBackend,
  };
}
