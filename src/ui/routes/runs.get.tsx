import { endTime, startTime } from 'hono/timing';
import { listRuns, recentRunTimings } from '../../registry/pipeline-runs.repository.ts';
import { missingChart, runDurationsEntry } from '../chart-sources.ts';
import { idFrom } from '../paths.ts';
import { RunsPage } from '../runs.page.tsx';
import { chartName, chartRefusal, chartResponse, chartSlots, errorPage, type UiApp, type UiRouteDeps, viewerOf } from '../ui-env.tsx';

const RUNS_PER_PAGE = 50;

/** GET /ui/runs and its durations chart: the latest runs, paged back by run id. */
export function registerRunsPage(ui: UiApp, { reviewers, charts }: UiRouteDeps): void {
  ui.get('/runs', reviewers, async (c) => {
    const beforeParam = c.req.query('before');
    const before = beforeParam === undefined ? null : idFrom(beforeParam);
    if (beforeParam !== undefined && before === null)
      return errorPage(c, 400, 'Not a run id', 'before= takes a run id, a positive whole number.');
    startTime(c, 'db', 'database');
    const runs = await listRuns(c.var.db, RUNS_PER_PAGE + 1, before);
    endTime(c, 'db');
    const shown = runs.slice(0, RUNS_PER_PAGE);
    const durations = runDurationsEntry(shown);
    const [slot] = durations
      ? chartSlots(
          c,
          charts,
          [durations],
          (_, version) => `/ui/runs/charts/durations.svg?${before === null ? '' : `before=${before}&`}v=${version}`,
        )
      : [null];
    return c.html(
      <RunsPage
        viewer={viewerOf(c)!}
        runs={shown}
        chart={slot ?? null}
        olderThan={runs.length > RUNS_PER_PAGE ? (shown[shown.length - 1]?.id ?? null) : null}
      />,
    );
  });

  ui.get('/runs/charts/:file', reviewers, async (c) => {
    if (chartName(c.req.param('file')) !== 'durations') return chartRefusal(c, 404, 'No such chart: the runs list has durations.svg.');
    const beforeParam = c.req.query('before');
    const before = beforeParam === undefined ? null : idFrom(beforeParam);
    if (beforeParam !== undefined && before === null) return chartRefusal(c, 400, 'before= takes a run id, a positive whole number.');
    startTime(c, 'db', 'database');
    const timings = await recentRunTimings(c.var.db, RUNS_PER_PAGE, before);
    endTime(c, 'db');
    return chartResponse(
      c,
      charts,
      runDurationsEntry(timings) ?? missingChart('run-durations', 'Run durations', 'No run on this page has stage timings.'),
    );
  });
}
