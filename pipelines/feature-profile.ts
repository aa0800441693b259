import { sampleIndices } from '../models/random.ts';
import type { FeatureMatrix } from './features.ts';

const PROFILE_ROWS = 5_000;

export interface FeatureProfile {
  rows: number;
  /** per feature: count, mean, std, min, median, max, variance (danfo's describe) */
  features: Record<string, Record<string, number>>;
}

/**
 * A summary of each feature on a seeded sample of a matrix, stored with the model version
 * so that later runs (and reviewers) can see how the population drifts. danfojs is slow and
 * memory-hungry at scale (DESIGN.md), so it only ever sees this small sample.
 */
export async function featureProfile(matrix: FeatureMatrix, seed: number): Promise<FeatureProfile> {
  const { DataFrame } = await import('danfojs-node');
  const rows = sampleIndices(Array.from({ length: matrix.rows }, (_, i) => i), PROFILE_ROWS, seed);
  const columns: Record<string, number[]> = {};
  matrix.layout.names.forEach((name, column) => {
    columns[name] = rows.map((row) => matrix.x[row * matrix.columns + column] as number);
  });
  if (rows.length === 0) return { rows: 0, features: {} };
  const description = new DataFrame(columns).describe();
  const statistics = description.index.map(String);
  const features: Record<string, Record<string, number>> = {};
  for (const name of matrix.layout.names) {
    const values = description.column(name).values as number[];
    features[name] = Object.fromEntries(statistics.map((statistic, i) => [statistic, Number(values[i])]));
  }
  return { rows: rows.length, features };
}
