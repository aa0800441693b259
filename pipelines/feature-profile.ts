import { binShares, type FeatureBins, featureBins } from '../models/drift.ts';
import { sampleIndices } from '../models/random.ts';
import type { FeatureMatrix } from './features.ts';

const PROFILE_ROWS = 5_000;

export interface FeatureProfile {
  rows: number;
  /** per feature: count, mean, std, min, median, max, variance (danfo's describe) */
  features: Record<string, Record<string, number>>;
  /** per feature: decile edges on the sample and the sample's share in each bin, the reference for drift */
  bins: Record<string, FeatureBins>;
}

/** The scored population in the bins of a training profile, on a sample too. */
export interface ScoringProfile {
  rows: number;
  /** the population the sample was drawn from */
  population: number;
  bins: Record<string, Omit<FeatureBins, 'edges'>>;
}

/** Each feature's values on a seeded sample of at most PROFILE_ROWS rows. */
function sampledColumns(matrix: FeatureMatrix, seed: number): { rows: number; columns: Record<string, Float32Array> } {
  const rows = sampleIndices(
    Array.from({ length: matrix.rows }, (_, i) => i),
    PROFILE_ROWS,
    seed,
  );
  const columns: Record<string, Float32Array> = {};
  matrix.layout.names.forEach((name, column) => {
    columns[name] = Float32Array.from(rows, (row) => matrix.x[row * matrix.columns + column] as number);
  });
  return { rows: rows.length, columns };
}

/**
 * A summary of each feature on a seeded sample of a matrix, stored with the model version
 * so that later runs (and reviewers) can see how the population drifts. danfojs is slow and
 * memory-hungry at scale (DESIGN.md), so it only ever sees this small sample.
 */
export async function featureProfile(matrix: FeatureMatrix, seed: number): Promise<FeatureProfile> {
  const { DataFrame } = await import('danfojs-node');
  const sample = sampledColumns(matrix, seed);
  if (sample.rows === 0) return { rows: 0, features: {}, bins: {} };
  const description = new DataFrame(
    Object.fromEntries(Object.entries(sample.columns).map(([name, values]) => [name, Array.from(values)])),
  ).describe();
  const statistics = description.index.map(String);
  const features: Record<string, Record<string, number>> = {};
  const bins: Record<string, FeatureBins> = {};
  for (const name of matrix.layout.names) {
    const values = description.column(name).values as number[];
    features[name] = Object.fromEntries(statistics.map((statistic, i) => [statistic, Number(values[i])]));
    bins[name] = featureBins(sample.columns[name] as Float32Array);
  }
  return { rows: sample.rows, features, bins };
}

/**
 * The shares of a seeded sample of `matrix` in the bins of `reference` (a training profile of
 * the same feature layout): what the review page compares to flag drift. Typed arrays only.
 */
export function scoringProfile(matrix: FeatureMatrix, reference: Pick<FeatureProfile, 'bins'>, seed: number): ScoringProfile {
  const sample = sampledColumns(matrix, seed);
  const bins: ScoringProfile['bins'] = {};
  for (const name of matrix.layout.names) {
    const edges = reference.bins[name]?.edges;
    if (edges) bins[name] = binShares(sample.columns[name] as Float32Array, edges);
  }
  return { rows: sample.rows, population: matrix.rows, bins };
}
