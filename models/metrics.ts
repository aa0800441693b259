/**
 * Quality metrics for binary propensity models, on typed arrays (up to ~1M rows per product).
 *
 * Conventions shared by every function:
 * - labels are 0 or 1; any other value, an empty input or a length mismatch throws;
 * - scores may be any number but NaN; probabilities must lie in [0, 1];
 * - rocAuc and averagePrecision are undefined when only one class is present: they return NaN
 *   instead of throwing, so one product without positives does not abort a whole evaluation.
 */

import { mulberry32, shuffledRows } from './random.ts';

export interface ReliabilityBin {
  /** bins are [lower, upper), the last one also holds 1 */
  lower: number;
  upper: number;
  count: number;
  /** NaN when the bin is empty */
  meanPredicted: number;
  /** NaN when the bin is empty */
  observedRate: number;
}

export interface GainsRow {
  /** 1 = highest scores */
  decile: number;
  /** share of the population in this decile alone (not cumulative) */
  populationShare: number;
  cumulativePositives: number;
  /** share of all positives captured in deciles 1..decile */
  cumulativeGain: number;
  /** positive rate in this decile / base rate */
  lift: number;
  /** positive rate in deciles 1..decile / base rate */
  cumulativeLift: number;
}

export interface BinaryMetrics {
  rows: number;
  positives: number;
  baseRate: number;
  rocAuc: number;
  /** average precision, as scikit-learn's average_precision_score */
  prAuc: number;
  logLoss: number;
  brier: number;
  expectedCalibrationError: number;
  reliability: ReliabilityBin[];
  gains: GainsRow[];
}

type Values = ArrayLike<number>;

function checkLabels(labels: Uint8Array, values: Values, name: string): void {
  if (labels.length !== values.length) {
    throw new Error(`labels has length ${labels.length} but ${name} has length ${values.length}`);
  }
  if (labels.length === 0) throw new Error('no rows to evaluate');
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! > 1) throw new Error(`labels[${i}] is ${labels[i]}; labels must be 0 or 1`);
  }
}

function checkScores(labels: Uint8Array, scores: Values): void {
  checkLabels(labels, scores, 'scores');
  for (let i = 0; i < scores.length; i++) {
    const v = scores[i];
    if (typeof v !== 'number' || Number.isNaN(v)) throw new Error(`scores[${i}] is ${v}; expected a number`);
  }
}

function checkProbabilities(labels: Uint8Array, probabilities: Values): void {
  checkLabels(labels, probabilities, 'probabilities');
  for (let i = 0; i < probabilities.length; i++) {
    const v = probabilities[i]!;
    if (!(v >= 0 && v <= 1)) throw new Error(`probabilities[${i}] is ${v}; expected a number in [0, 1]`);
  }
}

function checkCount(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${value}`);
}

interface ClassScores {
  /** scores of the positive rows, ascending */
  positive: Float64Array;
  /** scores of the negative rows, ascending */
  negative: Float64Array;
}

/** Native numeric sort of each class's scores: both AUCs only need how the two classes interleave. */
function splitByClass(labels: Uint8Array, scores: Values): ClassScores {
  let positives = 0;
  for (let i = 0; i < labels.length; i++) positives += labels[i]!;
  const positive = new Float64Array(positives);
  const negative = new Float64Array(labels.length - positives);
  let p = 0;
  let n = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]) positive[p++] = scores[i]!;
    else negative[n++] = scores[i]!;
  }
  return { positive: positive.sort(), negative: negative.sort() };
}

function aucOf({ positive, negative }: ClassScores): number {
  const nP = positive.length;
  const nN = negative.length;
  if (nP === 0 || nN === 0) return NaN;
  // 2 × (pairs ordered right) + (tied pairs): an exact integer below 2^53 for any realistic size
  let twice = 0;
  let below = 0;
  let i = 0;
  while (i < nP) {
    const v = positive[i]!;
    let j = i + 1;
    while (j < nP && positive[j] === v) j++;
    while (below < nN && negative[below]! < v) below++;
    let upTo = below;
    while (upTo < nN && negative[upTo] === v) upTo++;
    twice += (j - i) * (2 * below + (upTo - below));
    i = j;
  }
  return twice / (2 * nP * nN);
}

/** Σ over distinct thresholds, descending, of (recall gained) × precision — scikit-learn's step sum. */
function averagePrecisionOf({ positive, negative }: ClassScores): number {
  const nP = positive.length;
  if (nP === 0 || negative.length === 0) return NaN;
  let i = nP - 1;
  let j = negative.length - 1;
  let tp = 0;
  let fp = 0;
  let sum = 0;
  while (i >= 0) {
    const v = j >= 0 && negative[j]! > positive[i]! ? negative[j]! : positive[i]!;
    const before = tp;
    while (i >= 0 && positive[i] === v) {
      tp++;
      i--;
    }
    while (j >= 0 && negative[j] === v) {
      fp++;
      j--;
    }
    sum += ((tp - before) * tp) / (tp + fp);
  }
  return sum / nP;
}

/** ROC AUC with ties counted as half (Mann-Whitney U / (P·N)), as scikit-learn's roc_auc_score. NaN with a single class. */
export function rocAuc(labels: Uint8Array, scores: ArrayLike<number>): number {
  checkScores(labels, scores);
  return aucOf(splitByClass(labels, scores));
}

/** Average precision, as scikit-learn's average_precision_score (tied scores form one threshold). NaN with a single class. */
export function averagePrecision(labels: Uint8Array, scores: ArrayLike<number>): number {
  checkScores(labels, scores);
  return averagePrecisionOf(splitByClass(labels, scores));
}

function logLossOf(labels: Uint8Array, probabilities: Values, epsilon: number): number {
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    const p = Math.min(Math.max(probabilities[i]!, epsilon), 1 - epsilon);
    sum -= labels[i] ? Math.log(p) : Math.log1p(-p);
  }
  return sum / labels.length;
}

/** Mean negative log-likelihood, probabilities clipped to [epsilon, 1 − epsilon] so a confident miss stays finite. */
export function logLoss(labels: Uint8Array, probabilities: ArrayLike<number>, epsilon = 1e-15): number {
  checkProbabilities(labels, probabilities);
  if (!(epsilon >= 0 && epsilon < 0.5)) throw new Error(`epsilon must be in [0, 0.5), got ${epsilon}`);
  return logLossOf(labels, probabilities, epsilon);
}

function brierOf(labels: Uint8Array, probabilities: Values): number {
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    const d = probabilities[i]! - labels[i]!;
    sum += d * d;
  }
  return sum / labels.length;
}

/** Mean squared difference between probability and label. */
export function brierScore(labels: Uint8Array, probabilities: ArrayLike<number>): number {
  checkProbabilities(labels, probabilities);
  return brierOf(labels, probabilities);
}

function reliabilityOf(labels: Uint8Array, probabilities: Values, bins: number, upper = 1) {
  const counts = new Float64Array(bins);
  const sumPredicted = new Float64Array(bins);
  const sumObserved = new Float64Array(bins);
  const edges = upper === 1 ? null : binEdges(upper, bins);
  for (let i = 0; i < labels.length; i++) {
    const p = probabilities[i]!;
    const b = edges ? binOf(p, edges) : Math.min(Math.floor(p * bins), bins - 1);
    counts[b]!++;
    sumPredicted[b]! += p;
    sumObserved[b]! += labels[i]!;
  }
  const result: ReliabilityBin[] = [];
  let expectedCalibrationError = 0;
  for (let b = 0; b < bins; b++) {
    const count = counts[b]!;
    const meanPredicted = count > 0 ? sumPredicted[b]! / count : NaN;
    const observedRate = count > 0 ? sumObserved[b]! / count : NaN;
    if (count > 0) expectedCalibrationError += (count / labels.length) * Math.abs(meanPredicted - observedRate);
    result.push({ lower: edges ? edges[b]! : b / bins, upper: edges ? edges[b + 1]! : (b + 1) / bins, count, meanPredicted, observedRate });
  }
  return { bins: result, expectedCalibrationError };
}

/**
 * Reliability diagram on `bins` equal-width bins over [0, 1]; empty bins are kept (count 0, NaN means)
 * so every product yields the same shape. ECE = Σ (count / rows) · |meanPredicted − observedRate|.
 */
export function reliability(
  labels: Uint8Array,
  probabilities: ArrayLike<number>,
  bins = 10,
): { bins: ReliabilityBin[]; expectedCalibrationError: number } {
  checkProbabilities(labels, probabilities);
  checkCount(bins, 'bins');
  return reliabilityOf(labels, probabilities, bins);
}

function lowerBound(sorted: Float64Array, length: number, value: number): number {
  let lo = 0;
  let hi = length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Row indices by descending score, ties by ascending row index. Sorting a Float64Array of integer keys
 * (descending dense rank × n + row) uses the native numeric sort, much faster than a comparator.
 */
function descendingOrder(scores: Values): Uint32Array {
  const n = scores.length;
  const distinct = Float64Array.from(scores).sort();
  let m = 0;
  for (let k = 0; k < n; k++) {
    if (m === 0 || distinct[k] !== distinct[m - 1]) distinct[m++] = distinct[k]!;
  }
  const order = new Uint32Array(n);
  if (m * n <= Number.MAX_SAFE_INTEGER) {
    const keys = new Float64Array(n);
    for (let i = 0; i < n; i++) keys[i] = (m - 1 - lowerBound(distinct, m, scores[i]!)) * n + i;
    keys.sort();
    for (let k = 0; k < n; k++) order[k] = keys[k]! % n;
  } else {
    for (let i = 0; i < n; i++) order[i] = i;
    order.sort((a, b) => scores[b]! - scores[a]! || a - b);
  }
  return order;
}

function gainsOf(labels: Uint8Array, scores: Values, groups: number): GainsRow[] {
  const n = labels.length;
  const order = descendingOrder(scores);
  let positives = 0;
  for (let i = 0; i < n; i++) positives += labels[i]!;
  const baseRate = positives / n;
  const rows: GainsRow[] = [];
  let cumulativePositives = 0;
  let start = 0;
  for (let g = 0; g < groups; g++) {
    const end = Math.floor(((g + 1) * n) / groups);
    let inGroup = 0;
    for (let k = start; k < end; k++) inGroup += labels[order[k]!]!;
    cumulativePositives += inGroup;
    rows.push({
      decile: g + 1,
      populationShare: (end - start) / n,
      cumulativePositives,
      cumulativeGain: cumulativePositives / positives,
      lift: inGroup / (end - start) / baseRate,
      cumulativeLift: cumulativePositives / end / baseRate,
    });
    start = end;
  }
  return rows;
}

/**
 * Gains table over `groups` groups of rows by descending score (sizes differ by at most one).
 * Tied scores are split across a group boundary by row index, so the table is reproducible.
 * Without positives, gains and lifts are NaN; so is the lift of an empty group (fewer rows than groups).
 */
export function gainsTable(labels: Uint8Array, scores: ArrayLike<number>, groups = 10): GainsRow[] {
  checkScores(labels, scores);
  checkCount(groups, 'groups');
  return gainsOf(labels, scores, groups);
}

/** Every metric at once, validating and sorting the inputs once. */
export function binaryMetrics(labels: Uint8Array, probabilities: ArrayLike<number>, options: { bins?: number } = {}): BinaryMetrics {
  const bins = options.bins ?? 10;
  checkProbabilities(labels, probabilities);
  checkCount(bins, 'bins');
  const byClass = splitByClass(labels, probabilities);
  const calibration = reliabilityOf(labels, probabilities, bins);
  return {
    rows: labels.length,
    positives: byClass.positive.length,
    baseRate: byClass.positive.length / labels.length,
    rocAuc: aucOf(byClass),
    prAuc: averagePrecisionOf(byClass),
    logLoss: logLossOf(labels, probabilities, 1e-15),
    brier: brierOf(labels, probabilities),
    expectedCalibrationError: calibration.expectedCalibrationError,
    reliability: calibration.bins,
    gains: gainsOf(labels, probabilities, 10),
  };
}

export interface RocPoint {
  falsePositiveRate: number;
  truePositiveRate: number;
  /** rows scoring at or above this are called positive; null for the origin (nobody called) */
  threshold: number | null;
}

function rocCurveOf(labels: Uint8Array, scores: Values, maxPoints: number): RocPoint[] {
  const n = labels.length;
  let positives = 0;
  for (let i = 0; i < n; i++) positives += labels[i]!;
  const negatives = n - positives;
  if (positives === 0 || negatives === 0) return [];
  const order = descendingOrder(scores);
  // a ROC curve runs from (0, 0) to (1, 1) without going back: its L1 length is exactly 2, so
  // keeping a point each time the curve has moved `step` (in |Δfpr| + |Δtpr|) since the last
  // one kept gives at most 2 / step inner points, wherever the curve bends
  const step = 2 / (maxPoints - 2);
  const points: RocPoint[] = [{ falsePositiveRate: 0, truePositiveRate: 0, threshold: null }];
  let kept = { fpr: 0, tpr: 0 };
  let tp = 0;
  let fp = 0;
  let k = 0;
  while (k < n) {
    const threshold = scores[order[k]!]!;
    // tied scores form one threshold: the curve moves diagonally across them
    while (k < n && scores[order[k]!] === threshold) {
      if (labels[order[k]!]) tp++;
      else fp++;
      k++;
    }
    const fpr = fp / negatives;
    const tpr = tp / positives;
    if (k === n || fpr - kept.fpr + (tpr - kept.tpr) >= step - 1e-12) {
      points.push({ falsePositiveRate: fpr, truePositiveRate: tpr, threshold });
      kept = { fpr, tpr };
    }
  }
  return points;
}

/**
 * The ROC curve (false positive rate, true positive rate) over descending score thresholds,
 * thinned to at most `maxPoints` points (first (0, 0), last (1, 1)) by keeping a point each
 * time the curve has moved a fixed distance, so steep and flat stretches both keep their shape.
 * Empty with a single class (the curve is undefined).
 */
export function rocCurve(labels: Uint8Array, scores: ArrayLike<number>, maxPoints = 101): RocPoint[] {
  checkScores(labels, scores);
  if (!Number.isInteger(maxPoints) || maxPoints < 3) throw new Error(`maxPoints must be an integer of at least 3, got ${maxPoints}`);
  return rocCurveOf(labels, scores, maxPoints);
}

export interface HistogramBin {
  /** bins are [lower, upper), the last one also holds its upper bound */
  lower: number;
  upper: number;
  /** rows with label 1 (bought in the window) */
  buyers: number;
  /** rows with label 0 */
  nonBuyers: number;
}

/** The smallest of 0.001, 0.002, 0.005, 0.01, … 0.5, 1 that is at least `value`. */
function niceUpperBound(value: number): number {
  for (let exponent = -3; exponent <= 0; exponent++) {
    for (const mantissa of [1, 2, 5]) {
      const bound = Number((mantissa * 10 ** exponent).toPrecision(1));
      if (bound >= value && bound <= 1) return bound;
    }
  }
  return 1;
}

/** bins + 1 equally spaced edges over [0, upper], rounded so that 0.03 reads 0.03 */
function binEdges(upper: number, bins: number): number[] {
  return Array.from({ length: bins + 1 }, (_, k) => Number(((k * upper) / bins).toPrecision(12)));
}

/** The bin [edges[b], edges[b + 1]) holding p (the last also holds its upper edge), judged on the printed edges. */
function binOf(p: number, edges: readonly number[]): number {
  const bins = edges.length - 1;
  let b = Math.min(Math.max(Math.floor((p / edges[bins]!) * bins), 0), bins - 1);
  if (b < bins - 1 && p >= edges[b + 1]!) b++;
  else if (b > 0 && p < edges[b]!) b--;
  return b;
}

function maxOf(values: Values): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) if (values[i]! > max) max = values[i]!;
  return max;
}

function scoreHistogramOf(labels: Uint8Array, probabilities: Values, bins: number): HistogramBin[] {
  // propensities of a rare purchase sit near 0: spread the bins over [0, a round bound above the largest]
  const upper = niceUpperBound(maxOf(probabilities));
  const edges = binEdges(upper, bins);
  const buyers = new Float64Array(bins);
  const nonBuyers = new Float64Array(bins);
  for (let i = 0; i < labels.length; i++) {
    const b = binOf(probabilities[i]!, edges);
    if (labels[i]) buyers[b]!++;
    else nonBuyers[b]!++;
  }
  return Array.from({ length: bins }, (_, b) => ({ lower: edges[b]!, upper: edges[b + 1]!, buyers: buyers[b]!, nonBuyers: nonBuyers[b]! }));
}

/**
 * Counts of buyers and non-buyers per equal-width probability bin over [0, u], u the smallest
 * round bound (0.001, 0.002, 0.005, 0.01, … 1) at or above the largest probability.
 */
export function scoreHistogram(labels: Uint8Array, probabilities: ArrayLike<number>, bins = 20): HistogramBin[] {
  checkProbabilities(labels, probabilities);
  checkCount(bins, 'bins');
  return scoreHistogramOf(labels, probabilities, bins);
}

/** What the review pages draw, beyond the figures: stored with each evaluated version. */
export interface EvaluationCurves {
  /** at most 101 points */
  roc: RocPoint[];
  /** 20 bins over [0, u] */
  scoreHistogram: HistogramBin[];
  /**
   * the reliability diagram on 10 equal-width bins over [0, u] rather than [0, 1]: the
   * propensity of a rare purchase stays below a few percent, where [0, 1] bins put everyone in one
   */
  calibration: ReliabilityBin[];
}

/** ROC curve (≤ 101 points), score histograms (20 bins) and reliability bins (10), u = round bound above the largest probability. */
export function evaluationCurves(labels: Uint8Array, probabilities: ArrayLike<number>): EvaluationCurves {
  checkProbabilities(labels, probabilities);
  return {
    roc: rocCurveOf(labels, probabilities, 101),
    scoreHistogram: scoreHistogramOf(labels, probabilities, 20),
    calibration: reliabilityOf(labels, probabilities, 10, niceUpperBound(maxOf(probabilities))).bins,
  };
}

/** Column `offset` of a row-major matrix with `stride` columns. */
export function strided(values: Float32Array, stride: number, offset: number): Float32Array {
  checkCount(stride, 'stride');
  if (!Number.isInteger(offset) || offset < 0 || offset >= stride) {
    throw new Error(`offset must be an integer in [0, ${stride}), got ${offset}`);
  }
  if (values.length % stride !== 0) throw new Error(`length ${values.length} is not a multiple of stride ${stride}`);
  const rows = values.length / stride;
  const column = new Float32Array(rows);
  for (let r = 0; r < rows; r++) column[r] = values[r * stride + offset]!;
  return column;
}

/** One column of a rows × stride label matrix (row-major) as its own array. */
export function labelColumn(labels: Uint8Array, stride: number, offset: number): Uint8Array {
  const rows = labels.length / stride;
  const column = new Uint8Array(rows);
  for (let r = 0; r < rows; r++) column[r] = labels[r * stride + offset]!;
  return column;
}

/**
 * Model-agnostic permutation importance: for each group, shuffle its columns with one shared row
 * permutation (so correlated features move together) and report, per output, baseline AUC − permuted AUC.
 * It measures what the model relies on in the window it is given: pass the evaluation window, not the
 * training rows. Outputs with a single class have NaN drops.
 *
 * Each group gets its own PRNG stream derived from `seed` and its position, so results are reproducible
 * and a group's result does not depend on the groups before it. To avoid copying a matrix that may hold
 * 1M rows, `x` is permuted in place while `predict` runs, and restored before the next group (also on error);
 * `predict` is called sequentially and must not keep `x`.
 */
export async function permutationImportance(options: {
  x: Float32Array;
  rows: number;
  columns: number;
  groups: { name: string; columns: number[] }[];
  labels: Uint8Array;
  outputs: number;
  predict: (x: Float32Array, rows: number) => Promise<Float32Array>;
  seed: number;
}): Promise<{ name: string; aucDrop: number[] }[]> {
  const { x, rows, columns, groups, labels, outputs, predict, seed } = options;
  checkCount(rows, 'rows');
  checkCount(columns, 'columns');
  checkCount(outputs, 'outputs');
  if (!Number.isInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
  if (x.length !== rows * columns) {
    throw new Error(`x has length ${x.length} but rows × columns is ${rows} × ${columns} = ${rows * columns}`);
  }
  if (labels.length !== rows * outputs) {
    throw new Error(`labels has length ${labels.length} but rows × outputs is ${rows} × ${outputs} = ${rows * outputs}`);
  }
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! > 1) throw new Error(`labels[${i}] is ${labels[i]}; labels must be 0 or 1`);
  }
  for (const group of groups) {
    if (group.columns.length === 0) throw new Error(`group ${group.name} has no columns`);
    if (new Set(group.columns).size !== group.columns.length) throw new Error(`group ${group.name} repeats a column`);
    for (const c of group.columns) {
      if (!Number.isInteger(c) || c < 0 || c >= columns) {
        throw new Error(`group ${group.name} has column ${c}, outside [0, ${columns})`);
      }
    }
  }
  const labelColumns = Array.from({ length: outputs }, (_, o) => labelColumn(labels, outputs, o));

  const aucs = async (): Promise<number[]> => {
    const predicted = await predict(x, rows);
    if (predicted.length !== rows * outputs) {
      throw new Error(`predict returned length ${predicted.length}, expected rows × outputs = ${rows * outputs}`);
    }
    for (let i = 0; i < predicted.length; i++) {
      if (Number.isNaN(predicted[i])) throw new Error(`predict returned NaN at index ${i}`);
    }
    return labelColumns.map((column, o) => aucOf(splitByClass(column, strided(predicted, outputs, o))));
  };

  const baseline = await aucs();
  const result: { name: string; aucDrop: number[] }[] = [];
  for (const [index, group] of groups.entries()) {
    const permutation = shuffledRows(rows, mulberry32(seed ^ Math.imul(index + 1, 0x9e3779b9)));
    const cols = group.columns;
    const saved = new Float32Array(rows * cols.length);
    for (const [k, c] of cols.entries()) {
      for (let r = 0; r < rows; r++) saved[k * rows + r] = x[r * columns + c]!;
    }
    try {
      for (const [k, c] of cols.entries()) {
        for (let r = 0; r < rows; r++) x[r * columns + c] = saved[k * rows + permutation[r]!]!;
      }
      const permuted = await aucs();
      result.push({ name: group.name, aucDrop: baseline.map((auc, o) => auc - permuted[o]!) });
    } finally {
      for (const [k, c] of cols.entries()) {
        for (let r = 0; r < rows; r++) x[r * columns + c] = saved[k * rows + r]!;
      }
    }
  }
  return result;
}
