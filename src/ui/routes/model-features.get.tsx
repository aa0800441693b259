import { endTime, startTime } from 'hono/timing';
import { targetLabel } from '../../registry/model-catalog.repository.ts';
import { type FeatureRow, FeaturesPage } from '../features.page.tsx';
import { networkProfile, scoreSetProfile } from '../model.repository.ts';
import { computeDrift } from '../review.service.ts';
import { errorPage, type UiApp, type UiRouteDeps, viewerOf } from '../ui-env.tsx';
import { resolveTarget } from './model-target.ts';

/** GET /ui/models/:target/features: the training feature profile of the champion, by feature group, with its drift since. */
export function registerFeaturesPage(ui: UiApp, { reviewers }: UiRouteDeps): void {
  ui.get('/models/:target/features', reviewers, async (c) => {
    startTime(c, 'db', 'database');
    const resolved = await resolveTarget(c);
    if (resolved instanceof Response) return resolved;
    const { target, record } = resolved;
    const champion = record?.champion ?? null;
    if (!record || !champion) {
      return errorPage(
        c,
        404,
        'No feature profile',
        `${targetLabel(target)} has no live model, so no feature profile to show. Its model page says why.`,
      );
    }
    const network = champion.networkId ? await networkProfile(c.var.db, champion.networkId) : null;
    const profile = network?.featureProfile ?? null;
    const live = record.liveSet && record.liveSet.modelVersionId === champion.id ? record.liveSet : null;
    const scored = live ? await scoreSetProfile(c.var.db, live.id) : null;
    endTime(c, 'db');
    if (!profile)
      return errorPage(c, 404, 'No feature profile', `No feature profile was stored with v${champion.version} of ${targetLabel(target)}.`);
    const drift = new Map(computeDrift(profile.bins, scored?.bins).map((entry) => [entry.feature, entry.psi]));
    // jsonb keeps no key order: the rows follow the network's columns
    const order = new Map(champion.features.map((feature, index) => [feature, index]));
    const ordered = Object.entries(profile.features).sort(
      ([a], [b]) => (order.get(a) ?? Infinity) - (order.get(b) ?? Infinity) || a.localeCompare(b),
    );
    const features: FeatureRow[] = ordered.map(([feature, statistics]) => ({
      feature,
      statistics,
      edges: profile.bins?.[feature]?.edges ?? null,
      psi: drift.get(feature) ?? null,
    }));
    return c.html(
      <FeaturesPage
        viewer={viewerOf(c)!}
        target={target}
        name={record.productName}
        version={champion.version}
        sampleRows={profile.rows}
        trainingCutoff={champion.trainingCutoff}
        scored={scored && live ? { rows: scored.rows, population: scored.population, at: live.scoredAt } : null}
        features={features}
      />,
    );
  });
}
