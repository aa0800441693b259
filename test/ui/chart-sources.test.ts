import { describe, expect, it } from 'vitest';
import { gainsTable } from '../../models/metrics.ts';
import { mulberry32 } from '../../models/random.ts';
import { readBaselineMetrics, readVersionMetrics } from '../../src/registry/model-metrics.ts';
import { rocAtDeciles, rocSeries } from '../../src/ui/chart-sources.ts';

/*
 * A baseline's ROC points are derived from its stored gains table (its full curve is kept only
 * when it wins): each must be the exact (FPR, TPR) of selecting the top decile(s) by score.
 */

function sample(n: number, seed: number): { labels: Uint8Array; scores: Float64Array } {
  const random = mulberry32(seed);
  const labels = new Uint8Array(n);
  const scores = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = random() < 0.2 ? 1 : 0;
    // informative but noisy, all distinct
    scores[i] = labels[i]! * 0.6 + random() + i * 1e-9;
  }
  return { labels, scores };
}

describe('a baseline ROC curve from its gains table', () => {
  it('passes through the exact (FPR, TPR) of each decile cut-off', () => {
    const { labels, scores } = sample(997, 11);
    const positives = labels.reduce((sum, v) => sum + v, 0);
    const points = rocAtDeciles(gainsTable(labels, scores), positives / labels.length);
    expect(points).toHaveLength(11);
    expect(points[0]).toEqual({ falsePositiveRate: 0, truePositiveRate: 0 });
    const order = [...scores.keys()].sort((a, b) => scores[b]! - scores[a]!);
    for (let decile = 1; decile <= 10; decile++) {
      const top = order.slice(0, Math.floor((decile * labels.length) / 10));
      const truePositives = top.filter((i) => labels[i] === 1).length;
      expect(points[decile]!.truePositiveRate, `decile ${decile}`).toBeCloseTo(truePositives / positives, 9);
      expect(points[decile]!.falsePositiveRate, `decile ${decile}`).toBeCloseTo(
        (top.length - truePositives) / (labels.length - positives),
        9,
      );
    }
    expect(points[10]!.falsePositiveRate).toBeCloseTo(1, 12);
    expect(points[10]!.truePositiveRate).toBeCloseTo(1, 12);
  });

  it('draws nothing without a usable base rate or gains', () => {
    const { labels, scores } = sample(200, 3);
    const gains = gainsTable(labels, scores);
    for (const baseRate of [null, undefined, 0, 1, Number.NaN]) expect(rocAtDeciles(gains, baseRate)).toEqual([]);
    expect(rocAtDeciles([], 0.2)).toEqual([]);
    expect(rocAtDeciles(undefined, 0.2)).toEqual([]);
  });

  it('reads stored metrics into the model curve and both baselines, a stored full curve first', () => {
    const { labels, scores } = sample(500, 5);
    const gains = gainsTable(labels, scores);
    const baseRate = labels.reduce((sum, v) => sum + v, 0) / labels.length;
    const roc = [
      { falsePositiveRate: 0, truePositiveRate: 0 },
      { falsePositiveRate: 1, truePositiveRate: 1 },
    ];
    const metrics = readVersionMetrics({ evaluation: { rocAuc: 0.8, curves: { roc } }, importance: 'not a list' });
    expect(metrics.importance).toBeNull();
    const baselines = readBaselineMetrics({
      rfm: { rocAuc: 0.6, baseRate, gains },
      bgnbd: { rocAuc: 0.55, baseRate, gains, curves: { roc } },
    });
    const series = rocSeries({ model: metrics.evaluation, rfm: baselines.rfm, bgnbd: baselines.bgnbd, importance: null });
    expect(series.map((s) => [s.series, s.resolution, s.auc])).toEqual([
      ['model', 'curve', 0.8],
      ['RFM', 'deciles', 0.6],
      ['BG/NBD', 'curve', 0.55],
    ]);
    expect(series[1]!.points).toHaveLength(11);
  });

  it('reads a part of another shape as absent, never as a cast', () => {
    const metrics = readVersionMetrics({
      evaluation: { rocAuc: 'high', gains: [{ decile: 'one' }] },
      aucInterval: { auc: 0.7 },
      champion: { version: 2, auc: null },
    });
    expect(metrics.evaluation?.rocAuc).toBeNull();
    expect(metrics.evaluation?.gains).toBeUndefined();
    expect(metrics.aucInterval).toBeNull();
    expect(metrics.champion).toEqual({ version: 2, auc: null });
    expect(readBaselineMetrics(null)).toEqual({ rfm: null, bgnbd: null });
  });
});
