import type { BinaryMetrics } from '../models/metrics.ts';
import type { AucInterval, PairedAucDifference } from '../models/delong.ts';
import { type BackendName, loadTensorflow } from '../models/tensorflow.ts';
import type { AppContext } from '../src/context.ts';
import type { ChannelFunnel } from '../src/consent/eligibility.ts';
import { createRun, finishRun, startHeartbeat } from '../src/registry/registry.repository.ts';
import { DEFAULT_SPECIAL_CATEGORIES } from './feature-spec.ts';
import { type Progress, silentProgress, stageTimer } from './progress.ts';
import { publishRun } from './publish-part.ts';
import { scoreShard, type ShardOutput } from './score-part.ts';
import { buildScoreSetTable } from './scoring.ts';
import { trainRun } from './train-part.ts';
import type { TrainingConfig } from './training.ts';

export interface PipelineOptions {
  kind: 'pipeline' | 'backtest';
  trigger: string;
  /** run as if today were this instant; null = now, with the live consent state */
  asOf: Date | null;
  horizonDays: number;
  /** SKUs to model; null = every product with enough buyers */
  products: string[] | null;
  minPositives: number;
  minNegatives: number;
  /**
   * a new version is promoted unless the champion, judged on the same rows, is better by more than
   * this and the paired (DeLong) 95% interval of the difference excludes 0
   */
  promotionTolerance: number;
  /** the best candidate must reach this AUC, or the target gets no new version in force: too close to chance */
  minimumAuc: number;
  evaluation: EvaluationDesignOptions;
  training: TrainingConfig;
  /** up to this many rolling origins are stacked while the training rows stay under the cap */
  maxOrigins: number;
  originStepDays: number;
  specialCategories: string[];
  backend: BackendName | 'auto';
  modelsDir: string | null;
}

/** When out-of-time evaluation (at T−2H) is replaced by a split by person (at T−H). */
export interface EvaluationDesignOptions {
  /**
   * out-of-time needs at least this share of the people with a purchase before T−H to have had
   * one before T−2H already; otherwise the networks would learn from people without a history
   */
  minHistoryShare: number;
  /** the share of people held out (by a seeded hash of their id) when evaluating by person */
  holdoutShare: number;
}

export const DEFAULT_PIPELINE_OPTIONS: Omit<PipelineOptions, 'kind' | 'trigger' | 'asOf'> = {
  horizonDays: 30,
  products: null,
  minPositives: 100,
  minNegatives: 100,
  promotionTolerance: 0.005,
  minimumAuc: 0.55,
  evaluation: { minHistoryShare: 0.5, holdoutShare: 0.3 },
  training: {
    algorithms: ['logistic', 'mlp'],
    epochs: 4,
    maxEpochs: 40,
    batchSize: 4096,
    minSamples: 500_000,
    learningRate: 0.005,
    l2: 1e-3,
    hiddenUnits: 64,
    maxTrainingRows: 150_000,
    maxPositiveWeight: 50,
    seed: 7,
    // early stopping on held-out people stopped Online Retail's networks at epoch 1-2 and lost up to
    // 0.02 AUC on the backtest (people are scored again later, so what they did before is signal): off by default
    validationShare: 0,
    patience: 3,
  },
  maxOrigins: 6,
  originStepDays: 15,
  specialCategories: DEFAULT_SPECIAL_CATEGORIES,
  backend: 'auto',
  modelsDir: null,
};

/** Every model family a target's version may be: the networks and the baselines. */
export type Algorithm = 'logistic' | 'mlp' | 'bgnbd' | 'rfm';

export interface TargetOutcome {
  target: string;
  algorithm: Algorithm | null;
  version: number | null;
  status: 'champion' | 'candidate' | 'rejected' | 'not eligible';
  reason: string;
  auc: { model: number | null; rfm: number | null; bgnbd: number | null; champion: number | null };
  /** every candidate's AUC with its DeLong 95% interval, on the same evaluation rows */
  candidates?: Partial<Record<Algorithm, AucInterval | null>>;
  /** the winner's lead over the runner-up (paired DeLong) */
  margin?: (PairedAucDifference & { over: Algorithm }) | null;
  /** the new version against the champion on the same rows (paired DeLong) */
  championDifference?: PairedAucDifference | null;
  backtest?: { model: BinaryMetrics | null; rfm: BinaryMetrics | null; bgnbd: BinaryMetrics | null };
  scored?: number;
}

export interface StageFigure {
  stage: string;
  seconds: number;
  rows: number;
}

export interface PipelineReport {
  runId: number;
  kind: 'pipeline' | 'backtest';
  asOf: string;
  horizonDays: number;
  backend: BackendName;
  population: number;
  cutoffs: { evaluationTraining: string[]; evaluation: string; productionTraining: string[]; scoring: string };
  /** how this run's candidates were judged (out-of-time, or a split by person) */
  evaluationDesign?: EvaluationDesign;
  /** champions kept from earlier runs that this run scored again */
  rescored?: Array<{ target: string; version: number; algorithm: string; scored: number | null }>;
  targets: TargetOutcome[];
  stages: StageFigure[];
  peakRssMb: number;
  /** who could be reached on each channel when the run scored (counts only), for the review pages */
  consentFunnel?: { at: string; channels: ChannelFunnel[] };
}

/** How a run's candidates were judged, recorded in each version's metrics and in the run. */
export interface EvaluationDesign {
  kind: 'out-of-time' | 'person-split';
  /** why this design, in words */
  reason: string;
  /** people in the snapshot with a purchase before T−H, and before T−2H */
  historyAtEvaluation: number;
  historyAtCalibration: number;
  /** person split: the share held out and the seed of the split */
  holdoutShare: number | null;
  seed: number;
  /** how AUCs are compared: DeLong's paired test on the same rows */
  test: 'DeLong paired';
}

/** What a run records as its parameters (the pipeline_runs row). */
export function runParams(options: PipelineOptions): Record<string, unknown> {
  return { products: options.products, minPositives: options.minPositives, minNegatives: options.minNegatives, training: options.training, evaluation: options.evaluation };
}

/**
 * The whole pipeline in this process (cible pipeline run, backtests, the demo): the same
 * parts the job queue hands to workers (train-part → score-part → ranked tables →
 * publish-part), one after the other, with one scoring shard. A run queued for workers goes
 * through pipelines/queue instead.
 */
export async function runPipeline(context: AppContext, options: PipelineOptions, progress: Progress = silentProgress): Promise<PipelineReport> {
  const { db } = context.database;
  const startedAt = context.clock.now();
  const runId = await createRun(
    db,
    { kind: options.kind, trigger: options.trigger, asOf: options.asOf ?? startedAt, horizonDays: options.horizonDays, params: runParams(options), startedAt },
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
        for (const [id, table] of Object.entries(shard.tables)) ranked.set(Number(id), await buildScoreSetTable(context.database, Number(id), [table]));
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
