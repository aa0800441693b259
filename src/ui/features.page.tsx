import type { FC } from 'hono/jsx';
import { PSI_THRESHOLD } from '../../models/drift.ts';
import type { ModelTarget } from '../registry/model-catalog.repository.ts';
import { featureUnit } from './feature-units.ts';
import * as f from './format.ts';
import { Layout, type Viewer } from './layout.tsx';
import { targetTitle } from './model.page.tsx';
import { modelPath } from './paths.ts';

export interface FeatureRow {
  feature: string;
  statistics: Record<string, number | null>;
  edges: number[] | null;
  psi: number | null;
}

const STATISTICS = [
  { key: 'count', label: 'rows (count)' },
  { key: 'mean', label: 'mean' },
  { key: 'std', label: 'standard deviation' },
  { key: 'min', label: 'min' },
  { key: 'median', label: 'median' },
  { key: 'max', label: 'max' },
] as const;

const value = (statistics: Record<string, number | null>, key: string) => {
  const v = statistics[key];
  if (key === 'count') return f.count(v);
  return f.decimal(v, 3);
};

/** The training population's features, described on a sample (danfojs), with their drift since. */
export const FeaturesPage: FC<{
  viewer: Viewer;
  target: ModelTarget;
  name: string | null;
  version: number;
  sampleRows: number;
  trainingCutoff: Date;
  scored: { rows: number; population: number; at: Date } | null;
  features: FeatureRow[];
}> = ({ viewer, target, name, version, sampleRows, trainingCutoff, scored, features }) => {
  const title = targetTitle(target, name);
  return (
    <Layout title={`Feature profile · ${title}`} viewer={viewer} active="models">
      <p class="hint">
        <a href="/ui/models">Models</a> › <a href={modelPath(target)}>{title}</a> › feature profile
      </p>
      <h1>Feature profile of v{version}</h1>
      <p class="lead">
        Summary statistics (danfojs <code>describe</code>) of each feature on a seeded sample of {f.people(sampleRows)} of the training population at the cutoff{' '}
        {f.day(trainingCutoff)}. Values are model inputs before standardisation, in the unit named per feature.{' '}
        {scored
          ? `PSI compares the sample's decile bins with a sample of ${f.people(scored.rows)} of the ${f.people(scored.population)} scored ${f.dateTime(scored.at)}; above ${PSI_THRESHOLD} is flagged.`
          : 'No scored-population profile is recorded for the live scores, so no PSI.'}
      </p>
      <table id="features">
        <thead>
          <tr>
            <th scope="col">feature</th>
            <th scope="col">unit</th>
            {STATISTICS.map((s) => (
              <th class="num" scope="col">
                {s.label}
              </th>
            ))}
            <th scope="col">decile edges (same unit)</th>
            <th class="num" scope="col">
              PSI vs scored (unitless)
            </th>
          </tr>
        </thead>
        <tbody>
          {features.map((row) => (
            <tr class={row.psi !== null && row.psi > PSI_THRESHOLD ? 'problem' : undefined} data-feature={row.feature}>
              <th scope="row">{row.feature}</th>
              <td class="muted">{featureUnit(row.feature)}</td>
              {STATISTICS.map((s) => (
                <td class="num">{value(row.statistics, s.key)}</td>
              ))}
              <td class="muted">{row.edges ? (row.edges.length === 0 ? 'one value' : row.edges.map((edge) => f.decimal(edge, 2)).join(' · ')) : 'n/a'}</td>
              <td class="num">
                {row.psi === null ? 'n/a' : f.decimal(row.psi, 3)}
                {row.psi !== null && row.psi > PSI_THRESHOLD ? ' ⚑' : ''}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Layout>
  );
};
