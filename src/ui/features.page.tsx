import type { FC } from 'hono/jsx';
import { PSI_THRESHOLD } from '../../models/drift.ts';
import { EXPLANATION_GROUPS } from '../../pipelines/feature-spec.ts';
import type { ModelTarget } from '../registry/model-catalog.repository.ts';
import { featureUnit } from './feature-units.ts';
import * as f from './format.ts';
import { Layout, type Viewer } from './layout.tsx';
import { targetTitle } from './model.page.tsx';
import { modelPath } from './paths.ts';
import { TIME_GROWING_FEATURES } from './review.service.ts';

export interface FeatureRow {
  feature: string;
  statistics: Record<string, number | null>;
  edges: number[] | null;
  psi: number | null;
}

/** A section of the profile: the person features of one explanation group, or one category's or product's history. */
export interface FeatureSection {
  id: string;
  title: string;
  rows: FeatureRow[];
}

const GROUP_OF = new Map(
  Object.entries(EXPLANATION_GROUPS).flatMap(([group, features]) => features.map((feature) => [feature, group] as const)),
);

const anchor = (text: string) =>
  `group-${text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')}`;

/**
 * The rows in sections, in the network's column order: the person features by explanation
 * group, then each category's and each product's history features.
 */
export function featureSections(rows: readonly FeatureRow[]): FeatureSection[] {
  const sections = new Map<string, FeatureSection>();
  for (const row of rows) {
    const [scope, key] = row.feature.split(':');
    const title =
      scope === 'category' && key !== undefined
        ? `category ${key}`
        : scope === 'product' && key !== undefined
          ? `product ${key}`
          : `person: ${GROUP_OF.get(row.feature) ?? 'other'}`;
    let section = sections.get(title);
    if (!section) {
      section = { id: anchor(title), title, rows: [] };
      sections.set(title, section);
    }
    section.rows.push(row);
  }
  return [...sections.values()];
}

const isFlagged = (row: FeatureRow) => row.psi !== null && row.psi > PSI_THRESHOLD && !(row.feature in TIME_GROWING_FEATURES);

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

const FeatureTable: FC<{ rows: FeatureRow[] }> = ({ rows }) => (
  <table class="features">
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
      {rows.map((row) => (
        <tr class={isFlagged(row) ? 'problem' : undefined} data-feature={row.feature}>
          <th scope="row">{row.feature}</th>
          <td class="muted">{featureUnit(row.feature)}</td>
          {STATISTICS.map((s) => (
            <td class="num">{value(row.statistics, s.key)}</td>
          ))}
          <td class="muted">
            {row.edges ? (row.edges.length === 0 ? 'one value' : row.edges.map((edge) => f.decimal(edge, 2)).join(' · ')) : 'n/a'}
          </td>
          <td class="num" title={TIME_GROWING_FEATURES[row.feature]}>
            {row.psi === null ? 'n/a' : f.decimal(row.psi, 3)}
            {isFlagged(row) ? ' ⚑' : row.feature in TIME_GROWING_FEATURES && row.psi !== null ? ' (grows with time, not flagged)' : ''}
          </td>
        </tr>
      ))}
    </tbody>
  </table>
);

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
  const sections = featureSections(features);
  return (
    <Layout title={`Feature profile · ${title}`} viewer={viewer} active="models">
      <p class="hint">
        <a href="/ui/models">Models</a> › <a href={modelPath(target)}>{title}</a> › feature profile
      </p>
      <h1>Feature profile of v{version}</h1>
      <p class="lead">
        Summary statistics (danfojs <code>describe</code>) of each feature on a seeded sample of {f.people(sampleRows)} of the training
        population at the cutoff {f.day(trainingCutoff)}. Values are model inputs before standardisation, in the unit named per feature.{' '}
        {scored
          ? `PSI compares the sample's decile bins with a sample of ${f.people(scored.rows)} of the ${f.people(scored.population)} scored ${f.dateTime(scored.at)}; above ${PSI_THRESHOLD} is flagged, except for features that grow with time by construction (${Object.keys(TIME_GROWING_FEATURES).join(', ')}): they move with the days between the cutoff and the scoring date, so their PSI measures that gap, not a change in the people.`
          : 'No scored-population profile is recorded for the live scores, so no PSI.'}
      </p>
      <nav id="feature-groups" aria-label="feature groups">
        <strong>Feature groups:</strong>{' '}
        {sections.map((section, index) => (
          <>
            {index > 0 ? ' · ' : ''}
            <a href={`#${section.id}`}>{section.title}</a> ({section.rows.length}
            {section.rows.some(isFlagged) ? ', drift ⚑' : ''})
          </>
        ))}
      </nav>
      {sections.map((section) => (
        // the person features open; each category's and product's history folded unless it drifted
        <details class="feature-group" id={section.id} open={section.title.startsWith('person') || section.rows.some(isFlagged)}>
          <summary>
            <h2 style="display: inline">{section.title}</h2>{' '}
            <span class="muted">
              ({f.count(section.rows.length)} {section.rows.length === 1 ? 'feature' : 'features'})
            </span>
          </summary>
          <FeatureTable rows={section.rows} />
        </details>
      ))}
    </Layout>
  );
};
