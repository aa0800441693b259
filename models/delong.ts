/**
 * DeLong, DeLong & Clarke-Pearson (1988): the variance of a ROC AUC, and of the difference of
 * two AUCs measured on the same rows (paired), from each row's placement values. Computed with
 * midranks in O(n log n) (Sun & Xu 2014), ties counted as half, as rocAuc does.
 */

/** z of a two-sided 95% interval */
const Z95 = 1.959963984540054;

export interface AucInterval {
  auc: number;
  /** DeLong standard error */
  se: number;
  low: number;
  high: number;
}

export interface PairedAucDifference {
  /** AUC of a minus AUC of b, on the same rows */
  difference: number;
  se: number;
  low: number;
  high: number;
  /** two-sided p-value of "no difference" */
  p: number;
}

interface Placements {
  auc: number;
  /** per positive: share of negatives it outranks */
  positive: Float64Array;
  /** per negative: share of positives that outrank it */
  negative: Float64Array;
}

/** Index of the first element of `sorted` above `value` (inclusive) or at or above it. */
function bound(sorted: Float64Array, value: number, inclusive: boolean): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    const at = sorted[middle] as number;
    if (at < value || (inclusive && at === value)) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * Each positive's share of negatives it outranks (ties half), and each negative's share of
 * positives that outrank it, from the two classes' sorted scores (native numeric sorts).
 */
function placements(labels: Uint8Array, scores: ArrayLike<number>): Placements | null {
  let m = 0;
  for (let row = 0; row < labels.length; row++) {
    if (Number.isNaN(scores[row] as number)) throw new Error(`score is NaN at row ${row}`);
    if (labels[row]) m++;
  }
  const n = labels.length - m;
  if (m === 0 || n === 0) return null;
  const positives = new Float64Array(m);
  const negatives = new Float64Array(n);
  let p = 0;
  let q = 0;
  for (let row = 0; row < labels.length; row++) {
    if (labels[row]) positives[p++] = scores[row] as number;
    else negatives[q++] = scores[row] as number;
  }
  const sortedPositives = Float64Array.from(positives).sort();
  const sortedNegatives = Float64Array.from(negatives).sort();
  const positive = new Float64Array(m);
  const negative = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < m; i++) {
    const value = positives[i] as number;
    positive[i] = (bound(sortedNegatives, value, false) + bound(sortedNegatives, value, true)) / 2 / n;
    sum += positive[i] as number;
  }
  for (let j = 0; j < n; j++) {
    const value = negatives[j] as number;
    negative[j] = 1 - (bound(sortedPositives, value, false) + bound(sortedPositives, value, true)) / 2 / m;
  }
  return { auc: sum / m, positive, negative };
}

function covariance(a: Float64Array, b: Float64Array): number {
  const n = a.length;
  if (n < 2) return 0;
  let meanA = 0;
  let meanB = 0;
  for (let i = 0; i < n; i++) {
    meanA += a[i] as number;
    meanB += b[i] as number;
  }
  meanA /= n;
  meanB /= n;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += ((a[i] as number) - meanA) * ((b[i] as number) - meanB);
  return sum / (n - 1);
}

/** AUC with its DeLong 95% interval; null with a single class. */
export function aucInterval(labels: Uint8Array, scores: ArrayLike<number>): AucInterval | null {
  const p = placements(labels, scores);
  if (!p) return null;
  const variance = covariance(p.positive, p.positive) / p.positive.length + covariance(p.negative, p.negative) / p.negative.length;
  const se = Math.sqrt(Math.max(0, variance));
  return { auc: p.auc, se, low: Math.max(0, p.auc - Z95 * se), high: Math.min(1, p.auc + Z95 * se) };
}

/** AUC(a) − AUC(b) on the same rows, with DeLong's paired 95% interval; null with a single class. */
export function pairedAucDifference(labels: Uint8Array, a: ArrayLike<number>, b: ArrayLike<number>): PairedAucDifference | null {
  const pa = placements(labels, a);
  const pb = placements(labels, b);
  if (!pa || !pb) return null;
  const m = pa.positive.length;
  const n = pa.negative.length;
  const variance =
    (covariance(pa.positive, pa.positive) + covariance(pb.positive, pb.positive) - 2 * covariance(pa.positive, pb.positive)) / m +
    (covariance(pa.negative, pa.negative) + covariance(pb.negative, pb.negative) - 2 * covariance(pa.negative, pb.negative)) / n;
  const se = Math.sqrt(Math.max(0, variance));
  const difference = pa.auc - pb.auc;
  const p = se > 0 ? 2 * (1 - normalCdf(Math.abs(difference) / se)) : difference === 0 ? 1 : 0;
  return { difference, se, low: difference - Z95 * se, high: difference + Z95 * se, p };
}

/** Standard normal CDF (Abramowitz & Stegun 7.1.26 on erf; error below 1.5e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}
