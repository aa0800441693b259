import type { OpenAPIHono } from '@hono/zod-openapi';
import { type Context, Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { createMiddleware } from 'hono/factory';
import { HTTPException } from 'hono/http-exception';
import { endTime, startTime, type TimingVariables, timing } from 'hono/timing';
import type { AppEnv } from '../api/api-env.ts';
import { apiKeyActor } from '../api/secured-route.ts';
import { appendAuditLog } from '../audit/audit-log.repository.ts';
import type { ApiKeyIdentity } from '../auth/api-key.repository.ts';
import { findActiveKey } from '../auth/api-key.repository.ts';
import type { Role } from '../auth/api-key.table.ts';
import { type ModelTarget, targetLabel } from '../registry/model-catalog.repository.ts';
import { liveScoresOf } from '../rights/access.repository.ts';
import {
  type ChartEntry,
  driftSource,
  evaluationData,
  funnelSource,
  isModelChart,
  loadModelChart,
  missingChart,
  MODEL_CHART_NAMES,
  MODEL_CHARTS,
  modelCharts,
  runDurationsEntry,
  stagesEntry,
} from './chart-sources.ts';
import { type Chart, type ChartRenderer, createChartRenderer } from './charts.ts';
import { ErrorPage } from './error.page.tsx';
import { type FeatureRow, FeaturesPage } from './features.page.tsx';
import type { ChartSlot, Viewer } from './layout.tsx';
import { LoginPage } from './login.page.tsx';
import { type JudgedCandidates, ModelPage, NoChampionPage } from './model.page.tsx';
import { OverviewPage } from './overview.page.tsx';
import { idFrom, modelPath, safeNext, targetFromPath } from './paths.ts';
import { PersonLookupPage, PersonPage } from './person.page.tsx';
import {
  categoryExists,
  findModelRecord,
  findPerson,
  findProduct,
  findRun,
  latestPipelineRun,
  latestRunOutcomes,
  livePopulations,
  type ModelChartHead,
  modelChartHead,
  type ModelRecord,
  networkProfile,
  overviewModels,
  personIdByExternalId,
  recentRuns,
  recentRunTimings,
  runTimings,
  scoreSetProfile,
  topScored,
} from './review.repository.ts';
import { buildOverview, computeDrift, DEFAULT_DIRECTION, SORT_KEYS, type SortDirection, type SortKey, sortOverview } from './review.service.ts';
import { RunPage, RunsPage } from './runs.page.tsx';
import { endSession, sessionKey, startSession } from './session.ts';

type UiEnv = { Variables: AppEnv['Variables'] & TimingVariables & { viewer: ApiKeyIdentity } };
type UiContext = Context<UiEnv>;

/** Roles that review models, runs and feature profiles, and may open the person view. */
const REVIEWERS: readonly Role[] = ['data_scientist', 'dpo'];
const RUNS_PER_PAGE = 50;
const TOP_PEOPLE = 5;

const SECURITY_HEADERS: Record<string, string> = {
  // no script at all: the pages work without JavaScript and forbid it
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  // a person view is personal data: never kept by a browser or a proxy cache
  'Cache-Control': 'no-store',
};

/** The model review pages (issue 6), served by the API's app under /ui. */
export function registerReviewPages(app: OpenAPIHono<AppEnv>): void {
  app.route('/ui', reviewPages());
}

function viewerOf(c: UiContext): Viewer | null {
  const key = c.get('viewer');
  return key ? { name: key.name, role: key.role } : null;
}

function errorPage(c: UiContext, status: 400 | 401 | 403 | 404 | 413 | 500, title: string, message: string) {
  return c.html(<ErrorPage status={status} title={title} message={message} viewer={viewerOf(c)} requestId={c.var.requestId} />, status);
}

/** Signed in with a key of one of `roles`: else the login page (303), or a readable 403. */
function signedIn(roles: readonly Role[]) {
  return createMiddleware<UiEnv>(async (c, next) => {
    const { identity, hadCookie } = await sessionKey(c as unknown as Context<AppEnv>);
    if (!identity) {
      if (hadCookie) await endSession(c as unknown as Context<AppEnv>);
      const url = new URL(c.req.url);
      const back = c.req.method === 'GET' ? `${url.pathname}${url.search}` : '/ui/models';
      return c.redirect(`/ui/login?next=${encodeURIComponent(safeNext(back))}`, 303);
    }
    c.set('viewer', identity);
    // the request log names the key, as for the API
    c.set('apiKey', identity);
    if (!roles.includes(identity.role)) {
      return errorPage(
        c,
        403,
        'Not for this role',
        `This page is for the role(s) ${roles.map((role) => role.replace('_', ' ')).join(' and ')}; the key “${identity.name}” has the role ${identity.role.replace('_', ' ')}. Sign out and sign in with another key.`,
      );
    }
    await next();
  });
}

/** Charts can be cached by the browser a while: aggregates only, no person in them. */
const CHART_CACHE = 'private, max-age=300';

/**
 * The page's side of its charts: each chart's address, size and alternative text, drawn by its
 * own request (nothing is drawn here). `v` names the spec drawn: a new version of the data is a
 * new address, never a stale image from the browser's cache.
 */
function chartSlots(c: UiContext, renderer: ChartRenderer, entries: ChartEntry[], src: (chart: Chart, version: string) => string): ChartSlot[] {
  startTime(c, 'charts', 'chart specs (each chart is drawn by its own request)');
  const slots = entries.map((entry): ChartSlot => {
    if ('missing' in entry) return entry;
    return { chart: entry, src: src(entry, renderer.key(entry).slice(0, 16)), ...renderer.size(entry) };
  });
  endTime(c, 'charts');
  return slots;
}

/** A chart's image, or the reason it has none (plain text, 4xx). */
async function chartResponse(c: UiContext, renderer: ChartRenderer, entry: ChartEntry): Promise<Response> {
  if ('missing' in entry) return chartRefusal(c, 404, entry.missing.reason || `${entry.missing.title}: nothing to draw.`);
  const cached = renderer.cached(entry);
  startTime(c, 'chart', cached ? 'chart (from the cache)' : 'chart drawn (Vega)');
  const svg = await renderer.render(entry);
  endTime(c, 'chart');
  c.header('Cache-Control', CHART_CACHE);
  return c.body(svg, 200, { 'Content-Type': 'image/svg+xml; charset=utf-8' });
}

function chartRefusal(c: UiContext, status: 400 | 404, reason: string): Response {
  return c.text(reason, status);
}

/** `roc.svg` → `roc`; null when the file is not an SVG. */
const chartName = (file: string | undefined): string | null => /^([a-z][a-z-]{0,39})\.svg$/.exec(file ?? '')?.[1] ?? null;

/** The address of a model chart's image. */
const chartSrc = (target: ModelTarget) => (chart: Chart, version: string) => modelPath(target, `/charts/${chart.id}.svg?v=${version}`);

/** The head of a model as its charts need it, from the record a page read. */
function headOf(record: ModelRecord): ModelChartHead {
  const champion = record.champion;
  return {
    modelId: record.id,
    champion: champion ? { id: champion.id, networkId: champion.networkId, populationSize: champion.populationSize } : null,
    live: champion && record.liveSet && record.liveSet.modelVersionId === champion.id ? record.liveSet : null,
  };
}

function reviewPages(): Hono<UiEnv> {
  const ui = new Hono<UiEnv>();
  const charts = createChartRenderer();

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

  // ---- signing in and out ----------------------------------------------------------------

  ui.get('/login', (c) => c.html(<LoginPage next={safeNext(c.req.query('next'))} />));

  ui.post('/login', async (c) => {
    const body = await c.req.parseBody();
    const next = safeNext(body.next);
    const key = typeof body.key === 'string' ? body.key.trim() : '';
    const identity = key ? await findActiveKey(c.var.db, key) : null;
    if (!identity) return c.html(<LoginPage next={next} error="This API key is unknown or revoked." />, 401);
    await startSession(c as unknown as Context<AppEnv>, identity);
    return c.redirect(next, 303);
  });

  ui.post('/logout', async (c) => {
    await endSession(c as unknown as Context<AppEnv>);
    return c.redirect('/ui/login', 303);
  });

  const reviewers = signedIn(REVIEWERS);

  // ---- models overview -------------------------------------------------------------------

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
    const [rows, outcomes, latestRun] = [await overviewModels(c.var.db), await latestRunOutcomes(c.var.db), await latestPipelineRun(c.var.db)];
    endTime(c, 'db');
    const entries = sortOverview(buildOverview(rows, outcomes), sort, direction);
    return c.html(<OverviewPage viewer={viewerOf(c)!} entries={entries} sort={sort} direction={direction} latestRun={latestRun} />);
  });

  // ---- one model ---------------------------------------------------------------------------

  /** A target named in the path, or the page that says why not. */
  async function resolveTarget(c: UiContext): Promise<{ target: ModelTarget; record: ModelRecord | null } | Response> {
    const target = targetFromPath(c.req.param('target') ?? '');
    if (!target) return errorPage(c, 400, 'Not a model name', 'A model is named by its product SKU, by category:NAME or by any, in at most 200 characters.');
    const record = await findModelRecord(c.var.db, target);
    return { target, record };
  }

  ui.get('/models/:target/features', reviewers, async (c) => {
    startTime(c, 'db', 'database');
    const resolved = await resolveTarget(c);
    if (resolved instanceof Response) return resolved;
    const { target, record } = resolved;
    const champion = record?.champion ?? null;
    if (!record || !champion) {
      return errorPage(c, 404, 'No feature profile', `${targetLabel(target)} has no live model, so no feature profile to show. Its model page says why.`);
    }
    const network = champion.networkId ? await networkProfile(c.var.db, champion.networkId) : null;
    const profile = network?.featureProfile ?? null;
    const live = record.liveSet && record.liveSet.modelVersionId === champion.id ? record.liveSet : null;
    const scored = live ? await scoreSetProfile(c.var.db, live.id) : null;
    endTime(c, 'db');
    if (!profile) return errorPage(c, 404, 'No feature profile', `No feature profile was stored with v${champion.version} of ${targetLabel(target)}.`);
    const drift = new Map(computeDrift(profile.bins, scored?.bins).map((entry) => [entry.feature, entry.psi]));
    // jsonb keeps no key order: the rows follow the network's columns
    const order = new Map(champion.features.map((feature, index) => [feature, index]));
    const ordered = Object.entries(profile.features).sort(([a], [b]) => (order.get(a) ?? Infinity) - (order.get(b) ?? Infinity) || a.localeCompare(b));
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

  ui.get('/models/:target', reviewers, async (c) => {
    startTime(c, 'db', 'database');
    const resolved = await resolveTarget(c);
    if (resolved instanceof Response) return resolved;
    const { target, record } = resolved;
    const label = targetLabel(target);
    const outcome = (await latestRunOutcomes(c.var.db, label)).get(label) ?? null;
    const viewer = viewerOf(c)!;

    if (!record?.champion) {
      let name: string | null = record?.productName ?? null;
      if (!record) {
        const known =
          target.kind === 'product'
            ? await findProduct(c.var.db, target.key)
            : target.kind === 'category'
              ? (await categoryExists(c.var.db, target.key)) || null
              : true;
        if (!known && !outcome) {
          return errorPage(c, 404, 'No such model', `No model, product or category is named “${label}”. The overview lists every model.`);
        }
        if (known && typeof known === 'object') name = known.name;
      }
      const latest = record?.history[record.history.length - 1] ?? null;
      const run = await latestPipelineRun(c.var.db);
      endTime(c, 'db');
      const status = outcome?.status === 'not eligible' || !latest ? 'not enough data' : 'rejected';
      const reason =
        outcome?.status === 'not eligible'
          ? `The latest run, #${outcome.runId}, did not model it: ${outcome.reason}.`
          : latest
            ? `v${latest.version} was not promoted: ${latest.decisionReason ?? 'no reason recorded'}.`
            : outcome
              ? `The latest run, #${outcome.runId}: ${outcome.reason}.`
              : 'No run has modelled it yet.';
      const minPositives = run?.params.minPositives;
      const rules =
        typeof minPositives === 'number'
          ? `A target is modelled when at least ${minPositives} people bought it in each of the two latest ${run?.horizonDays ?? ''}-day windows before a run (and at least ${String(run?.params.minNegatives ?? '')} did not).`
          : null;
      const slots = record && record.history.length > 0 ? chartSlots(c, charts, [MODEL_CHARTS.history.draw({ history: record.history })], chartSrc(target)) : [];
      return c.html(<NoChampionPage viewer={viewer} target={target} name={name} record={record} status={status} reason={reason} rules={rules} charts={slots} />);
    }

    const champion = record.champion;
    const metrics = champion.metrics;
    const evaluation = evaluationData(metrics, champion.baselineMetrics);
    const trainingWindow = (metrics.trainingWindow ?? null) as { buyers?: number | null } | null;

    const head = headOf(record);
    const [drift, funnel, top] = [
      await driftSource(c.var.db, head),
      await funnelSource(c.var.db, head),
      record.liveSet ? await topScored(c.var.db, record.liveSet.id, TOP_PEOPLE) : [],
    ];
    endTime(c, 'db');

    const slots = chartSlots(c, charts, modelCharts({ evaluation, history: record.history, drift, funnel }), chartSrc(target));

    return c.html(
      <ModelPage
        viewer={viewer}
        record={record}
        outcome={outcome}
        charts={slots}
        evaluation={{
          model: evaluation.model,
          rfm: evaluation.rfm,
          bgnbd: evaluation.bgnbd,
          window: (metrics.evaluationWindow ?? null) as { cutoff?: string; horizonDays?: number; rows?: number } | null,
        }}
        buyers={{
          count: trainingWindow?.buyers ?? evaluation.model?.positives ?? null,
          window: trainingWindow?.buyers != null ? 'training' : evaluation.model?.positives != null ? 'evaluation' : null,
        }}
        drift={drift.drift}
        driftNote={drift.note}
        funnel={funnel}
        top={top}
        judged={{
          design: (metrics.evaluationDesign ?? null) as JudgedCandidates['design'],
          interval: (metrics.aucInterval ?? null) as JudgedCandidates['interval'],
          candidates: (metrics.candidates ?? null) as JudgedCandidates['candidates'],
          margin: (metrics.margin ?? null) as JudgedCandidates['margin'],
        }}
      />,
    );
  });

  ui.get('/models/:target/charts/:file', reviewers, async (c) => {
    const target = targetFromPath(c.req.param('target'));
    if (!target) return chartRefusal(c, 400, 'Not a model name.');
    const name = chartName(c.req.param('file'));
    if (name === null || !isModelChart(name)) return chartRefusal(c, 404, `No such chart: a model has the charts ${MODEL_CHART_NAMES.map((n) => `${n}.svg`).join(', ')}.`);
    startTime(c, 'db', 'database');
    const head = await modelChartHead(c.var.db, target);
    if (!head) {
      endTime(c, 'db');
      return chartRefusal(c, 404, `No model is named “${targetLabel(target)}”.`);
    }
    if (!head.champion && MODEL_CHARTS[name].source !== 'history') {
      endTime(c, 'db');
      return chartRefusal(c, 404, `${targetLabel(target)} has no live model: only its version history is drawn.`);
    }
    const entry = await loadModelChart(c.var.db, head, name);
    endTime(c, 'db');
    return chartResponse(c, charts, entry);
  });

  // ---- one person ------------------------------------------------------------------------

  ui.get('/people', reviewers, (c) => c.html(<PersonLookupPage viewer={viewerOf(c)!} />));

  ui.post('/people', reviewers, async (c) => {
    const body = await c.req.parseBody();
    const externalId = typeof body.external_id === 'string' ? body.external_id.trim() : '';
    if (externalId.length === 0 || externalId.length > 200) {
      return c.html(<PersonLookupPage viewer={viewerOf(c)!} error="Type an external id (at most 200 characters)." />, 400);
    }
    const id = await personIdByExternalId(c.var.db, externalId);
    // the id typed is not repeated back: it stays in the request body
    if (id === null) return c.html(<PersonLookupPage viewer={viewerOf(c)!} error="No contact has this external id (or the contact was erased)." />, 404);
    return c.redirect(`/ui/people/${id}`, 303);
  });

  ui.get('/people/by-id', reviewers, (c) => {
    const id = idFrom(c.req.query('id')?.trim());
    if (id === null) return c.html(<PersonLookupPage viewer={viewerOf(c)!} error="An internal id is a positive whole number, such as 1234." />, 400);
    return c.redirect(`/ui/people/${id}`, 303);
  });

  ui.get('/people/:contactId', reviewers, async (c) => {
    const id = idFrom(c.req.param('contactId'));
    if (id === null) return errorPage(c, 400, 'Not a person id', 'A person is opened by their internal id, a positive whole number such as 1234.');
    startTime(c, 'db', 'database');
    const person = await findPerson(c.var.db, id, c.var.deps.clock.now());
    if (!person) return errorPage(c, 404, 'No such person', `No contact has the internal id ${id}.`);
    const scores = person.erasedAt ? [] : await liveScoresOf(c.var.db, id);
    const populations = await livePopulations(
      c.var.db,
      scores.map((score) => score.modelId),
    );
    // reading why one person got their score is an access to their data: it is accounted for
    const viewer = c.get('viewer');
    await appendAuditLog(c.var.db, {
      at: c.var.deps.clock.now(),
      actor: apiKeyActor(viewer),
      action: 'ui.person_scores_viewed',
      subjectType: 'contact',
      subjectId: String(id),
      requestId: c.var.requestId,
      details: { models: scores.length },
    });
    endTime(c, 'db');
    return c.html(<PersonPage viewer={viewerOf(c)!} person={person} scores={scores} populations={populations} />);
  });

  // ---- runs --------------------------------------------------------------------------------

  ui.get('/runs', reviewers, async (c) => {
    const beforeParam = c.req.query('before');
    const before = beforeParam === undefined ? null : idFrom(beforeParam);
    if (beforeParam !== undefined && before === null) return errorPage(c, 400, 'Not a run id', 'before= takes a run id, a positive whole number.');
    startTime(c, 'db', 'database');
    const runs = await recentRuns(c.var.db, RUNS_PER_PAGE + 1, before);
    endTime(c, 'db');
    const shown = runs.slice(0, RUNS_PER_PAGE);
    const durations = runDurationsEntry(shown);
    const [slot] = durations
      ? chartSlots(c, charts, [durations], (_, version) => `/ui/runs/charts/durations.svg?${before === null ? '' : `before=${before}&`}v=${version}`)
      : [null];
    return c.html(<RunsPage viewer={viewerOf(c)!} runs={shown} chart={slot ?? null} olderThan={runs.length > RUNS_PER_PAGE ? (shown[shown.length - 1]?.id ?? null) : null} />);
  });

  ui.get('/runs/charts/:file', reviewers, async (c) => {
    if (chartName(c.req.param('file')) !== 'durations') return chartRefusal(c, 404, 'No such chart: the runs list has durations.svg.');
    const beforeParam = c.req.query('before');
    const before = beforeParam === undefined ? null : idFrom(beforeParam);
    if (beforeParam !== undefined && before === null) return chartRefusal(c, 400, 'before= takes a run id, a positive whole number.');
    startTime(c, 'db', 'database');
    const timings = await recentRunTimings(c.var.db, RUNS_PER_PAGE, before);
    endTime(c, 'db');
    return chartResponse(c, charts, runDurationsEntry(timings) ?? missingChart('run-durations', 'Run durations', 'No run on this page has stage timings.'));
  });

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

  // ---- everything else ---------------------------------------------------------------------

  ui.all('*', (c) => (c.req.path === '/ui/' ? c.redirect('/ui/models', 303) : errorPage(c, 404, 'No such page', 'There is no review page at this address.')));

  ui.onError((error, c) => {
    if (error instanceof HTTPException && error.status < 500) {
      return errorPage(c, error.status === 413 ? 413 : 400, 'Bad request', 'The request could not be read.');
    }
    // as in the API: the message is left out, a database error can quote the values it refused
    const failure = error as Error & { code?: string };
    const frames = (failure.stack ?? '').split('\n').slice(1).join('\n');
    c.var.deps.logger.error({ requestId: c.var.requestId, route: c.req.routePath, err: { type: failure.name, code: failure.code, frames } }, 'page failed');
    return errorPage(c, 500, 'Something went wrong', 'This page could not be drawn. Nothing was changed.');
  });

  return ui;
}
