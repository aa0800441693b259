import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { timing } from 'hono/timing';
import { createChartRenderer } from './charts/renderer.ts';
import { registerLogin } from './routes/login.tsx';
import { registerModelPage } from './routes/model.get.tsx';
import { registerModelCharts } from './routes/model-charts.get.tsx';
import { registerFeaturesPage } from './routes/model-features.get.tsx';
import { registerOverview } from './routes/overview.get.tsx';
import { registerPersonLookup } from './routes/people.tsx';
import { registerPersonPage } from './routes/person.get.tsx';
import { registerRunPage } from './routes/run.get.tsx';
import { registerRunsPage } from './routes/runs.get.tsx';
import { errorPage, REVIEWERS, signedIn, type UiContext, type UiEnv, type UiRouteDeps } from './ui-env.tsx';

/*
 * The model review pages (issue 6): one file per page route in routes/, as the API has in
 * src/api/routes/. The HTTP app mounts them under /ui beside the API under /v1.
 */

const SECURITY_HEADERS: Record<string, string> = {
  // no script at all: the pages work without JavaScript and forbid it
  'Content-Security-Policy':
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  // a person view is personal data: never kept by a browser or a proxy cache
  'Cache-Control': 'no-store',
};

/** The review pages as an app of their own, to be mounted at /ui. */
export function createReviewPages(): Hono<UiEnv> {
  const ui = new Hono<UiEnv>();
  const deps: UiRouteDeps = { reviewers: signedIn(REVIEWERS), charts: createChartRenderer() };

  ui.use('*', timing({ totalDescription: 'page' }));
  ui.use('*', async (c, next) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) c.header(name, value);
    await next();
  });
  ui.use(
    '*',
    bodyLimit({
      maxSize: 16 * 1024,
      onError: (c) => errorPage(c as UiContext, 413, 'Request too large', 'The form sent is larger than 16 KB.'),
    }),
  );

  ui.get('/', (c) => c.redirect('/ui/models', 303));
  registerLogin(ui);
  registerOverview(ui, deps);
  // the features and charts of a model before the model page: '/models/:target' would take them
  registerFeaturesPage(ui, deps);
  registerModelPage(ui, deps);
  registerModelCharts(ui, deps);
  registerPersonLookup(ui, deps);
  registerPersonPage(ui, deps);
  registerRunsPage(ui, deps);
  registerRunPage(ui, deps);

  ui.all('*', (c) =>
    c.req.path === '/ui/' ? c.redirect('/ui/models', 303) : errorPage(c, 404, 'No such page', 'There is no review page at this address.'),
  );

  ui.onError((error, c) => {
    if (error instanceof HTTPException && error.status < 500) {
      return errorPage(c, error.status === 413 ? 413 : 400, 'Bad request', 'The request could not be read.');
    }
    // as in the API: the message is left out, a database error can quote the values it refused
    const failure = error as Error & { code?: string };
    const frames = (failure.stack ?? '').split('\n').slice(1).join('\n');
    c.var.deps.logger.error(
      { requestId: c.var.requestId, route: c.req.routePath, err: { type: failure.name, code: failure.code, frames } },
      'page failed',
    );
    return errorPage(c, 500, 'Something went wrong', 'This page could not be drawn. Nothing was changed.');
  });

  return ui;
}
