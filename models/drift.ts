/**
 * Input drift between a reference population (a model's training sample) and a later one
 * (the population it scored), per feature, on the reference's decile bins.
 */

/** A feature's bins: `edges` cut the line into (-∞, e1], (e1, e2], …, (ek, ∞). */
export interface FeatureBins {
  /** distinct cut points, ascending */
  edges: number[];
  /** share of the finite values in each bin: edges.length + 1 entries */
  shares: number[];
  /** share of values that are NaN or infinite */
  missing: number;
}

/**
 * Population stability index above which a feature is flagged. The usual rule of thumb
 * reads PSI below 0.1 as no real change, 0.1 to 0.25 as a moderate shift worth a look and
 * above 0.25 as a major shift; 0.2 flags the upper part of the moderate band, so that a
 * reviewer hears of a shift before it becomes major, without flagging sampling noise.
 */
export const PSI_THRESHOLD = 0.2;

/** Empty bins would make ln(a/e) infinite: shares are floored at this before the sum. */
export const PSI_EPSILON = 1e-4;

/**
 * Cut points at the deciles (by default) of the finite values, nearest-rank, duplicates
 * removed: a feature that is 0 for 70% of people gets one bin for the zeros.
 */
export function quantileEdges(values: ArrayLike<number>, groups = 10): number[] {
  if (!Number.isInteger(groups) || groups < 2) throw new Error(`groups must be an integer of at least 2, got ${groups}`);
  const finite: number[] = [];
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i])) finite.push(values[i]!);
  if (finite.length === 0) return [];
  const sorted = Float64Array.from(finite).sort();
  const edges: number[] = [];
  for (let k = 1; k < groups; k++) {
    const edge = sorted[Math.max(0, Math.ceil((k / groups) * sorted.length) - 1)]!;
    if (edges.length === 0 || edge > edges[edges.length - 1]!) edges.push(edge);
  }
  // the largest value as the last edge leaves an always-empty top bin: drop it
  if (edges.length > 0 && edges[edges.length - 1] === sorted[sorted.length - 1]) edges.pop();
  return edges;
}

/** The share of `values` in each bin of `edges` (value v goes in the first bin whose upper edge is ≥ v). */
export function binShares(values: ArrayLike<number>, edges: readonly number[]): { shares: number[]; missing: number } {
  const counts = new Float64Array(edges.length + 1);
  let missing = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (!Number.isFinite(v)) {
      missing++;
      continue;
    }
    let lo = 0;
    let hi = edges.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (edges[mid]! < v) lo = mid + 1;
      else hi = mid;
    }
    counts[lo]!++;
  }
  const n = values.length;
  return { shares: Array.from(counts, (count) => (n > 0 ? count / n : 0)), missing: n > 0 ? missing / n : 0 };
}

/** Reference bins of one feature: its decile edges and the reference's own shares. */
export function featureBins(values: ArrayLike<number>): FeatureBins {
  const edges = quantileEdges(values);
  return { edges, ...binShares(values, edges) };
}

/**
 * PSI = Σ (a − e) · ln(a / e) over the bins (and the missing values), e the reference
 * share, a the later share, both floored at `epsilon`. 0 when nothing moved.
 */
export function populationStabilityIndex(expected: readonly number[], actual: readonly number[], epsilon = PSI_EPSILON): number {
  if (expected.length !== actual.length) throw new Error(`expected has ${expected.length} bins but actual has ${actual.length}`);
  if (expected.length === 0) throw new Error('no bins to compare');
  let sum = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.max(expected[i]!, epsilon);
    const a = Math.max(actual[i]!, epsilon);
    sum += (a - e) * Math.log(a / e);
  }
  return sum;
}

/** PSI of one feature, the missing share counted as one more bin. */
export function featurePsi(reference: Pick<FeatureBins, 'shares' | 'missing'>, later: Pick<FeatureBins, 'shares' | 'missing'>): number {
  return populationStabilityIndex([...reference.shares, reference.missing], [...later.shares, later.missing]);
}
