import type { AucInterval, PairedAucDifference } from '../models/delong.ts';
import type { BinaryMetrics } from '../models/metrics.ts';
import type { BackendName } from '../models/tensorflow.ts';
import type { ChannelFunnel } from '../src/consent/eligibility.ts';
import type { NewVersion } from '../src/registry/registry.repository.ts';
import type { BaselineScorer } from './baseline-scoring.ts';
import type { BuyTillYouDieFit } from './buy-till-you-die.ts';
import type { FeatureProfile } from './feature-profile.ts';
import { DEFAULT_SPECIAL_CATEGORIES } from './feature-spec.ts';
import type { FeatureLayout } from './features.ts';
import type { Target } from './targets.ts';
import type { TrainingConfig } from './training.ts';

/*
 * What a run is given, decides and reports, shared by its parts (train-part → score-part →
 * publish-part) and by run-pipeline, which runs them in one process. The parts import these
 * types from here, never from each other's modules.
 */

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
    // the MLP stops early on 15% of the training people (all their rows), by the log loss of their calibrated probabilities
    validationShare: 0.15,
    minRowsForMlp: 50_000,
    patience: 3,
    minImprovement: 0.001,
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

/** How a version scores people: a stored network's output, or a baseline applied to the run's matrix. */
export type Scorer =
  | { kind: 'network'; networkId: number; outputIndex: number; layout: FeatureLayout }
  | (BaselineScorer & { layout: FeatureLayout });

/** A model version decided by training, written (and promoted) only when the run publishes. */
export interface PlannedVersion {
  target: Target;
  outputIndex: number;
  status: 'champion' | 'candidate' | 'rejected';
  algorithm: Algorithm;
  /** reserved for a champion of a pipeline run (or a kept champion scored again): its scores carry this id before the set exists */
  scoreSetId: number | null;
  /** how to score with it (champions only) */
  scorer: Scorer | null;
  /** a champion kept from an earlier run that this run scores again: no version is written for this entry */
  kept?: { modelId: number; versionId: number; version: number };
  version: Omit<NewVersion, 'modelId' | 'status' | 'outputIndex' | 'trainedAt' | 'consentSnapshotAt' | 'trainingCutoff'> & {
    trainedAt: string;
    consentSnapshotAt: string;
    trainingCutoff: string;
  };
}

/**
 * What training hands to scoring and publishing (stored as JSON with the run's train part,
 * so that any worker can take the next step): decisions, not yet visible to anyone.
 */
export interface TrainingPlan {
  runId: number;
  kind: 'pipeline' | 'backtest';
  asOf: string;
  horizonDays: number;
  seed: number;
  layout: FeatureLayout | null;
  versions: PlannedVersion[];
  /** BG/NBD fitted at the scoring instant, shared by every scoring shard */
  scoringFit: BuyTillYouDieFit | null;
  /** the training population's feature profile, the reference for drift */
  trainingProfile: FeatureProfile | null;
  report: PipelineReport;
}
