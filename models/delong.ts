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

/** Midranks (1-based, ties averaged) of `values`. */
function midranks(values: Float64Array): Float64Array {
  const n = values.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (values[a] as number) - (values[b] as number));
  const ranks = new Float64Array(n);
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && values[order[j + 1] as number] === values[order[i] as number]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) ranks[order[k] as number] = rank;
    i = j + 1;
  }
  return ranks;
}

function placements(labels: Uint8Array, scores: ArrayLike<number>): Placements | null {
  const positives: number[] = [];
  const negatives: number[] = [];
  for (let row = 0; row < labels.length; row++) {
    const score = scores[row] as number;
    if (Number.isNaN(score)) throw new Error(`score is NaN at row ${row}`);
    (labels[row] ? positives : negatives).push(score);
  }
  const m = positives.length;
  const n = negatives.length;
  if (m === 0 || n === 0) return null;
  const all = Float64Array.from([...positives, ...negatives]);
  const ranks = midranks(all);
  const ownPositive = midranks(Float64Array.from(positives));
  const ownNegative = midranks(Float64Array.from(negatives));
  const positive = new Float64Array(m);
  const negative = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < m; i++) {
    positive[i] = ((ranks[i] as number) - (ownPositive[i] as number)) / n;
    sum += positive[i] as number;
  }
  for (let j = 0; j < n; j++) negative[j] = 1 - ((ranks[m + j] as number) - (ownNegative[j] as number)) / m;
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
