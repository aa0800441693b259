import { bgnbdTargetScores } from '../models/baselines.ts';
import { type BgNbdParams, expectedPurchasesBatch, fitBgNbd } from '../models/bgnbd.ts';
import { sampleIndices } from '../models/random.ts';
import { HISTORY_FEATURES, PERSON_FEATURES } from './feature-spec.ts';
import { BGNBD_ALIVE_COLUMN, BGNBD_EXPECTED_COLUMN, type FeatureMatrix } from './features.ts';

const FIT_SAMPLE = 50_000;

export interface BuyTillYouDie {
  params: BgNbdParams | null;
  logLikelihood: number | null;
  fittedOn: number;
  /** per row: expected purchase days in the horizon, and probability of being active */
  expected: Float64Array;
  alive: Float64Array;
}

export interface BuyTillYouDieFit {
  params: BgNbdParams | null;
  logLikelihood: number | null;
  fittedOn: number;
}

/**
 * Fits BG/NBD by maximum likelihood on the people with a history at the matrix's cutoff
 * (a seeded sample beyond 50k: the likelihood is smooth and 50k pins it down). Time unit: days.
 */
export function fitBuyTillYouDie(matrix: FeatureMatrix, seed: number): BuyTillYouDieFit {
  const { history, rows } = matrix;
  const withHistory: number[] = [];
  for (let row = 0; row < rows; row++) if ((history.firstAge[row] as number) > 0) withHistory.push(row);
  const sample = sampleIndices(withHistory, FIT_SAMPLE, seed);
  if (sample.length < 50) return { params: null, logLikelihood: null, fittedOn: sample.length };
  const pick = (values: Float64Array, indices: readonly number[]) => Float64Array.from(indices, (row) => values[row] as number);
  const fit = fitBgNbd({
    x: pick(history.repeatDays, sample),
    tx: Float64Array.from(sample, (row) => (history.firstAge[row] as number) - (history.lastAge[row] as number)),
    T: pick(history.firstAge, sample),
  });
  return { params: fit.params, logLikelihood: fit.logLikelihood, fittedOn: sample.length };
}

/**
 * Fills each row's BG/NBD posterior into the two BG/NBD feature columns and the blocks'
 * expectations, with parameters fitted once (scoring shards share the run's fit).
 */
export function applyBuyTillYouDie(matrix: FeatureMatrix, fit: BuyTillYouDieFit): BuyTillYouDie {
  const { history, rows, columns, x, horizonDays } = matrix;
  const expected = new Float64Array(rows);
  const alive = new Float64Array(rows);
  const unfitted = { params: null, logLikelihood: null, fittedOn: fit.fittedOn, expected, alive };
  if (!fit.params) return unfitted;
  const summary = {
    x: history.repeatDays,
    tx: Float64Array.from({ length: rows }, (_, row) => (history.firstAge[row] as number) - (history.lastAge[row] as number)),
    T: Float64Array.from(history.firstAge, (age) => Math.max(age, 1e-6)),
  };
  let posterior: { expected: Float64Array; alive: Float64Array };
  try {
    posterior = expectedPurchasesBatch(fit.params, summary, horizonDays);
  } catch {
    // a degenerate fit (e.g. too little history at an early cutoff) leaves the columns at 0
    return unfitted;
  }
  for (let row = 0; row < rows; row++) {
    if ((history.firstAge[row] as number) <= 0) continue;
    const e = posterior.expected[row] as number;
    const a = posterior.alive[row] as number;
    expected[row] = Number.isFinite(e) ? e : 0;
    alive[row] = Number.isFinite(a) ? a : 0;
    x[row * columns + BGNBD_EXPECTED_COLUMN] = Math.log1p(expected[row] as number);
    x[row * columns + BGNBD_ALIVE_COLUMN] = alive[row] as number;
  }
  fillTargetExpectations(matrix, expected);
  return { params: fit.params, logLikelihood: fit.logLikelihood, fittedOn: fit.fittedOn, expected, alive };
}

/** Fits BG/NBD on the matrix's own people, then fills their posteriors. */
export function fillBuyTillYouDie(matrix: FeatureMatrix, seed: number): BuyTillYouDie {
  return applyBuyTillYouDie(matrix, fitBuyTillYouDie(matrix, seed));
}

const PURCHASE_DAYS_COLUMN = PERSON_FEATURES.indexOf('purchase_days');
const BLOCK_DAYS = HISTORY_FEATURES.indexOf('purchase_days');
const BLOCK_EXPECTED = HISTORY_FEATURES.indexOf('bgnbd_expected_purchases');

/**
 * Each category's and product's part of the expected purchases (the BG/NBD baseline's own
 * score) as a feature of its block: a network that sees its baseline can learn to beat it.
 */
function fillTargetExpectations(matrix: FeatureMatrix, expected: Float64Array): void {
  const { rows, columns, x } = matrix;
  const blocks = matrix.layout.categories.length + matrix.layout.productIds.length;
  const width = HISTORY_FEATURES.length;
  const allDays = Float64Array.from({ length: rows }, (_, row) => Math.expm1(x[row * columns + PURCHASE_DAYS_COLUMN] as number));
  for (let block = 0; block < blocks; block++) {
    const start = PERSON_FEATURES.length + block * width;
    const targetDays = Float64Array.from({ length: rows }, (_, row) => Math.expm1(x[row * columns + start + BLOCK_DAYS] as number));
    const scores = bgnbdTargetScores(expected, targetDays, allDays);
    for (let row = 0; row < rows; row++) x[row * columns + start + BLOCK_EXPECTED] = Math.log1p(scores[row] as number);
  }
}
