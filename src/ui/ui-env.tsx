import type { Context, Hono, MiddlewareHandler } from 'hono';
import { createMiddleware } from 'hono/factory';
import { endTime, startTime, type TimingVariables } from 'hono/timing';
import type { ApiKeyIdentity } from '../auth/api-key.repository.ts';
import type { Role } from '../auth/api-key.table.ts';
import type { HttpEnv } from '../http/http-env.ts';
import type { ChartEntry } from './chart-sources.ts';
import type { Chart } from './charts/chart.ts';
import type { ChartRenderer } from './charts/renderer.ts';
import { ErrorPage } from './error.page.tsx';
import type { ChartSlot, Viewer } from './layout.tsx';
import { safeNext } from './paths.ts';
import { endSession, sessionKey } from './session.ts';

/*
 * What every review page route shares: the request environment (the HTTP server's, plus the
 * signed-in key), the sign-in guard, the error page, and the page's and the image's side of a
 * chart. One file per page route in routes/ registers on the pages' app with these.
 */

export type UiEnv = { Variables: HttpEnv['Variables'] & TimingVariables & { viewer: ApiKeyIdentity } };
export type UiContext = Context<UiEnv>;
export type UiApp = Hono<UiEnv>;

/** What the page routes are given: the guard of the reviewers' pages and the one chart renderer. */
export interface UiRouteDeps {
  reviewers: MiddlewareHandler<UiEnv>;
  charts: ChartRenderer;
}

/** Roles that review models, runs and feature profiles, and may open the person view. */
export const REVIEWERS: readonly Role[] = ['data_scientist', 'dpo'];

export function viewerOf(c: UiContext): Viewer | null {
  const key = c.get('viewer');
  return key ? { name: key.name, role: key.role } : null;
}

export function errorPage(c: UiContext, status: 400 | 401 | 403 | 404 | 413 | 500, title: string, message: string) {
  return c.html(<ErrorPage status={status} title={title} message={message} viewer={viewerOf(c)} requestId={c.var.requestId} />, status);
}

/** Signed in with a key of one of `roles`: else the login page (303), or a readable 403. */
export function signedIn(roles: readonly Role[]): MiddlewareHandler<UiEnv> {
  return createMiddleware<UiEnv>(async (c, next) => {
    const { identity, hadCookie } = await sessionKey(c as unknown as Context<HttpEnv>);
    if (!identity) {
      if (hadCookie) await endSession(c as unknown as Context<HttpEnv>);
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
export function chartSlots(
  c: UiContext,
  renderer: ChartRenderer,
  entries: ChartEntry[],
  src: (chart: Chart, version: string) => string,
): ChartSlot[] {
  startTime(c, 'charts', 'chart specs (each chart is drawn by its own request)');
  const slots = entries.map((entry): ChartSlot => {
    if ('missing' in entry) return entry;
    return { chart: entry, src: src(entry, renderer.key(entry).slice(0, 16)), ...renderer.size(entry) };
  });
  endTime(c, 'charts');
  return slots;
}

/** A chart's image, or the reason it has none (plain text, 4xx). */
export async function chartResponse(c: UiContext, renderer: ChartRenderer, entry: ChartEntry): Promise<Response> {
  if ('missing' in entry) return chartRefusal(c, 404, entry.missing.reason || `${entry.missing.title}: nothing to draw.`);
  const cached = renderer.cached(entry);
  startTime(c, 'chart', cached ? 'chart (from the cache)' : 'chart drawn (Vega)');
  const svg = await renderer.render(entry);
  endTime(c, 'chart');
  c.header('Cache-Control', CHART_CACHE);
  return c.body(svg, 200, { 'Content-Type': 'image/svg+xml; charset=utf-8' });
}

export function chartRefusal(c: UiContext, status: 400 | 404, reason: string): Response {
  return c.text(reason, status);
}

/** `roc.svg` → `roc`; null when the file is not an SVG. */
export const chartName = (file: string | undefined): string | null => /^([a-z][a-z-]{0,39})\.svg$/.exec(file ?? '')?.[1] ?? null;
