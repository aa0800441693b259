import {
  applyCalibration,
  type BinnedCalibration,
  bgnbdTargetScores,
  calibrated,
  fitCalibrationTable,
  type RfmInputs,
  rfmCells,
  rfmScores,
} from '../models/baselines.ts';
import {
  type BinaryMetrics,
  binaryMetrics,
  type EvaluationCurves,
  evaluationCurves,
  labelColumn,
  permutationImportance,
  strided,
} from '../models/metrics.ts';
import { predictProbabilities } from '../models/propensity-network.ts';
import { sampleIndices } from '../models/random.ts';
import { standardiseRows } from '../models/standardisation.ts';
import type { Tensorflow } from '../models/tensorflow.ts';
import type { BuyTillYouDie } from './buy-till-you-die.ts';
import { BGNBD_EXPECTED_COLUMN, type FeatureMatrix } from './features.ts';
import type { Target } from './targets.ts';
import type { InferenceNetwork, LabelledMatrix } from './training.ts';

/** A version's evaluation: the figures, and the curves the review pages draw (ROC, score histograms). */
export type EvaluatedMetrics = BinaryMetrics & { curves?: EvaluationCurves };

/**
 * Metrics of every output of a rows x targets probability matrix; null when the window has one
 * class only. `curves` adds each output's ROC curve and score histograms (kept with model versions,
 * left out of run summaries where they would only weigh).
 */
export function metricsPerTarget(
  labels: Uint8Array,
  probabilities: Float32Array,
  targets: number,
  options: { curves?: boolean } = {},
): Array<EvaluatedMetrics | null> {
  return Array.from({ length: targets }, (_, index) => {
    const y = labelColumn(labels, targets, index);
    const positives = y.reduce((sum, value) => sum + value, 0);
    if (positives === 0 || positives === y.length) return null;
    const p = strided(probabilities, targets, index);
    const metrics = binaryMetrics(y, p);
    return options.curves ? { ...metrics, curves: evaluationCurves(y, p) } : metrics;
  });
}

function column(matrix: FeatureMatrix, name: string): (row: number) => number {
  const index = matrix.layout.names.indexOf(name);
  if (index < 0) throw new Error(`feature ${name} is not in the matrix`);
  return (row) => matrix.x[row * matrix.columns + index] as number;
}

function blockPrefix(target: Target): string | null {
  if (target.kind === 'category') return `category:${target.category}:`;
  if (target.kind === 'product') return `product:${target.key}:`;
  return null;
}

/** What both baselines need from one matrix, computed once for all its targets. */
interface BaselineBasis {
  overall: RfmInputs;
  overallCells: Uint16Array;
}

function baselineBasis(matrix: FeatureMatrix): BaselineBasis {
  const rows = matrix.rows;
  const horizon = matrix.horizonDays;
  const recencyDays = column(matrix, 'recency_days');
  const hasHistory = column(matrix, 'has_history');
  const purchaseDays = column(matrix, 'purchase_days');
  const spend = column(matrix, 'spend_total');
  const overall: RfmInputs = {
    rows,
    recency: Float64Array.from({ length: rows }, (_, row) => (hasHistory(row) > 0 ? Math.exp(-Math.expm1(recencyDays(row)) / horizon) : 0)),
    purchaseDays: Float64Array.from({ length: rows }, (_, row) => Math.expm1(purchaseDays(row))),
    spend: Float64Array.from({ length: rows }, (_, row) => Math.expm1(spend(row))),
  };
  return { overall, overallCells: rfmCells(overall, true) };
}

/** The raw ranking scores of both baselines for one target on one matrix. */
function baselineScores(
  matrix: FeatureMatrix,
  basis: BaselineBasis,
  target: Target,
  bgnbd: BuyTillYouDie,
): { rfm: Float32Array; bgnbd: Float32Array } {
  const rows = matrix.rows;
  const prefix = blockPrefix(target);
  if (prefix === null) {
    return { rfm: rfmScores(null, basis.overallCells), bgnbd: Float32Array.from(bgnbd.expected) };
  }
  const blockRecency = column(matrix, `${prefix}recency_decay`);
  const blockDays = column(matrix, `${prefix}purchase_days`);
  const own: RfmInputs = {
    rows,
    recency: Float64Array.from({ length: rows }, (_, row) => blockRecency(row)),
    purchaseDays: Float64Array.from({ length: rows }, (_, row) => Math.expm1(blockDays(row))),
    spend: basis.overall.spend,
  };
  return {
    rfm: rfmScores(own, basis.overallCells),
    bgnbd: bgnbdTargetScores(bgnbd.expected, own.purchaseDays, basis.overall.purchaseDays),
  };
}

export type BaselineKind = 'rfm' | 'bgnbd';

export interface BaselineEvaluation {
  rfm: BinaryMetrics | null;
  bgnbd: BinaryMetrics | null;
  /** rows x targets probabilities on the evaluated matrix */
  rfmProbabilities: Float32Array;
  bgnbdProbabilities: Float32Array;
  /** the raw ranking scores on the evaluated matrix (their AUC is the baseline's) */
  rfmScores: Float32Array;
  bgnbdScores: Float32Array;
  /** score → probability, fitted on the calibration window: what a baseline version applies when it scores */
  rfmCalibration: BinnedCalibration;
  bgnbdCalibration: BinnedCalibration;
}

/**
 * Both baselines scored on `evaluated`, their probabilities calibrated on `calibration`
 * (an earlier window, or other people, as a model would be), with the same metrics as the networks.
 */
export function evaluateBaselines(
  calibration: LabelledMatrix,
  calibrationBgnbd: BuyTillYouDie,
  evaluated: LabelledMatrix,
  evaluatedBgnbd: BuyTillYouDie,
  targets: readonly Target[],
): BaselineEvaluation[] {
  const beforeBasis = baselineBasis(calibration.matrix);
  const afterBasis = baselineBasis(evaluated.matrix);
  return targets.map((target, index) => {
    const before = baselineScores(calibration.matrix, beforeBasis, target, calibrationBgnbd);
    const after = baselineScores(evaluated.matrix, afterBasis, target, evaluatedBgnbd);
    const calibrationLabels = labelColumn(calibration.labels, targets.length, index);
    const evaluatedLabels = labelColumn(evaluated.labels, targets.length, index);
    const rfmCalibration = fitCalibrationTable(before.rfm, calibrationLabels);
    const bgnbdCalibration = fitCalibrationTable(before.bgnbd, calibrationLabels);
    const rfmProbabilities = applyCalibration(after.rfm, (score) => calibrated(rfmCalibration, score));
    const bgnbdProbabilities = applyCalibration(after.bgnbd, (score) => calibrated(bgnbdCalibration, score));
    const positives = evaluatedLabels.reduce((sum, value) => sum + value, 0);
    const defined = positives > 0 && positives < evaluatedLabels.length;
    return {
      rfm: defined ? withRankingAuc(binaryMetrics(evaluatedLabels, rfmProbabilities), evaluatedLabels, after.rfm) : null,
      bgnbd: defined ? withRankingAuc(binaryMetrics(evaluatedLabels, bgnbdProbabilities), evaluatedLabels, after.bgnbd) : null,
      rfmProbabilities,
      bgnbdProbabilities,
      rfmScores: after.rfm,
      bgnbdScores: after.bgnbd,
      rfmCalibration,
      bgnbdCalibration,
    };
  });
}

/** A baseline's calibration fitted on one labelled matrix (the production window), for scoring. */
export function fitBaselineCalibration(
  kind: BaselineKind,
  labelled: LabelledMatrix,
  bgnbd: BuyTillYouDie,
  target: Target,
  targetIndex: number,
  targets: number,
): BinnedCalibration {
  const scores = baselineScores(labelled.matrix, baselineBasis(labelled.matrix), target, bgnbd);
  return fitCalibrationTable(scores[kind], labelColumn(labelled.labels, targets, targetIndex));
}

/**
 * A baseline's ranking scores on a scoring matrix, from its columns alone (the BG/NBD columns
 * filled by the run's fit): what a baseline version computes when it scores people.
 */
export function baselineScoresOnMatrix(kind: BaselineKind, matrix: FeatureMatrix, target: Target): Float32Array {
  const expected = Float64Array.from({ length: matrix.rows }, (_, row) =>
    Math.expm1(matrix.x[row * matrix.columns + BGNBD_EXPECTED_COLUMN] as number),
  );
  const bgnbd = { params: null, logLikelihood: null, fittedOn: 0, expected, alive: new Float64Array(matrix.rows) };
  return baselineScores(matrix, baselineBasis(matrix), target, bgnbd)[kind];
}

/** A baseline's AUC is the AUC of its own ranking, not of its (binned) calibration. */
function withRankingAuc(metrics: BinaryMetrics, labels: Uint8Array, scores: Float32Array): BinaryMetrics {
  const ranking = binaryMetrics(labels, normalise(scores));
  return { ...metrics, rocAuc: ranking.rocAuc, prAuc: ranking.prAuc, gains: ranking.gains };
}

function normalise(scores: Float32Array): Float32Array {
  let max = 0;
  for (const score of scores) if (score > max) max = score;
  return max > 0 ? Float32Array.from(scores, (score) => Math.max(0, score) / max) : new Float32Array(scores.length);
}

const IMPORTANCE_ROWS = 50_000;

/** Permutation importance (AUC drop per explanation group) on a sample of the evaluation window. */
export async function groupImportance(
  t: Tensorflow,
  network: InferenceNetwork,
  evaluated: LabelledMatrix,
  seed: number,
): Promise<Array<{ name: string; aucDrop: number[] }>> {
  const { matrix } = evaluated;
  const outputs = network.logPositiveWeights.length;
  const rows = sampleIndices(
    Array.from({ length: matrix.rows }, (_, i) => i),
    IMPORTANCE_ROWS,
    seed,
  );
  const x = new Float32Array(rows.length * matrix.columns);
  const labels = new Uint8Array(rows.length * outputs);
  const scratch = new Float32Array(matrix.columns);
  rows.forEach((row, i) => {
    standardiseRows(matrix.x, row, row + 1, matrix.columns, network.standardisation, scratch);
    x.set(scratch, i * matrix.columns);
    labels.set(evaluated.labels.subarray(row * outputs, (row + 1) * outputs), i * outputs);
  });
  return permutationImportance({
    x,
    rows: rows.length,
    columns: matrix.columns,
    groups: matrix.layout.explanationGroups,
    labels,
    outputs,
    predict: (input, count) => predictProbabilities(t, network, input, count),
    seed,
  });
}

/**
 * The rows of people with at least one purchase before the cutoff: the population a data
 * scientist evaluates on ("customers active before the date"), without consented prospects.
 */
export function activeRowsOnly(labelled: LabelledMatrix, bgnbd: BuyTillYouDie): { labelled: LabelledMatrix; bgnbd: BuyTillYouDie } {
  const hasHistory = column(labelled.matrix, 'has_history');
  return selectRows(labelled, bgnbd, (row) => hasHistory(row) > 0);
}

/** The rows of a labelled matrix (and their BG/NBD posteriors) for which `keep` holds, in order. */
export function selectRows(
  labelled: LabelledMatrix,
  bgnbd: BuyTillYouDie,
  keep: (row: number, matrix: FeatureMatrix) => boolean,
): { labelled: LabelledMatrix; bgnbd: BuyTillYouDie } {
  const { matrix } = labelled;
  const rows: number[] = [];
  for (let row = 0; row < matrix.rows; row++) if (keep(row, matrix)) rows.push(row);
  const targets = labelled.labels.length / Math.max(1, matrix.rows);
  const x = new Float32Array(rows.length * matrix.columns);
  const labels = new Uint8Array(rows.length * targets);
  rows.forEach((row, i) => {
    x.set(matrix.x.subarray(row * matrix.columns, (row + 1) * matrix.columns), i * matrix.columns);
    labels.set(labelled.labels.subarray(row * targets, (row + 1) * targets), i * targets);
  });
  const pickRows = (values: Float64Array) => Float64Array.from(rows, (row) => values[row] as number);
  return {
    labelled: {
      matrix: {
        ...matrix,
        rows: rows.length,
        x,
        contactIds: pickRows(matrix.contactIds),
        history: {
          repeatDays: pickRows(matrix.history.repeatDays),
          lastAge: pickRows(matrix.history.lastAge),
          firstAge: pickRows(matrix.history.firstAge),
        },
      },
      labels,
    },
    bgnbd: { ...bgnbd, expected: pickRows(bgnbd.expected), alive: pickRows(bgnbd.alive) },
  };
}
