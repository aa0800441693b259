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

/**
 * Classic RFM cell code R*100 + F*10 + M for the target's own history, then the person's
 * overall RFM to order people who never bought the target.
 */
export function rfmScores(target: RfmInputs, overall: RfmInputs): Float32Array {
  const cell = (inputs: RfmInputs, withSpend: boolean) => {
    const bought = (row: number) => (inputs.purchaseDays[row] as number) > 0;
    const r = quintiles(inputs.recency, bought, inputs.rows);
    const f = quintiles(inputs.purchaseDays, bought, inputs.rows);
    const m = withSpend ? quintiles(inputs.spend, bought, inputs.rows) : new Uint8Array(inputs.rows);
    return (row: number) => (r[row] as number) * 100 + (f[row] as number) * 10 + (m[row] as number);
  };
  const own = cell(target, false);
  const all = cell(overall, true);
  const scores = new Float32Array(target.rows);
  for (let row = 0; row < target.rows; row++) scores[row] = own(row) * 1000 + all(row);
  return scores;
}

/**
 * Maps a score to the observed rate of its bin on a calibration window: up to `bins`
 * quantile bins of the calibration scores (equal scores stay in one bin), each rate
 * smoothed towards the base rate.
 */
export function fitBinnedCalibration(scores: ArrayLike<number>, labels: ArrayLike<number>, bins = 20): (score: number) => number {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (scores[a] as number) - (scores[b] as number));
  let positives = 0;
  for (let i = 0; i < n; i++) positives += labels[i] as number;
  const baseRate = n > 0 ? positives / n : 0;
  const upperEdges: number[] = [];
  const rates: number[] = [];
  let start = 0;
  while (start < n) {
    let end = Math.min(n, start + Math.max(1, Math.ceil(n / bins)));
    while (end < n && scores[order[end] as number] === scores[order[end - 1] as number]) end++;
    let binPositives = 0;
    for (let i = start; i < end; i++) binPositives += labels[order[i] as number] as number;
    upperEdges.push(scores[order[end - 1] as number] as number);
    rates.push((binPositives + baseRate * 10) / (end - start + 10));
    start = end;
  }
  return (score: number) => {
    let low = 0;
    let high = upperEdges.length - 1;
    if (high < 0) return baseRate;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((upperEdges[middle] as number) < score) low = middle + 1;
      else high = middle;
    }
    return rates[low] as number;
  };
}

export function applyCalibration(scores: Float32Array, calibrate: (score: number) => number): Float32Array {
  const out = new Float32Array(scores.length);
  for (let i = 0; i < scores.length; i++) out[i] = calibrate(scores[i] as number);
  return out;
}
