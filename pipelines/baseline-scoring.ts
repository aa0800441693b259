import { type BinnedCalibration, calibrated, calibratedWithinBin } from '../models/baselines.ts';
import { type BgNbdParams, expectedPurchasesBatch } from '../models/bgnbd.ts';
import { NO_GROUP } from '../models/propensity-network.ts';
import { type BaselineKind, baselineScoresOnMatrix } from './evaluation.ts';
import type { FeatureMatrix } from './features.ts';
import type { Target } from './targets.ts';

const REASONS = 3;

/** What a baseline version applies when it scores: its kind, its target, its calibration. */
export interface BaselineScorer {
  kind: BaselineKind;
  target: Target;
  calibration: BinnedCalibration;
}

export interface ScoredRows {
  scores: Float32Array;
  /** rows x 3 explanation-group codes (255 = none) and their log-odds contributions */
  reasonCodes: Uint8Array;
  contributions: Float32Array;
}

/**
 * Scores a matrix (its BG/NBD columns filled by the run's fit) with a baseline version:
 * probability from its calibration (people of one bin still ordered by the baseline's own score), and reasons from its own inputs. A reason's contribution is
 * how much the person's score moves (in log-odds, or log expected purchases for BG/NBD) when
 * that one input is set to the population's median: recency, frequency and tenure for BG/NBD,
 * recency, frequency and spend quintiles for RFM.
 */
export function scoreWithBaseline(scorer: BaselineScorer, matrix: FeatureMatrix, params: BgNbdParams | null): ScoredRows {
  const raw = baselineScoresOnMatrix(scorer.kind, matrix, scorer.target);
  const scores = Float32Array.from(raw, (score) => calibratedWithinBin(scorer.calibration, score));
  const groups = matrix.layout.explanationGroups.map((group) => group.name);
  const contributionsByGroup =
    scorer.kind === 'bgnbd' ? bgnbdContributions(matrix, params, groups) : rfmContributions(raw, scorer.calibration, groups);
  const reasonCodes = new Uint8Array(matrix.rows * REASONS).fill(NO_GROUP);
  const contributions = new Float32Array(matrix.rows * REASONS);
  for (let row = 0; row < matrix.rows; row++) {
    const ranked = contributionsByGroup
      .map(({ group, values }) => ({ group, value: values[row] as number }))
      .filter((entry) => entry.value > 0)
      .sort((a, b) => b.value - a.value)
      .slice(0, REASONS);
    ranked.forEach((entry, k) => {
      reasonCodes[row * REASONS + k] = entry.group;
      contributions[row * REASONS + k] = entry.value;
    });
  }
  return { scores, reasonCodes, contributions };
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/** log E[purchases] minus the same with one input (frequency, recency, tenure) at the median of the people with a history. */
function bgnbdContributions(
  matrix: FeatureMatrix,
  params: BgNbdParams | null,
  groups: string[],
): Array<{ group: number; values: Float64Array }> {
  const { history, rows, horizonDays } = matrix;
  const withHistory: number[] = [];
  for (let row = 0; row < rows; row++) if ((history.firstAge[row] as number) > 0) withHistory.push(row);
  if (!params || withHistory.length === 0) return [];
  const x = Float64Array.from(withHistory, (row) => history.repeatDays[row] as number);
  const T = Float64Array.from(withHistory, (row) => history.firstAge[row] as number);
  const last = Float64Array.from(withHistory, (row) => Math.min(history.lastAge[row] as number, history.firstAge[row] as number));
  const tx = Float64Array.from(withHistory, (_, i) => ((x[i] as number) > 0 ? (T[i] as number) - (last[i] as number) : 0));
  const medianX = Math.round(median([...x]));
  const medianLast = median([...last]);
  const medianT = median([...T]);
  const expected = (summary: { x: Float64Array; tx: Float64Array; T: Float64Array }) => {
    try {
      return expectedPurchasesBatch(params, summary, horizonDays).expected;
    } catch {
      return null;
    }
  };
  const base = expected({ x, tx, T });
  if (!base) return [];
  const frequency = expected({ x: x.map(() => medianX), tx: tx.map((value) => (medianX > 0 ? value : 0)), T });
  const recency = expected({
    x,
    tx: tx.map((value, i) => ((x[i] as number) > 0 ? Math.max(0, (T[i] as number) - Math.min(medianLast, T[i] as number)) : value)),
    T,
  });
  const tenureT = T.map((_, i) => Math.max(medianT, last[i] as number, 1e-6));
  const tenure = expected({ x, tx: tenureT.map((value, i) => ((x[i] as number) > 0 ? value - (last[i] as number) : 0)), T: tenureT });
  const result: Array<{ group: number; values: Float64Array }> = [];
  for (const [name, occluded] of [
    ['frequency', frequency],
    ['recency', recency],
    ['tenure', tenure],
  ] as const) {
    const group = groups.indexOf(name);
    if (group < 0 || !occluded) continue;
    const values = new Float64Array(rows);
    withHistory.forEach((row, i) => {
      const value = Math.log((base[i] as number) + 1e-9) - Math.log((occluded[i] as number) + 1e-9);
      values[row] = Number.isFinite(value) ? value : 0;
    });
    result.push({ group, values });
  }
  return result;
}

/** The RFM score packs two cells (the target's own, then the overall one) as digits: R, F, M each 1..5, 0 without purchase. */
function withDigit(score: number, positions: number[]): number {
  let result = score;
  for (const position of positions) {
    const unit = 10 ** position;
    const digit = Math.floor(result / unit) % 10;
    if (digit > 0) result += (3 - digit) * unit;
  }
  return result;
}

const logit = (p: number) => Math.log(Math.max(1e-6, p) / Math.max(1e-6, 1 - p));

/** Log-odds of the person's cell minus the log-odds with one dimension at the middle quintile. */
function rfmContributions(
  raw: Float32Array,
  calibration: BinnedCalibration,
  groups: string[],
): Array<{ group: number; values: Float64Array }> {
  const dimensions: Array<[string, number[]]> = [
    ['recency', [5, 2]],
    ['frequency', [4, 1]],
    ['spend', [3, 0]],
  ];
  const result: Array<{ group: number; values: Float64Array }> = [];
  for (const [name, positions] of dimensions) {
    const group = groups.indexOf(name);
    if (group < 0) continue;
    result.push({
      group,
      values: Float64Array.from(
        raw,
        (score) => logit(calibrated(calibration, score)) - logit(calibrated(calibration, withDigit(score, positions))),
      ),
    });
  }
  return result;
}
