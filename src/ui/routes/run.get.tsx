import { endTime, startTime } from 'hono/timing';
import { findRun, runTimings } from '../../registry/pipeline-runs.repository.ts';
import { stagesEntry } from '../chart-sources.ts';
import { idFrom } from '../paths.ts';
import { RunPage } from '../runs.page.tsx';
import { chartName, chartRefusal, chartResponse, chartSlots, errorPage, type UiApp, type UiRouteDeps, viewerOf } from '../ui-env.tsx';

/** GET /ui/runs/:runId and its stages chart: one run, its targets' outcomes and its parts. */
export function registerRunPage(ui: UiApp, { reviewers, charts }: UiRouteDeps): void {
  ui.get('/runs/:runId', reviewers, async (c) => {
    const id = idFrom(c.req.param('runId'));
    if (id === null) return errorPage(c, 400, 'Not a run id', 'A run is opened by its id, a positive whole number such as 12.');
    startTime(c, 'db', 'database');
    const run = await findRun(c.var.db, id);
    endTime(c, 'db');
    if (!run) return errorPage(c, 404, 'No such run', `No pipeline run has the id ${id}.`);
    const [slot] = chartSlots(c, charts, [stagesEntry(run.stages)], (_, version) => `/ui/runs/${id}/charts/stages.svg?v=${version}`);
    return c.html(<RunPage viewer={viewerOf(c)!} run={run} chart={slot!} />);
  });

  ui.get('/runs/:runId/charts/:file', reviewers, async (c) => {
    const id = idFrom(c.req.param('runId'));
    if (id === null) return chartRefusal(c, 400, 'A run is named by its id, a positive whole number.');
    if (chartName(c.req.param('file')) !== 'stages') return chartRefusal(c, 404, 'No such chart: a run has stages.svg.');
    startTime(c, 'db', 'database');
    const stages = await runTimings(c.var.db, id);
    endTime(c, 'db');
    if (stages === null) return chartRefusal(c, 404, `No pipeline run has the id ${id}.`);
    return chartResponse(c, charts, stagesEntry(stages));
  });
}
