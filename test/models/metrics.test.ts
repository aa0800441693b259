import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  averagePrecision,
  binaryMetrics,
  brierScore,
  gainsTable,
  logLoss,
  permutationImportance,
  reliability,
  rocAuc,
  strided,
} from '../../models/metrics.ts';
import { mulberry32 as generator } from '../../models/random.ts';

const u8 = (...values: number[]) => Uint8Array.from(values);

/** Brute-force Mann-Whitney: every (positive, negative) pair, ties count half. */
function pairwiseAuc(labels: Uint8Array, scores: number[]): number {
  let wins = 0;
  let pairs = 0;
  for (let i = 0; i < labels.length; i++) {
    if (!labels[i]) continue;
    for (let j = 0; j < labels.length; j++) {
      if (labels[j]) continue;
      pairs++;
      if (scores[i]! > scores[j]!) wins += 1;
      else if (scores[i] === scores[j]) wins += 0.5;
    }
  }
  return pairs === 0 ? NaN : wins / pairs;
}

/** AP as the mean, over positives, of the precision among all rows scored at least as high (ties included). */
function bruteAveragePrecision(labels: Uint8Array, scores: number[]): number {
  let positives = 0;
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    if (!labels[i]) continue;
    positives++;
    let above = 0;
    let positiveAbove = 0;
    for (let j = 0; j < labels.length; j++) {
      if (scores[j]! >= scores[i]!) {
        above++;
        positiveAbove += labels[j]!;
      }
    }
    sum += positiveAbove / above;
  }
  return positives === 0 || positives === labels.length ? NaN : sum / positives;
}

/** Gains by a plain stable Array sort: descending score, ties by row index. */
function bruteGains(labels: Uint8Array, scores: number[], groups: number) {
  const n = labels.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b]! - scores[a]! || a - b);
  const total = labels.reduce((s, v) => s + v, 0);
  const perGroup: number[] = [];
  const sizes: number[] = [];
  for (let g = 0; g < groups; g++) {
    const start = Math.floor((g * n) / groups);
    const end = Math.floor(((g + 1) * n) / groups);
    perGroup.push(order.slice(start, end).reduce((s, i) => s + labels[i]!, 0));
    sizes.push(end - start);
  }
  return { perGroup, sizes, total };
}

const labelledScores = fc
  .array(fc.tuple(fc.integer({ min: 0, max: 1 }), fc.integer({ min: 0, max: 5 })), { minLength: 1, maxLength: 40 })
  .map((pairs) => ({ labels: Uint8Array.from(pairs.map(([y]) => y)), scores: pairs.map(([, s]) => s / 5) }));

describe('rocAuc', () => {
  it('matches a hand-computed example with a tie', () => {
    // positives {0.9, 0.7, 0.3}, negatives {0.8, 0.7, 0.1}: 0.9 beats 3; 0.7 beats 0.1, ties 0.7 → 1.5;
    // 0.3 beats 0.1 → 1. U = 5.5 over 9 pairs.
    expect(rocAuc(u8(1, 0, 1, 0, 1, 0), [0.9, 0.8, 0.7, 0.7, 0.3, 0.1])).toBeCloseTo(5.5 / 9, 15);
    // scikit-learn's documented example: roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.75
    expect(rocAuc(u8(0, 0, 1, 1), [0.1, 0.4, 0.35, 0.8])).toBe(0.75);
  });

  it('is 1 when perfectly separated, 0 when reversed, 0.5 for constant scores', () => {
    const labels = u8(0, 1, 0, 1, 1, 0);
    expect(rocAuc(labels, [0.1, 0.9, 0.2, 0.8, 0.7, 0.3])).toBe(1);
    expect(rocAuc(labels, [0.9, 0.1, 0.8, 0.2, 0.3, 0.7])).toBe(0);
    expect(rocAuc(labels, new Float32Array(6).fill(0.4))).toBe(0.5);
  });

  it('accepts any non-NaN scores, including infinities and -0', () => {
    // positives {∞, 0}, negatives {−∞, −0}: three pairs won, 0 vs −0 tied → 3.5 / 4
    expect(rocAuc(u8(0, 1, 0, 1), [-Infinity, Infinity, -0, 0])).toBe(0.875);
  });

  it('returns NaN with a single class', () => {
    expect(rocAuc(u8(1, 1, 1), [0.1, 0.2, 0.3])).toBeNaN();
    expect(rocAuc(u8(0, 0), [0.1, 0.2])).toBeNaN();
  });

  it('equals the brute-force pairwise Mann-Whitney count', () => {
    fc.assert(
      fc.property(labelledScores, ({ labels, scores }) => {
        const expected = pairwiseAuc(labels, scores);
        const actual = rocAuc(labels, scores);
        if (Number.isNaN(expected)) expect(actual).toBeNaN();
        else expect(actual).toBeCloseTo(expected, 12);
      }),
      { numRuns: 500 },
    );
  });
});

describe('averagePrecision', () => {
  it('matches a hand-computed example with a tie', () => {
    // thresholds descending (tp, fp): 0.9 (1,0) Δrecall 1/3 × precision 1; 0.8 (1,1) Δrecall 0;
    // 0.7 (2,2) 1/3 × 1/2; 0.3 (3,2) 1/3 × 3/5; 0.1 adds no recall. AP = 1/3 + 1/6 + 1/5 = 0.7
    expect(averagePrecision(u8(1, 0, 1, 0, 1, 0), [0.9, 0.8, 0.7, 0.7, 0.3, 0.1])).toBeCloseTo(0.7, 15);
    // scikit-learn's documented example: average_precision_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) = 0.8333…
    // (0.8: 1/2 × 1; 0.4: 0; 0.35: 1/2 × 2/3)
    expect(averagePrecision(u8(0, 0, 1, 1), [0.1, 0.4, 0.35, 0.8])).toBeCloseTo(5 / 6, 15);
  });

  it('groups tied scores into one threshold', () => {
    // one threshold holding everything: precision 2/4, recall 0 → 1
    expect(averagePrecision(u8(1, 0, 1, 0), [0.5, 0.5, 0.5, 0.5])).toBe(0.5);
  });

  it('is 1 for a perfect ranking, NaN with a single class', () => {
    expect(averagePrecision(u8(0, 1, 1, 0, 1), [0.2, 0.9, 0.8, 0.1, 0.7])).toBe(1);
    expect(averagePrecision(u8(1, 1), [0.2, 0.9])).toBeNaN();
    expect(averagePrecision(u8(0, 0), [0.2, 0.9])).toBeNaN();
  });

  it('equals the brute-force definition', () => {
    fc.assert(
      fc.property(labelledScores, ({ labels, scores }) => {
        const expected = bruteAveragePrecision(labels, scores);
        const actual = averagePrecision(labels, scores);
        if (Number.isNaN(expected)) expect(actual).toBeNaN();
        else expect(actual).toBeCloseTo(expected, 12);
      }),
      { numRuns: 500 },
    );
  });
});

describe('logLoss and brierScore', () => {
  it('match hand-computed examples', () => {
    // scikit-learn's documented log_loss example, spam = 1: −(ln .9 + ln .9 + ln .8 + ln .65) / 4 = 0.21616…
    expect(logLoss(u8(1, 0, 0, 1), [0.9, 0.1, 0.2, 0.65])).toBeCloseTo(0.21616187468057912, 12);
    // scikit-learn's documented brier_score_loss example: (.01 + .01 + .04 + .09) / 4 = 0.0375
    expect(brierScore(u8(0, 1, 1, 0), [0.1, 0.9, 0.8, 0.3])).toBeCloseTo(0.0375, 15);
  });

  it('log loss of p = 0.5 is ln 2; Brier of p = y is 0', () => {
    expect(logLoss(u8(1, 0, 1), [0.5, 0.5, 0.5])).toBeCloseTo(Math.LN2, 15);
    expect(brierScore(u8(1, 0, 1), [1, 0, 1])).toBe(0);
  });

  it('clips probabilities so a confident miss stays finite', () => {
    expect(logLoss(u8(1), [0])).toBeCloseTo(-Math.log(1e-15), 10);
    expect(logLoss(u8(0), [1], 1e-7)).toBeCloseTo(-Math.log(1e-7), 6);
    expect(logLoss(u8(1), [1])).toBeGreaterThan(0);
    expect(logLoss(u8(1), [1])).toBeLessThan(2e-15);
  });
});

describe('reliability', () => {
  it('matches a hand-computed example', () => {
    // bin [0, .5): .1 .2 .3 → mean .2, rate 1/3; bin [.5, 1]: .6 .8 .9 → mean .7667, rate 2/3.
    // ECE = 3/6 × |.2 − 1/3| + 3/6 × |.7667 − 2/3| = .5 × .1333 + .5 × .1 = 0.11667
    const { bins, expectedCalibrationError } = reliability(u8(0, 0, 1, 1, 1, 0), [0.1, 0.2, 0.3, 0.6, 0.8, 0.9], 2);
    expect(bins.map((b) => [b.lower, b.upper, b.count])).toEqual([
      [0, 0.5, 3],
      [0.5, 1, 3],
    ]);
    expect(bins[0]!.meanPredicted).toBeCloseTo(0.2, 15);
    expect(bins[0]!.observedRate).toBeCloseTo(1 / 3, 15);
    expect(bins[1]!.meanPredicted).toBeCloseTo(2.3 / 3, 15);
    expect(bins[1]!.observedRate).toBeCloseTo(2 / 3, 15);
    expect(expectedCalibrationError).toBeCloseTo(0.35 / 3, 15);
  });

  it('is 0 for perfectly calibrated bins and keeps empty bins', () => {
    const { bins, expectedCalibrationError } = reliability(u8(1, 0, 0, 0, 1, 1, 1, 0), [0.25, 0.25, 0.25, 0.25, 0.75, 0.75, 0.75, 0.75]);
    expect(expectedCalibrationError).toBe(0);
    expect(bins).toHaveLength(10);
    expect(bins.map((b) => b.count)).toEqual([0, 0, 4, 0, 0, 0, 0, 4, 0, 0]);
    expect(bins[0]!.meanPredicted).toBeNaN();
    expect(bins[0]!.observedRate).toBeNaN();
  });

  it('puts 1 in the last bin and bin edges in the upper bin', () => {
    const { bins } = reliability(u8(1, 0, 1), [1, 0.5, 0], 2);
    expect(bins.map((b) => b.count)).toEqual([1, 2]);
  });

  it('counts every row and matches a brute-force ECE', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 1 }), fc.double({ min: 0, max: 1, noNaN: true })), { minLength: 1 }),
        fc.integer({ min: 1, max: 12 }),
        (pairs, binCount) => {
          const labels = Uint8Array.from(pairs.map(([y]) => y));
          const p = pairs.map(([, v]) => v);
          const { bins, expectedCalibrationError } = reliability(labels, p, binCount);
          expect(bins.reduce((s, b) => s + b.count, 0)).toBe(labels.length);
          let ece = 0;
          for (const b of bins) {
            const inBin = p.flatMap((v, i) => ((v >= b.lower && v < b.upper) || (v === 1 && b.upper === 1) ? [i] : []));
            if (inBin.length === 0) continue;
            const meanP = inBin.reduce((s, i) => s + p[i]!, 0) / inBin.length;
            const rate = inBin.reduce((s, i) => s + labels[i]!, 0) / inBin.length;
            ece += (inBin.length / labels.length) * Math.abs(meanP - rate);
          }
          expect(expectedCalibrationError).toBeCloseTo(ece, 10);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('gainsTable', () => {
  it('matches a hand-computed table', () => {
    // 20 rows, scores 20..1 so row i has rank i + 1; positives at ranks 1, 2, 3, 7: base rate 0.2.
    // decile 1 (ranks 1–2): 2 positives, lift 1 / .2 = 5; decile 2: 1, lift .5 / .2 = 2.5, cumulative 3 / 4 / .2 = 3.75;
    // decile 3: 0, cumulative 3 / 6 / .2 = 2.5; decile 4: 1, gain 1, cumulative 4 / 8 / .2 = 2.5; then 4 / 2d / .2 = 10 / d.
    const labels = new Uint8Array(20);
    for (const rank of [1, 2, 3, 7]) labels[rank - 1] = 1;
    const scores = Array.from({ length: 20 }, (_, i) => 20 - i);
    const table = gainsTable(labels, scores);
    expect(table.map((r) => r.decile)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(table.map((r) => r.populationShare)).toEqual(Array(10).fill(0.1));
    expect(table.map((r) => r.cumulativePositives)).toEqual([2, 3, 3, 4, 4, 4, 4, 4, 4, 4]);
    expect(table.map((r) => r.cumulativeGain)).toEqual([0.5, 0.75, 0.75, 1, 1, 1, 1, 1, 1, 1]);
    const lifts = [5, 2.5, 0, 2.5, 0, 0, 0, 0, 0, 0];
    for (const [i, r] of table.entries()) expect(r.lift).toBeCloseTo(lifts[i]!, 12);
    const cumulativeLifts = [5, 3.75, 2.5, 2.5, 2, 10 / 6, 10 / 7, 10 / 8, 10 / 9, 1];
    for (const [i, r] of table.entries()) expect(r.cumulativeLift).toBeCloseTo(cumulativeLifts[i]!, 12);
  });

  it('splits ties across a boundary by row index', () => {
    // rows 0, 1, 2 tie at 0.5: rows 0 and 1 form the top half, row 2 (the positive) falls in the second
    const table = gainsTable(u8(0, 0, 1, 0), [0.5, 0.5, 0.5, 0.1], 2);
    expect(table.map((r) => r.cumulativePositives)).toEqual([0, 1]);
    expect(gainsTable(u8(0, 0, 1, 0), [0.5, 0.5, 0.5, 0.1], 2)).toEqual(table);
  });

  it('has last cumulative gain and lift of 1, positives summing to the total, share-weighted lifts summing to 1', () => {
    fc.assert(
      fc.property(
        labelledScores.filter(({ labels }) => labels.includes(1)),
        fc.integer({ min: 1, max: 12 }),
        ({ labels, scores }, groups) => {
          const table = gainsTable(labels, scores, groups);
          const brute = bruteGains(labels, scores, groups);
          expect(table).toHaveLength(groups);
          expect(table.at(-1)!.cumulativeGain).toBe(1);
          expect(table.at(-1)!.cumulativeLift).toBe(1);
          expect(table.at(-1)!.cumulativePositives).toBe(brute.total);
          let previous = 0;
          table.forEach((r, g) => {
            expect(r.cumulativePositives - previous).toBe(brute.perGroup[g]);
            expect(r.populationShare).toBeCloseTo(brute.sizes[g]! / labels.length, 15);
            previous = r.cumulativePositives;
          });
          const weighted = table.reduce((s, r) => s + (r.populationShare > 0 ? r.lift * r.populationShare : 0), 0);
          expect(weighted).toBeCloseTo(1, 12);
          expect(table.reduce((s, r) => s + r.populationShare, 0)).toBeCloseTo(1, 12);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('gives NaN gains without positives, and NaN lift for empty groups', () => {
    expect(gainsTable(u8(0, 0, 0), [0.1, 0.2, 0.3], 3).every((r) => Number.isNaN(r.cumulativeGain))).toBe(true);
    const table = gainsTable(u8(1, 0), [0.9, 0.1], 4);
    expect(table.map((r) => r.populationShare)).toEqual([0, 0.5, 0, 0.5]);
    expect(table[0]!.lift).toBeNaN();
    expect(table[1]!.lift).toBe(2);
  });
});

describe('binaryMetrics', () => {
  it('agrees with the individual functions', () => {
    const labels = u8(1, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0);
    const p = Float32Array.from([0.9, 0.8, 0.7, 0.7, 0.3, 0.1, 0.2, 0.55, 0.45, 0.05, 1, 0]);
    const m = binaryMetrics(labels, p, { bins: 5 });
    const r = reliability(labels, p, 5);
    expect(m).toEqual({
      rows: 12,
      positives: 5,
      baseRate: 5 / 12,
      rocAuc: rocAuc(labels, p),
      prAuc: averagePrecision(labels, p),
      logLoss: logLoss(labels, p),
      brier: brierScore(labels, p),
      expectedCalibrationError: r.expectedCalibrationError,
      reliability: r.bins,
      gains: gainsTable(labels, p),
    });
  });

  it('handles 1M rows of a calibrated model', () => {
    const n = 1_000_000;
    const random = generator(7);
    const labels = new Uint8Array(n);
    const p = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      p[i] = random() * 0.2;
      labels[i] = random() < p[i]! ? 1 : 0;
    }
    const started = performance.now();
    const m = binaryMetrics(labels, p);
    const elapsed = performance.now() - started;
    expect(m.rows).toBe(n);
    expect(m.baseRate).toBeCloseTo(0.1, 2);
    expect(m.expectedCalibrationError).toBeLessThan(0.005);
    // p uniform on [0, 0.2], y ~ Bernoulli(p): positives have density p / 0.02, negatives (1 − p) / 0.18,
    // AUC = ∫ f₊(a) F₋(a) da = ∫₀^0.2 (a / 0.02) (a − a²/2) / 0.18 da ≈ 0.6852
    expect(m.rocAuc).toBeCloseTo(0.6852, 2);
    expect(m.gains.at(-1)!.cumulativeGain).toBe(1);
    expect(elapsed).toBeLessThan(15_000);
  });
});

describe('input checks', () => {
  it('names the lengths when they differ', () => {
    expect(() => rocAuc(u8(1, 0, 1), [0.1, 0.2])).toThrow(/labels has length 3 but scores has length 2/);
    expect(() => brierScore(u8(1), [0.1, 0.2])).toThrow(/labels has length 1 but probabilities has length 2/);
  });

  it('names the index of a bad probability or label', () => {
    expect(() => logLoss(u8(1, 0, 1), [0.1, NaN, 0.2])).toThrow(/probabilities\[1\] is NaN/);
    expect(() => binaryMetrics(u8(1, 0, 1), [0.1, 0.2, 1.5])).toThrow(/probabilities\[2\] is 1\.5/);
    expect(() => reliability(u8(1, 0), [-0.01, 0.2])).toThrow(/probabilities\[0\]/);
    expect(() => rocAuc(u8(1, 0), [0.1, NaN])).toThrow(/scores\[1\] is NaN/);
    expect(() => averagePrecision(u8(1, 2), [0.1, 0.2])).toThrow(/labels\[1\] is 2/);
  });

  it('refuses empty input and bad counts', () => {
    expect(() => rocAuc(u8(), [])).toThrow(/no rows/);
    expect(() => reliability(u8(1), [0.5], 0)).toThrow(/bins/);
    expect(() => gainsTable(u8(1), [0.5], 1.5)).toThrow(/groups/);
  });
});

describe('strided', () => {
  it('extracts one column of a row-major matrix', () => {
    const m = Float32Array.from([1, 2, 3, 4, 5, 6]);
    expect(Array.from(strided(m, 3, 1))).toEqual([2, 5]);
    expect(Array.from(strided(m, 2, 0))).toEqual([1, 3, 5]);
    expect(() => strided(m, 4, 0)).toThrow(/multiple/);
    expect(() => strided(m, 3, 3)).toThrow(/offset/);
  });
});

describe('permutationImportance', () => {
  // 200 rows × 3 columns: column 0 decides output 0, column 1 decides output 1, column 2 is unused.
  const rows = 200;
  const columns = 3;
  function fixture() {
    const random = generator(11);
    const x = new Float32Array(rows * columns);
    const labels = new Uint8Array(rows * 2);
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < columns; c++) x[r * columns + c] = random();
      labels[r * 2] = x[r * columns]! > 0.5 ? 1 : 0;
      labels[r * 2 + 1] = x[r * columns + 1]! > 0.3 ? 1 : 0;
    }
    const predict = async (input: Float32Array, n: number) => {
      const out = new Float32Array(n * 2);
      for (let r = 0; r < n; r++) {
        out[r * 2] = input[r * columns]!;
        out[r * 2 + 1] = input[r * columns + 1]!;
      }
      return out;
    };
    return { x, labels, predict };
  }
  const groups = [
    { name: 'first', columns: [0] },
    { name: 'second', columns: [1] },
    { name: 'unused', columns: [2] },
    { name: 'both', columns: [0, 1] },
  ];

  it('drops AUC only for the outputs that use the permuted columns, and restores x', async () => {
    const { x, labels, predict } = fixture();
    const original = x.slice();
    const result = await permutationImportance({ x, rows, columns, groups, labels, outputs: 2, predict, seed: 42 });
    expect(x).toEqual(original);
    const byName = Object.fromEntries(result.map((r) => [r.name, r.aucDrop]));
    expect(Object.keys(byName)).toEqual(['first', 'second', 'unused', 'both']);
    // baseline AUC is 1 for both outputs; a shuffled column predicts at chance, so the drop is near 0.5
    expect(byName.first![0]).toBeGreaterThan(0.3);
    expect(byName.first![1]).toBe(0);
    expect(byName.second![0]).toBe(0);
    expect(byName.second![1]).toBeGreaterThan(0.3);
    expect(byName.unused).toEqual([0, 0]);
    expect(byName.both![0]).toBeGreaterThan(0.3);
    expect(byName.both![1]).toBeGreaterThan(0.3);
    const again = await permutationImportance({ x, rows, columns, groups, labels, outputs: 2, predict, seed: 42 });
    expect(again).toEqual(result);
    const otherSeed = await permutationImportance({ x, rows, columns, groups, labels, outputs: 2, predict, seed: 43 });
    expect(otherSeed).not.toEqual(result);
  });

  it('permutes a group’s columns with one row permutation', async () => {
    const x = new Float32Array(rows * columns);
    for (let r = 0; r < rows; r++) x.set([r, r, r], r * columns);
    const labels = new Uint8Array(rows).map((_, r) => r % 2);
    const seen: Float32Array[] = [];
    const predict = async (input: Float32Array, n: number) => {
      seen.push(input.slice());
      return new Float32Array(n).fill(0.5);
    };
    await permutationImportance({ x, rows, columns, groups: [{ name: 'pair', columns: [0, 2] }], labels, outputs: 1, predict, seed: 1 });
    const permuted = seen[1]!;
    const col = (c: number) => Array.from(strided(permuted, columns, c));
    expect(col(0)).toEqual(col(2));
    expect(col(1)).toEqual(Array.from({ length: rows }, (_, r) => r));
    expect(col(0)).not.toEqual(col(1));
    expect([...col(0)].sort((a, b) => a - b)).toEqual(col(1));
  });

  it('reports NaN for an output with a single class, and restores x when predict fails', async () => {
    const { x, labels, predict } = fixture();
    for (let r = 0; r < rows; r++) labels[r * 2 + 1] = 1;
    const result = await permutationImportance({ x, rows, columns, groups: groups.slice(0, 1), labels, outputs: 2, predict, seed: 3 });
    expect(result[0]!.aucDrop[1]).toBeNaN();

    const original = x.slice();
    let calls = 0;
    const failing = async (input: Float32Array, n: number) => {
      if (++calls === 2) throw new Error('model crashed');
      return predict(input, n);
    };
    await expect(permutationImportance({ x, rows, columns, groups, labels, outputs: 2, predict: failing, seed: 3 })).rejects.toThrow(
      'model crashed',
    );
    expect(x).toEqual(original);
  });

  it('checks shapes', async () => {
    const { x, labels, predict } = fixture();
    const base = { x, rows, columns, groups, labels, outputs: 2, predict, seed: 1 };
    await expect(permutationImportance({ ...base, rows: 199 })).rejects.toThrow(/x has length 600/);
    await expect(permutationImportance({ ...base, outputs: 3 })).rejects.toThrow(/labels has length 400/);
    await expect(permutationImportance({ ...base, groups: [{ name: 'bad', columns: [3] }] })).rejects.toThrow(/column 3/);
    await expect(permutationImportance({ ...base, predict: async (_x, n) => new Float32Array(n * 2 - 1) })).rejects.toThrow(
      /predict returned length 399/,
    );
  });
});
