import { endTime, startTime } from 'hono/timing';
import { latestPipelineRun, latestRunOutcomes } from '../../registry/pipeline-runs.repository.ts';
import { OverviewPage } from '../overview.page.tsx';
import { overviewModels, productsWithoutModel } from '../overview.repository.ts';
import { buildOverview, DEFAULT_DIRECTION, SORT_KEYS, type SortDirection, type SortKey, sortOverview } from '../review.service.ts';
import { errorPage, type UiApp, type UiRouteDeps, viewerOf } from '../ui-env.tsx';

/** GET /ui/models: every target, its status and its champion's figures, sortable by column. */
export function registerOverview(ui: UiApp, { reviewers }: UiRouteDeps): void {
  ui.get('/models', reviewers, async (c) => {
    const sortParam = c.req.query('sort');
    const dirParam = c.req.query('dir');
    if (sortParam !== undefined && !(SORT_KEYS as readonly string[]).includes(sortParam)) {
      return errorPage(c, 400, 'Unknown sort column', `The overview sorts by one of: ${SORT_KEYS.join(', ')}.`);
    }
    if (dirParam !== undefined && dirParam !== 'asc' && dirParam !== 'desc') {
      return errorPage(c, 400, 'Unknown sort direction', 'The sort direction is asc or desc.');
    }
    const sort = (sortParam ?? 'problems') as SortKey;
    const direction = (dirParam ?? DEFAULT_DIRECTION[sort]) as SortDirection;
    startTime(c, 'db', 'database');
    const rows = await overviewModels(c.var.db);
    const outcomes = await latestRunOutcomes(c.var.db);
    const latestRun = await latestPipelineRun(c.var.db);
    const unmodelled = await productsWithoutModel(c.var.db);
    endTime(c, 'db');
    const entries = sortOverview(buildOverview(rows, outcomes, unmodelled), sort, direction);
    return c.html(<OverviewPage viewer={viewerOf(c)!} entries={entries} sort={sort} direction={direction} latestRun={latestRun} />);
  });
}
