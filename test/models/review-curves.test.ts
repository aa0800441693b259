import { describe, expect, it } from 'vitest';
import { binShares, featureBins, featurePsi, PSI_THRESHOLD, populationStabilityIndex, quantileEdges } from '../../models/drift.ts';
import { evaluationCurves, reliability, rocAuc, rocCurve, scoreHistogram } from '../../models/metrics.ts';
import { mulberry32 } from '../../models/random.ts';

/*
 * The curves the review pages draw (ROC, score histograms, reliability on [0, u]) and the
 * drift figures (decile bins, PSI): exact on small cases, bounded on large ones.
 */

function sample(rows: number, seed: number): { labels: Uint8Array; scores: Float64Array } {
  const random = mulberry32(seed);
  const labels = new Uint8Array(rows);
  const scores = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    labels[i] = random() < 0.1 ? 1 : 0;
    // buyers score higher on average, with ties (two decimals)
    scores[i] = Math.round(Math.min(1, Math.max(0, 0.05 + 0.25 * labels[i]! + 0.2 * (random() - 0.5))) * 100) / 100;
  }
  return { labels, scores };
}

/** Area under a polyline by trapezoids. */
function area(points: Array<{ falsePositiveRate: number; truePositiveRate: number }>): number {
  let sum = 0;
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1]!;
    const b = points[i]!;
    sum += ((b.falsePositiveRate - a.falsePositiveRate) * (a.truePositiveRate + b.truePositiveRate)) / 2;
  }
  return sum;
}

describe('rocCurve', () => {
  it('is the exact curve on a small input: one point per distinct threshold, ties diagonal', () => {
    const labels = Uint8Array.from([1, 0, 1, 0, 0]);
    const scores = [0.9, 0.8, 0.8, 0.3, 0.1];
    const curve = rocCurve(labels, scores);
    expect(curve).toEqual([
      { falsePositiveRate: 0, truePositiveRate: 0, threshold: null },
      { falsePositiveRate: 0, truePositiveRate: 0.5, threshold: 0.9 },
      { falsePositiveRate: 1 / 3, truePositiveRate: 1, threshold: 0.8 },
      { falsePositiveRate: 2 / 3, truePositiveRate: 1, threshold: 0.3 },
      { falsePositiveRate: 1, truePositiveRate: 1, threshold: 0.1 },
    ]);
    expect(area(curve)).toBeCloseTo(rocAuc(labels, scores), 12);
  });

  it('keeps at most maxPoints points, monotone from (0, 0) to (1, 1), and keeps the area', () => {
    const { labels, scores } = sample(50_000, 7);
    // distinct scores: many thresholds
    const jittered = Float64Array.from(scores, (score, i) => Math.min(1, score + (i % 997) * 1e-7));
    for (const maxPoints of [3, 11, 101]) {
      const curve = rocCurve(labels, jittered, maxPoints);
      expect(curve.length).toBeLessThanOrEqual(maxPoints);
      expect(curve[0]).toMatchObject({ falsePositiveRate: 0, truePositiveRate: 0 });
      expect(curve[curve.length - 1]).toMatchObject({ falsePositiveRate: 1, truePositiveRate: 1 });
      for (let i = 1; i < curve.length; i++) {
        expect(curve[i]!.falsePositiveRate).toBeGreaterThanOrEqual(curve[i - 1]!.falsePositiveRate);
        expect(curve[i]!.truePositiveRate).toBeGreaterThanOrEqual(curve[i - 1]!.truePositiveRate);
      }
      if (maxPoints === 101) {
        expect(curve.length).toBeGreaterThan(50);
        expect(Math.abs(area(curve) - rocAuc(labels, jittered))).toBeLessThan(0.01);
      }
    }
  });

  it('is empty with a single class, and refuses bad input', () => {
    expect(rocCurve(Uint8Array.from([1, 1]), [0.2, 0.4])).toEqual([]);
    expect(() => rocCurve(Uint8Array.from([1, 0]), [0.2])).toThrow(/length/);
    expect(() => rocCurve(Uint8Array.from([1, 0]), [0.2, Number.NaN])).toThrow(/expected a number/);
    expect(() => rocCurve(Uint8Array.from([1, 0]), [0.2, 0.3], 2)).toThrow(/maxPoints/);
  });
});

describe('scoreHistogram', () => {
  it('counts buyers and non-buyers per bin over [0, a round bound above the largest probability]', () => {
    const labels = Uint8Array.from([1, 0, 0, 1, 0]);
    const probabilities = [0.031, 0.001, 0.0, 0.04, 0.012];
    const bins = scoreHistogram(labels, probabilities, 5);
    expect(bins.map((bin) => [bin.lower, bin.upper])).toEqual([
      [0, 0.01],
      [0.01, 0.02],
      [0.02, 0.03],
      [0.03, 0.04],
      [0.04, 0.05],
    ]);
    expect(bins.map((bin) => [bin.buyers, bin.nonBuyers])).toEqual([
      [0, 2],
      [0, 1],
      [0, 0],
      [1, 0],
      [1, 0],
    ]);
  });

  it('sums to the rows on a large input, and the last bin holds its bound', () => {
    const { labels, scores } = sample(10_000, 3);
    const bins = scoreHistogram(labels, scores);
    expect(bins.length).toBe(20);
    expect(bins.reduce((sum, bin) => sum + bin.buyers + bin.nonBuyers, 0)).toBe(10_000);
    expect(bins.reduce((sum, bin) => sum + bin.buyers, 0)).toBe(labels.reduce((a, b) => a + b, 0));
    expect(scoreHistogram(Uint8Array.from([1, 0]), [1, 0], 4).at(-1)).toMatchObject({ upper: 1, buyers: 1 });
  });
});

describe('evaluationCurves', () => {
  it('gives the ROC curve, the histograms and reliability bins over [0, u] with the same rows', () => {
    const { labels, scores } = sample(5_000, 11);
    const curves = evaluationCurves(labels, scores);
    expect(curves.roc.length).toBeLessThanOrEqual(101);
    expect(curves.scoreHistogram.length).toBe(20);
    expect(curves.calibration.length).toBe(10);
    expect(curves.calibration.reduce((sum, bin) => sum + bin.count, 0)).toBe(5_000);
    const upper = curves.calibration.at(-1)!.upper;
    expect(upper).toBe(curves.scoreHistogram.at(-1)!.upper);
    expect(upper).toBeLessThan(1);
    // on [0, 1] the same probabilities crowd the first bins
    expect(reliability(labels, scores).bins.filter((bin) => bin.count > 0).length).toBeLessThan(
      curves.calibration.filter((bin) => bin.count > 0).length,
    );
    // stored as JSON: empty bins lose their NaN means to null, nothing else changes
    expect(JSON.parse(JSON.stringify(curves)).roc).toEqual(curves.roc);
  });
});

describe('drift', () => {
  it('cuts at the deciles, one bin for a value shared by many', () => {
    expect(quantileEdges([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // 70% zeros: the zeros get one bin, the rest is cut above them
    expect(quantileEdges([0, 0, 0, 0, 0, 0, 0, 1, 2, 3])).toEqual([0, 1, 2]);
    expect(quantileEdges([5, 5, 5])).toEqual([]);
    expect(quantileEdges([Number.NaN])).toEqual([]);
  });

  it('shares per bin sum to 1 with the missing values, v in (e(k-1), e(k)]', () => {
    expect(binShares([0, 1, 1.5, 2, 9, Number.NaN], [1, 2])).toEqual({ shares: [2 / 6, 2 / 6, 1 / 6], missing: 1 / 6 });
    const bins = featureBins(Array.from({ length: 1000 }, (_, i) => i % 37));
    expect(bins.shares.length).toBe(bins.edges.length + 1);
    expect(bins.shares.reduce((a, b) => a + b, 0) + bins.missing).toBeCloseTo(1, 12);
  });

  it('PSI is 0 for the same population and Σ (a − e) ln(a / e) otherwise, empty bins floored', () => {
    expect(populationStabilityIndex([0.5, 0.5], [0.5, 0.5])).toBe(0);
    expect(populationStabilityIndex([0.5, 0.5], [0.25, 0.75])).toBeCloseTo(-0.25 * Math.log(0.5) + 0.25 * Math.log(1.5), 12);
    expect(Number.isFinite(populationStabilityIndex([1, 0], [0, 1]))).toBe(true);
    expect(() => populationStabilityIndex([1], [0.5, 0.5])).toThrow(/bins/);
    const reference = featureBins(Array.from({ length: 5000 }, (_, i) => i % 100));
    const same = binShares(
      Array.from({ length: 5000 }, (_, i) => (i * 7) % 100),
      reference.edges,
    );
    const shifted = binShares(
      Array.from({ length: 5000 }, (_, i) => (i % 100) + 30),
      reference.edges,
    );
    expect(featurePsi(reference, same)).toBeLessThan(0.01);
    expect(featurePsi(reference, shifted)).toBeGreaterThan(PSI_THRESHOLD);
  });
});
