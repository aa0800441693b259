import { describe, expect, it } from 'vitest';
import { calibrated, calibratedWithinBin, fitCalibrationTable } from '../../models/baselines.ts';
import { rocAuc } from '../../models/metrics.ts';
import { mulberry32 } from '../../models/random.ts';

describe('a baseline calibration as data', () => {
  const random = mulberry32(5);
  const scores = Array.from({ length: 400 }, () => random() * 3);
  // noisy labels: bin rates alone would not be monotone
  const labels = scores.map((score) => (random() < 0.1 + 0.2 * score + (random() < 0.3 ? 0.3 : 0) ? 1 : 0));

  it('gives rates that never decrease with the score (pooled adjacent violators)', () => {
    const table = fitCalibrationTable(scores, labels);
    for (let i = 1; i < table.rates.length; i++) expect(table.rates[i]).toBeGreaterThanOrEqual(table.rates[i - 1] as number);
    expect(table.edges.length).toBe(table.rates.length);
  });

  it('applied within bins, keeps the order of the raw scores (the ranking its AUC was measured on) within 1e-4 of the bin rate', () => {
    const table = fitCalibrationTable(scores, labels);
    const probabilities = scores.map((score) => calibratedWithinBin(table, score));
    const y = Uint8Array.from(labels);
    expect(rocAuc(y, probabilities)).toBeCloseTo(rocAuc(y, scores), 12);
    for (const [i, score] of scores.entries())
      expect(Math.abs((probabilities[i] as number) - calibrated(table, score))).toBeLessThanOrEqual(1e-4);
    // beyond the last edge and at 0, still ordered
    expect(calibratedWithinBin(table, 10)).toBeGreaterThan(calibratedWithinBin(table, 5));
    expect(calibratedWithinBin(table, 0.001)).toBeGreaterThan(calibratedWithinBin(table, 0));
  });
});
