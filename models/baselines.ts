/**
 * The two baselines every propensity model must beat (DOMAIN.md): an RFM heuristic and
 * BG/NBD. Both produce a ranking score; probabilities come from a binned calibration on an
 * earlier window, the way a marketer reads "response rate of this RFM cell".
 */

/** 1..5 by quintile of `values` among rows where `present` is set; 0 elsewhere. */
export function quintiles(values: ArrayLike<number>, present: (row: number) => boolean, rows: number): Uint8Array {
  const chosen: number[] = [];
  for (let row = 0; row < rows; row++) if (present(row)) chosen.push(values[row] as number);
  const sorted = Float64Array.from(chosen).sort();
  const edges = [0.2, 0.4, 0.6, 0.8].map((q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0);
  const out = new Uint8Array(rows);
  for (let row = 0; row < rows; row++) {
    if (!present(row)) continue;
    const value = values[row] as number;
    let quintile = 1;
    for (const edge of edges) if (value > edge) quintile++;
    out[row] = quintile;
  }
  return out;
}

export interface RfmInputs {
  rows: number;
  /** larger = more recent (e.g. exp(-days / horizon)); used only where purchaseDays > 0 */
  recency: ArrayLike<number>;
  purchaseDays: ArrayLike<number>;
  spend: ArrayLike<number>;
}

/** Classic RFM cell code R*100 + F*10 + M per row (0 where nothing was bought). */
export function rfmCells(inputs: RfmInputs, withSpend: boolean): Uint16Array {
  const bought = (row: number) => (inputs.purchaseDays[row] as number) > 0;
  const r = quintiles(inputs.recency, bought, inputs.rows);
  const f = quintiles(inputs.purchaseDays, bought, inputs.rows);
  const m = withSpend ? quintiles(inputs.spend, bought, inputs.rows) : new Uint8Array(inputs.rows);
  const cells = new Uint16Array(inputs.rows);
  for (let row = 0; row < inputs.rows; row++) cells[row] = (r[row] as number) * 100 + (f[row] as number) * 10 + (m[row] as number);
  return cells;
}

/**
 * The RFM baseline of a target: the cell of the person's history of the target itself, then
 * their overall RFM cell to order people who never bought the target.
 */
export function rfmScores(target: RfmInputs | null, overallCells: Uint16Array): Float32Array {
  const own = target ? rfmCells(target, false) : overallCells;
  const scores = new Float32Array(overallCells.length);
  for (let row = 0; row < scores.length; row++) scores[row] = (own[row] as number) * 1000 + (overallCells[row] as number);
  return scores;
}

/** A binned calibration as data, so that a run can store it and a scoring job apply it. */
export interface BinnedCalibration {
  /** upper edges of the bins, ascending */
  edges: number[];
  /** observed rate of each bin, smoothed towards the base rate */
  rates: number[];
  baseRate: number;
}

/**
 * Maps a score to the observed rate of its bin on a calibration window: up to `bins`
 * quantile bins of the calibration scores (equal scores stay in one bin), each rate
 * smoothed towards the base rate.
 */
export function fitCalibrationTable(scores: ArrayLike<number>, labels: ArrayLike<number>, bins = 20): BinnedCalibration {
  const n = scores.length;
  const sorted = Float64Array.from(scores).sort();
  // upper edges at the quantiles, distinct, so that equal scores share a bin
  const edges: number[] = [];
  for (let k = 1; k <= bins; k++) {
    const edge = sorted[Math.min(n - 1, Math.ceil((k * n) / bins) - 1)];
    if (edge !== undefined && edge !== edges[edges.length - 1]) edges.push(edge);
  }
  const counts = new Float64Array(edges.length);
  const positives = new Float64Array(edges.length);
  let allPositives = 0;
  for (let i = 0; i < n; i++) {
    const bin = binOf(edges, scores[i] as number);
    counts[bin] = (counts[bin] as number) + 1;
    positives[bin] = (positives[bin] as number) + (labels[i] as number);
    allPositives += labels[i] as number;
  }
  const baseRate = n > 0 ? allPositives / n : 0;
  const rates = Array.from(counts, (count, bin) => ((positives[bin] as number) + baseRate * 10) / (count + 10));
  return {
    edges,
    rates: nonDecreasing(
      rates,
      Array.from(counts, (count) => count + 10),
    ),
    baseRate,
  };
}

/** Pool adjacent violators: the closest non-decreasing rates (weighted), so that a higher score never gets a lower probability. */
function nonDecreasing(rates: number[], weights: number[]): number[] {
  const blocks: Array<{ value: number; weight: number; size: number }> = [];
  rates.forEach((rate, i) => {
    blocks.push({ value: rate, weight: weights[i] as number, size: 1 });
    while (
      blocks.length > 1 &&
      (blocks[blocks.length - 2] as { value: number }).value > (blocks[blocks.length - 1] as { value: number }).value
    ) {
      const last = blocks.pop() as { value: number; weight: number; size: number };
      const previous = blocks[blocks.length - 1] as { value: number; weight: number; size: number };
      const weight = previous.weight + last.weight;
      previous.value = (previous.value * previous.weight + last.value * last.weight) / weight;
      previous.weight = weight;
      previous.size += last.size;
    }
  });
  return blocks.flatMap((block) => Array.from({ length: block.size }, () => block.value));
}

function binOf(edges: readonly number[], score: number): number {
  let low = 0;
  let high = edges.length - 1;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((edges[middle] as number) < score) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** The calibrated probability of one score. */
export function calibrated(table: BinnedCalibration, score: number): number {
  return table.edges.length === 0 ? table.baseRate : (table.rates[binOf(table.edges, score)] as number);
}

/**
 * The calibrated probability (non-decreasing in the score), plus at most 1e-4 by the score's
 * bin and place inside it: a list keeps the baseline's own ranking (the ranking its AUC was
 * measured on) instead of ties, at a cost in calibration far below a bin's sampling error.
 */
export function calibratedWithinBin(table: BinnedCalibration, score: number): number {
  const { edges } = table;
  if (edges.length === 0) return table.baseRate;
  const bin = binOf(edges, score);
  const upper = edges[bin] as number;
  // baseline scores are never negative: the first bin starts at 0
  const lower = bin > 0 ? (edges[bin - 1] as number) : Math.min(0, score, upper - 1);
  const width = Math.max(upper - lower, 1e-12);
  // beyond the last edge the place keeps growing, below 2
  const place = score <= upper ? Math.max(0, (score - lower) / width) : 1 + (1 - Math.exp(-(score - upper) / width));
  return Math.min(1, (table.rates[bin] as number) + (1e-4 * (bin + place)) / (edges.length + 1));
}

export function fitBinnedCalibration(scores: ArrayLike<number>, labels: ArrayLike<number>, bins = 20): (score: number) => number {
  const table = fitCalibrationTable(scores, labels, bins);
  return (score: number) => calibrated(table, score);
}

/**
 * BG/NBD predicts purchase days of anything; a target's part of them is the person's own
 * share of their purchase days on the target, shrunk towards everyone's share.
 */
export function bgnbdTargetScores(expected: ArrayLike<number>, targetDays: ArrayLike<number>, allDays: ArrayLike<number>): Float32Array {
  const rows = expected.length;
  let target = 0;
  let all = 0;
  for (let row = 0; row < rows; row++) {
    target += targetDays[row] as number;
    all += allDays[row] as number;
  }
  const share = all > 0 ? target / all : 0;
  const scores = new Float32Array(rows);
  for (let row = 0; row < rows; row++) {
    scores[row] = ((expected[row] as number) * ((targetDays[row] as number) + share)) / ((allDays[row] as number) + 1);
  }
  return scores;
}

export function applyCalibration(scores: Float32Array, calibrate: (score: number) => number): Float32Array {
  const out = new Float32Array(scores.length);
  for (let i = 0; i < scores.length; i++) out[i] = calibrate(scores[i] as number);
  return out;
}
