import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { featurePsi, PSI_THRESHOLD } from '../../models/drift.ts';
import { createApp } from '../../src/api/app.ts';
import { createApiKey, revokeApiKey } from '../../src/auth/api-key.repository.ts';
import type { Role } from '../../src/auth/api-key.table.ts';
import type { Database } from '../../src/db/database.ts';
import { TIME_GROWING_FEATURES } from '../../src/ui/review.service.ts';
import { type ApiHarness, createApiHarness } from '../api/api.fixtures.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { captureLogger } from '../helpers/silent-logger.ts';
import { axisTickLabels, axisTitles, legendLabels, linePaths } from './chart-svg.ts';
import { type ReviewBase, seedReviewBase } from './review.fixtures.ts';

/*
 * The model review pages, in-process on the real app after two small real pipeline runs:
 * who may see what, every page and chart, the person view, and bad input.
 */

let api: ApiHarness;
let seeded: ReviewBase;

beforeAll(async () => {
  const database = await createTestDatabase();
  seeded = await seedReviewBase(database);
  api = await createApiHarness({ database, clock: seeded.clock });
}, 170_000);
afterAll(() => api?.close());

function form(fields: Record<string, string>): RequestInit {
  return { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() };
}

/** Signs in with a key through the login form: the session cookie to send back. */
async function sessionCookie(key: string, app = api.app): Promise<string> {
  const response = await app.request('/ui/login', { ...form({ key, next: '/ui/models' }), redirect: 'manual' });
  return (response.headers.get('set-cookie') ?? '').split(';')[0]!;
}

const sessions = new Map<Role, string>();

/** A page request signed in as `role` (one session per role, opened on first use), or without cookie. */
async function page(role: Role | null, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (role) {
    if (!sessions.has(role)) sessions.set(role, await sessionCookie(api.keys[role]));
    headers.set('cookie', sessions.get(role)!);
  }
  return api.app.request(path, { ...init, headers, redirect: 'manual' });
}

/** What a page must never be: a stack trace, or a database's own words. */
function expectReadable(html: string): void {
  expect(html).toMatch(/^<!doctype html>/i);
  expect(html).not.toMatch(/\n\s+at \S+ \(/);
  expect(html).not.toMatch(/node_modules|\.ts:\d+|TypeError|ReferenceError/);
}

async function championSku(): Promise<string> {
  const row = await api.database.db
    .selectFrom('models as m')
    .innerJoin('model_versions as v', (join) => join.onRef('v.model_id', '=', 'm.id').on('v.status', '=', 'champion'))
    .select('m.target_key')
    .where('m.target_kind', '=', 'product')
    .where('m.target_key', '=', 'PL-REFILL')
    .executeTakeFirstOrThrow();
  return row.target_key;
}

const REVIEW_PAGES = async () => {
  const run = seeded.runs[1]!.runId;
  const person = seeded.base.people[0]!.id;
  return [
    '/ui/models',
    '/ui/models?sort=auc&dir=asc',
    '/ui/models/PL-REFILL',
    '/ui/models/PL-REFILL/features',
    '/ui/runs',
    `/ui/runs/${run}`,
    '/ui/people',
    `/ui/people/${person}`,
  ];
};

/** The chart images of the review pages: the same sign-in and roles as their pages. */
const CHART_ADDRESSES = async () => {
  const run = seeded.runs[1]!.runId;
  return [
    '/ui/models/PL-REFILL/charts/roc.svg',
    '/ui/models/PL-REFILL/charts/funnel.svg',
    '/ui/runs/charts/durations.svg',
    `/ui/runs/${run}/charts/stages.svg`,
  ];
};

describe('signing in', () => {
  it('sets an HttpOnly, SameSite=Strict cookie limited to /ui, and goes where it was asked', async () => {
    const response = await page(null, '/ui/login', form({ key: api.keys.data_scientist, next: '/ui/runs' }));
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/ui/runs');
    const cookie = response.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^cible_ui_session=[A-Za-z0-9_-]{43};/);
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    expect(cookie).toMatch(/Path=\/ui/);
  });

  it('refuses an unknown key with the form again, and never sends anyone off-site', async () => {
    const wrong = await page(null, '/ui/login', form({ key: 'cible_000000000000_not-a-real-key', next: '/ui/models' }));
    expect(wrong.status).toBe(401);
    const html = await wrong.text();
    expectReadable(html);
    expect(html).toContain('unknown or revoked');
    expect(html).toContain('<form');
    const offsite = await page(null, '/ui/login', form({ key: api.keys.dpo, next: 'https://evil.example/' }));
    expect(offsite.headers.get('location')).toBe('/ui/models');
  });

  it('signing out clears the cookie', async () => {
    const cookie = await sessionCookie(api.keys.data_scientist);
    const response = await api.app.request('/ui/logout', { method: 'POST', headers: { cookie }, redirect: 'manual' });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/ui/login');
    expect(response.headers.get('set-cookie')).toMatch(/cible_ui_session=;.*Max-Age=0/);
  });

  it('without a cookie every page sends to the login form (303), with the way back', async () => {
    for (const path of await REVIEW_PAGES()) {
      const response = await page(null, path);
      expect(response.status, path).toBe(303);
      expect(response.headers.get('location'), path).toBe(`/ui/login?next=${encodeURIComponent(path)}`);
    }
  });

  it('without a cookie a chart image sends to the login form too', async () => {
    for (const path of await CHART_ADDRESSES()) {
      const response = await page(null, path);
      expect(response.status, path).toBe(303);
      expect(response.headers.get('location'), path).toMatch(/^\/ui\/login\?next=/);
    }
  });

  it('a revoked key is signed out', async () => {
    const key = await createApiKey(api.database.db, 'soon revoked', 'data_scientist');
    const cookie = await sessionCookie(key.key);
    await revokeApiKey(api.database.db, key.id, new Date());
    const response = await api.app.request('/ui/models', { headers: { cookie }, redirect: 'manual' });
    expect(response.status).toBe(303);
    expect(response.headers.get('set-cookie')).toMatch(/cible_ui_session=;.*Max-Age=0/);
  });
});

describe('roles', () => {
  it('every page answers 200 for a data scientist and a DPO, with Server-Timing and no caching', async () => {
    for (const role of ['data_scientist', 'dpo'] as const) {
      for (const path of await REVIEW_PAGES()) {
        const response = await page(role, path);
        expect(response.status, `${role} ${path}`).toBe(200);
        expect(response.headers.get('content-type')).toMatch(/^text\/html/);
        expect(response.headers.get('server-timing')).toMatch(/total;dur=\d+(\.\d+)?/);
        expect(response.headers.get('cache-control')).toBe('no-store');
        expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
        expectReadable(await response.text());
      }
    }
  });

  it('a marketer, a scheduler and an admin get a readable 403 page on every page', async () => {
    for (const role of ['marketer', 'scheduler', 'admin'] as const) {
      for (const path of await REVIEW_PAGES()) {
        const response = await page(role, path);
        expect(response.status, `${role} ${path}`).toBe(403);
        const html = await response.text();
        expectReadable(html);
        expect(html).toContain('Not for this role');
        expect(html).toContain(`has the role ${role.replace('_', ' ')}`);
        // nothing of the page leaks into the refusal
        expect(html).not.toContain('data-chart=');
        expect(html).not.toMatch(/PL-0\d{4}/);
      }
      for (const path of await CHART_ADDRESSES()) {
        const response = await page(role, path);
        expect(response.status, `${role} ${path}`).toBe(403);
        expect(response.headers.get('content-type'), path).toMatch(/^text\/html/);
        expect(await response.text()).not.toContain('<svg');
      }
    }
  });

  it('a chart image answers for a data scientist and a DPO as an SVG, cached privately a while', async () => {
    for (const role of ['data_scientist', 'dpo'] as const) {
      for (const path of await CHART_ADDRESSES()) {
        const response = await page(role, path);
        expect(response.status, `${role} ${path}`).toBe(200);
        expect(response.headers.get('content-type'), path).toMatch(/^image\/svg\+xml/);
        expect(response.headers.get('cache-control'), path).toBe('private, max-age=300');
        expect(response.headers.get('server-timing'), path).toMatch(/total;dur=\d+(\.\d+)?/);
        expect(response.headers.get('x-content-type-options'), path).toBe('nosniff');
        expect(await response.text(), path).toMatch(/^<svg /);
      }
    }
  });
});

describe('the overview', () => {
  it('has one row per model with its status and reason, problems first, sortable by links', async () => {
    const page_ = await (await page('data_scientist', '/ui/models')).text();
    // the models' table; the products no run modelled follow in a table of their own
    const html = page_.split('<table id="unmodelled"')[0]!;
    const targets = [...html.matchAll(/data-target="([^"]+)" data-status="([^"]+)"/g)].map((m) => ({ target: m[1]!, status: m[2]! }));
    const models = await api.database.db.selectFrom('models').select(['target_kind', 'target_key']).execute();
    expect(targets.length).toBe(models.length);
    expect(targets.find((row) => row.target === 'product:PL-REFILL')?.status).toBe('promoted');
    expect(targets.some((row) => row.status === 'rejected')).toBe(true);
    // problems first: once a row without problems appears, no row with problems follows
    const flags = [...html.matchAll(/<tr( class="problem")? data-target=/g)].map((m) => m[1] !== undefined);
    expect(flags.length).toBe(targets.length);
    expect(flags[0]).toBe(true);
    const firstClean = flags.indexOf(false);
    expect(firstClean === -1 || flags.slice(firstClean).every((flag) => !flag)).toBe(true);
    // every column header is a link that sorts
    for (const key of ['auc', 'lift', 'ece', 'rfm', 'bgnbd', 'previous', 'trained', 'population', 'buyers'])
      expect(html).toContain(`href="/ui/models?sort=${key}&amp;dir=`);
    // labelled figures
    expect(html).toContain('ROC AUC (0–1)');
    expect(html).toContain('lift, top decile (× base rate)');
    expect(html).toContain('calibration error, ECE (pp)');
  });

  it('lists every catalogue product without a model, one row each, and counts them', async () => {
    const html = await (await page('data_scientist', '/ui/models')).text();
    const unmodelled = await api.database.db
      .selectFrom('products as p')
      .leftJoin('models as m', (join) => join.onRef('m.target_key', '=', 'p.sku').on('m.target_kind', '=', 'product'))
      .select('p.sku')
      .where('m.id', 'is', null)
      .orderBy('p.sku')
      .execute();
    expect(unmodelled.map((row) => row.sku)).toContain('PL-RARE');
    const table = /<table id="unmodelled">([\s\S]*?)<\/table>/.exec(html)?.[1] ?? '';
    const rows = [...table.matchAll(/data-target="product:([^"]+)" data-status="([^"]+)"/g)].map((m) => ({ sku: m[1]!, status: m[2]! }));
    expect(rows.map((row) => row.sku)).toEqual(unmodelled.map((row) => row.sku));
    expect(rows.every((row) => row.status === 'not enough data')).toBe(true);
    expect(table).toContain('href="/ui/models/PL-RARE"');
    // the lead's count of targets without enough data includes them
    const lead = /<p class="lead">([\s\S]*?)<\/p>/.exec(html)?.[1] ?? '';
    const notEnough = Number(/(\d+) without enough data/.exec(lead)?.[1]);
    expect(notEnough).toBeGreaterThanOrEqual(rows.length);
    expect(lead).toContain(`${rows.length} never modelled`);
    expect([...html.matchAll(/data-status="not enough data"/g)].length).toBe(notEnough);
  });

  it('sorts by AUC both ways, rows without a champion last', async () => {
    const order = async (dir: string) => {
      const html = await (await page('data_scientist', `/ui/models?sort=auc&dir=${dir}`)).text();
      return [...html.matchAll(/data-target="([^"]+)"/g)].map((m) => m[1]!);
    };
    const aucs = new Map<string, number | null>();
    const rows = await api.database.db
      .selectFrom('models as m')
      .leftJoin('model_versions as v', (join) => join.onRef('v.model_id', '=', 'm.id').on('v.status', '=', 'champion'))
      .select(['m.target_kind', 'm.target_key', 'v.metrics'])
      .execute();
    for (const row of rows) {
      const label = row.target_kind === 'any' ? 'any' : `${row.target_kind}:${row.target_key}`;
      aucs.set(label, (row.metrics?.evaluation as { rocAuc?: number } | undefined)?.rocAuc ?? null);
    }
    for (const dir of ['asc', 'desc']) {
      const labels = await order(dir);
      const values = labels.map((label) => aucs.get(label) ?? null);
      const known = values.filter((v): v is number => v !== null);
      expect(known.length).toBeGreaterThan(1);
      expect(known).toEqual([...known].sort((a, b) => (dir === 'asc' ? a - b : b - a)));
      expect(values.slice(known.length).every((v) => v === null)).toBe(true);
    }
  });

  it('refuses an unknown sort column or direction with a readable 400', async () => {
    for (const path of ['/ui/models?sort=password', '/ui/models?sort=auc&dir=sideways']) {
      const response = await page('data_scientist', path);
      expect(response.status, path).toBe(400);
      expectReadable(await response.text());
    }
  });
});

const CHARTS = ['roc', 'gains', 'lift', 'reliability', 'score-distribution', 'importance', 'history', 'drift', 'funnel'];

interface ChartImage {
  src: string;
  alt: string;
  width: number;
  height: number;
  caption: string;
}

const decodeHtml = (text: string) =>
  text.replace(
    /&(?:#(\d+)|#x([0-9a-f]+)|(amp|lt|gt|quot|apos));/gi,
    (_, dec: string | undefined, hex: string | undefined, name: string | undefined) =>
      dec
        ? String.fromCodePoint(Number(dec))
        : hex
          ? String.fromCodePoint(parseInt(hex, 16))
          : ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[name!.toLowerCase()]!,
  );

/** The image of one chart figure on a page: where it is drawn, its alternative text and size, its caption. */
function chartImage(html: string, id: string): ChartImage {
  const match = new RegExp(
    `<figure class="chart" id="chart-${id}" data-chart="${id}" data-points="(\\d+)"><img src="([^"]+)" alt="([^"]*)" width="(\\d+)" height="(\\d+)"\\s*/?><figcaption>([^<]*)</figcaption></figure>`,
  ).exec(html);
  expect(match, `chart ${id}`).not.toBeNull();
  expect(Number(match![1]), `points of ${id}`).toBeGreaterThan(0);
  return {
    src: decodeHtml(match![2]!),
    alt: decodeHtml(match![3]!),
    width: Number(match![4]),
    height: Number(match![5]),
    caption: decodeHtml(match![6]!),
  };
}

/** How many drawn data marks (paths, rects, circles inside Vega mark groups) an SVG holds. */
function dataMarks(svg: string): number {
  let marks = 0;
  for (const group of svg.matchAll(/<g class="mark-(line|symbol|rect|area|rule)[^"]*"[^>]*>([\s\S]*?)<\/g>/g)) {
    marks += (group[2]!.match(/<(path|rect|circle|line)\b/g) ?? []).length;
  }
  return marks;
}

/** A chart image fetched as the browser would (with the session cookie): a labelled SVG with data marks. */
async function fetchChart(image: ChartImage, id: string): Promise<{ svg: string; timing: string }> {
  const response = await page('data_scientist', image.src);
  expect(response.status, `${id} ${image.src}`).toBe(200);
  expect(response.headers.get('content-type'), id).toMatch(/^image\/svg\+xml/);
  expect(response.headers.get('cache-control'), id).toBe('private, max-age=300');
  const timing = response.headers.get('server-timing') ?? '';
  expect(timing, id).toMatch(/total;dur=/);
  const svg = await response.text();
  expect(svg, id).toMatch(/^<svg role="img" aria-label="[^"]+"/);
  expect(svg, id).toContain('xmlns="http://www.w3.org/2000/svg"');
  expect(svg, id).toMatch(/<title>[^<]+<\/title>/);
  expect(dataMarks(svg), `data marks of ${id}`).toBeGreaterThan(0);
  // the image says what the page's alternative text says: both come from the same data
  expect(decodeHtml(/aria-label="([^"]+)"/.exec(svg)![1]!), `label of ${id}`).toBe(image.alt);
  expect(decodeHtml(/<title>([^<]+)<\/title>/.exec(svg)![1]!), `title of ${id}`).toBe(image.caption);
  return { svg, timing };
}

/** The size an SVG declares on its root element. */
function svgSize(svg: string): { width: number; height: number } {
  const root = /^<svg\b[^>]*>/.exec(svg)![0];
  return { width: Math.ceil(Number(/\swidth="([\d.]+)"/.exec(root)![1])), height: Math.ceil(Number(/\sheight="([\d.]+)"/.exec(root)![1])) };
}

describe('a model page', () => {
  it('shows every chart as an image of its own, each an SVG drawn from data with a title, a label and data marks', async () => {
    const sku = await championSku();
    const response = await page('data_scientist', `/ui/models/${sku}`);
    expect(response.status).toBe(200);
    const timing = response.headers.get('server-timing') ?? '';
    expect(timing).toMatch(/db;dur=/);
    expect(timing).toMatch(/charts;dur=/);
    const html = await response.text();
    expect(html).not.toContain('data-missing="true"');
    // no chart drawn inline: one <img> per chart, with alternative text
    expect(html).not.toContain('<svg');
    expect([...html.matchAll(/<figure class="chart"[^>]*><img /g)].length).toBe(CHARTS.length);
    expect([...html.matchAll(/<img /g)].length).toBe(CHARTS.length);
    const sizes = new Map<string, { width: number; height: number }>();
    for (const id of CHARTS) {
      const image = chartImage(html, id);
      expect(image.alt.length, `alt of ${id}`).toBeGreaterThan(20);
      expect(image.caption.length, `caption of ${id}`).toBeGreaterThan(0);
      expect(image.src).toMatch(new RegExp(`^/ui/models/${sku}/charts/${id}\\.svg\\?v=[0-9a-f]{16}$`));
      expect(image.width, id).toBeGreaterThan(100);
      expect(image.height, id).toBeGreaterThan(100);
      const first = await fetchChart(image, id);
      // drawn on its first request (roc and funnel were, by the roles tests), then from the renderer's cache
      expect(first.timing, id).toMatch(/chart;dur=[\d.]+;desc="chart (drawn \(Vega\)|\(from the cache\))"/);
      const again = await fetchChart(image, id);
      expect(again.timing, id).toMatch(/chart;dur=[\d.]+;desc="chart \(from the cache\)"/);
      expect(again.svg).toBe(first.svg);
      sizes.set(id, svgSize(first.svg));
    }
    // once drawn, the page gives each image its exact size
    const later = await (await page('data_scientist', `/ui/models/${sku}`)).text();
    for (const id of CHARTS) {
      const image = chartImage(later, id);
      expect({ width: image.width, height: image.height }, id).toEqual(sizes.get(id));
    }
    // figures with their units, both baselines, the decision, the lineage
    for (const text of [
      'ROC AUC (0–1, 0.5 = chance)',
      'RFM baseline',
      'BG/NBD baseline',
      'expected calibration error, ECE (percentage points)',
      'consent snapshot',
      'Version history',
    ]) {
      expect(html).toContain(text);
    }
  });

  it("a chart that is not one of the model's, or not an SVG, is a 404", async () => {
    const sku = await championSku();
    for (const file of ['nope.svg', 'roc.png', 'ROC.svg', 'roc', '..%2Froc.svg']) {
      const response = await page('data_scientist', `/ui/models/${sku}/charts/${file}`);
      expect(response.status, file).toBe(404);
      expect(await response.text(), file).not.toContain('<svg');
    }
    const unknown = await page('data_scientist', '/ui/models/NO-SUCH-SKU/charts/roc.svg');
    expect(unknown.status).toBe(404);
    expect(await unknown.text()).toContain('No model is named');
    const malformed = await page('data_scientist', '/ui/models/%20/charts/roc.svg');
    expect(malformed.status).toBe(400);
  });

  it('a chart whose data was not recorded says why on the page, and its image is a 404 with the same reason', async () => {
    // another champion than the one the other tests read: its curves were never stored
    const other = await api.database.db
      .selectFrom('models as m')
      .innerJoin('model_versions as v', (join) => join.onRef('v.model_id', '=', 'm.id').on('v.status', '=', 'champion'))
      .select(['m.target_key', 'v.id'])
      .where('m.target_kind', '=', 'product')
      .where('m.target_key', '!=', 'PL-REFILL')
      .orderBy('m.target_key')
      .executeTakeFirstOrThrow();
    await api.database.db
      .updateTable('model_versions')
      .set({ metrics: sql`metrics #- '{evaluation,curves}'` })
      .where('id', '=', other.id)
      .execute();
    const html = await (await page('data_scientist', `/ui/models/${other.target_key}`)).text();
    const figure = /<figure class="chart missing" id="chart-roc" data-chart="roc" data-missing="true">([\s\S]*?)<\/figure>/.exec(html);
    expect(figure).not.toBeNull();
    expect(figure![1]).not.toContain('<img');
    expect(figure![1]).toContain('ROC curve not recorded for this version');
    // the other charts still are images
    chartImage(html, 'gains');
    const response = await page('data_scientist', `/ui/models/${other.target_key}/charts/roc.svg`);
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await response.text()).toContain('ROC curve not recorded for this version');
    expect((await page('data_scientist', `/ui/models/${other.target_key}/charts/gains.svg`)).status).toBe(200);
  });

  it('flags drift with PSI computed from the stored profiles, above the threshold', async () => {
    const sku = await championSku();
    const model = await api.database.db.selectFrom('models').select('id').where('target_key', '=', sku).executeTakeFirstOrThrow();
    const version = await api.database.db
      .selectFrom('model_versions')
      .select(['id', 'network_id'])
      .where('model_id', '=', model.id)
      .where('status', '=', 'champion')
      .executeTakeFirstOrThrow();
    const network = await api.database.db
      .selectFrom('model_networks')
      .select('metadata')
      .where('id', '=', version.network_id!)
      .executeTakeFirstOrThrow();
    const set = await api.database.db
      .selectFrom('score_sets')
      .select('feature_profile')
      .where('model_id', '=', model.id)
      .where('status', '=', 'live')
      .executeTakeFirstOrThrow();
    const training = (
      network.metadata.featureProfile as { rows: number; bins: Record<string, { edges: number[]; shares: number[]; missing: number }> }
    ).bins;
    const scored = set.feature_profile as { rows: number; population: number; bins: Record<string, { shares: number[]; missing: number }> };
    expect(scored.population).toBe(300);
    expect(Object.keys(scored.bins).sort()).toEqual(Object.keys(training).sort());
    for (const [feature, bins] of Object.entries(training)) {
      expect(bins.shares.length, feature).toBe(bins.edges.length + 1);
      expect(bins.shares.reduce((a, b) => a + b, 0) + bins.missing, feature).toBeCloseTo(1, 9);
      const later = scored.bins[feature]!;
      expect(later.shares.reduce((a, b) => a + b, 0) + later.missing, feature).toBeCloseTo(1, 9);
    }
    const psi = Object.entries(training).map(([feature, bins]) => ({ feature, psi: featurePsi(bins, scored.bins[feature]!) }));
    // features that grow with time by construction are shown, never flagged, and the page says why
    const flagged = psi.filter((entry) => entry.psi > PSI_THRESHOLD && !(entry.feature in TIME_GROWING_FEATURES));
    const exempt = psi.filter((entry) => entry.feature in TIME_GROWING_FEATURES);
    expect(exempt.map((entry) => entry.feature)).toContain('tenure_days');

    const html = await (await page('data_scientist', `/ui/models/${sku}`)).text();
    expect(html).toContain(`${flagged.length} of ${psi.length} features above ${PSI_THRESHOLD} (flagged)`);
    for (const entry of flagged)
      expect(html).toContain(`<th scope="row">${entry.feature}</th><td class="num">${entry.psi.toFixed(3)}</td>`);
    expect(html).not.toContain('<th scope="row">tenure_days</th>');
    for (const entry of exempt)
      expect(html).toContain(`id="drift-exempt-${entry.feature}">${entry.feature} (PSI ${entry.psi.toFixed(3)}) is never flagged: `);
    const driftSvg = await (await page('data_scientist', `/ui/models/${sku}/charts/drift.svg`)).text();
    expect(legendLabels(driftSvg)).toContain('grows with time (not flagged)');

    const features = await (await page('data_scientist', `/ui/models/${sku}/features`)).text();
    for (const entry of psi) expect(features).toContain(`data-feature="${entry.feature}"`);
    expect(features).toContain('danfojs');
    expect(features).toContain('decile edges');
    expect(features).toMatch(/data-feature="tenure_days">[\s\S]*?\(grows with time, not flagged\)/);
  });

  it('groups the feature profile in sections, each reachable from a list of links', async () => {
    const html = await (await page('data_scientist', `/ui/models/${await championSku()}/features`)).text();
    const nav = /<nav id="feature-groups"[^>]*>([\s\S]*?)<\/nav>/.exec(html)?.[1] ?? '';
    const links = [...nav.matchAll(/href="#([^"]+)"/g)].map((m) => m[1]!);
    const sections = [...html.matchAll(/<details class="feature-group" id="([^"]+)"( open="")?>/g)].map((m) => ({
      id: m[1]!,
      open: m[2] !== undefined,
    }));
    expect(links.length).toBeGreaterThan(3);
    expect(links).toEqual(sections.map((section) => section.id));
    expect(new Set(links).size).toBe(links.length);
    for (const id of ['group-person-recency', 'group-person-tenure']) expect(links).toContain(id);
    expect(links.some((id) => id.startsWith('group-product-'))).toBe(true);
    // each section holds its own table; together they hold every feature once
    const rows = [...html.matchAll(/<tr[^>]*data-feature="([^"]+)"/g)].map((m) => m[1]!);
    expect(new Set(rows).size).toBe(rows.length);
    expect([...html.matchAll(/<table class="features">/g)].length).toBe(sections.length);
    // the person features open, a product's history folded unless it drifted
    expect(sections.find((section) => section.id === 'group-person-recency')?.open).toBe(true);
  });

  it('draws the AUC history with distinct tick labels, the drift without an axis title over the names, and the baselines on the ROC chart', async () => {
    const sku = await championSku();
    const svg = async (chart: string) => {
      const response = await page('data_scientist', `/ui/models/${sku}/charts/${chart}.svg`);
      expect(response.status, chart).toBe(200);
      return response.text();
    };
    const history = await svg('history');
    const axes = axisTickLabels(history);
    expect(axes.length).toBe(2);
    for (const labels of axes) expect(new Set(labels).size, labels.join(' ')).toBe(labels.length);
    expect(axes.some((labels) => labels.includes('v1') && labels.includes('v2'))).toBe(true);

    const drift = await svg('drift');
    expect(axisTitles(drift)).toEqual([expect.stringMatching(/^PSI/)]);

    const roc = await svg('roc');
    const legend = legendLabels(roc);
    expect(legend.some((label) => label.startsWith('model, AUC'))).toBe(true);
    expect(legend.some((label) => label.startsWith('RFM, AUC'))).toBe(true);
    expect(legend.some((label) => label.startsWith('BG/NBD, AUC'))).toBe(true);
    // chance, the model and both baselines
    expect(linePaths(roc)).toBe(4);
  });

  it('links the top-scored people by internal id only, and the person view explains one person', async () => {
    const sku = await championSku();
    const html = await (await page('data_scientist', `/ui/models/${sku}`)).text();
    const links = [...html.matchAll(/href="\/ui\/people\/(\d+)"/g)].map((m) => Number(m[1]));
    expect(links.length).toBe(5);
    // no external id nor email on the model page
    expect(html).not.toMatch(/PL-0\d{4}|@example\.com/);

    const person = seeded.base.people.find((p) => p.id === links[0])!;
    const view = await page('data_scientist', `/ui/people/${person.id}`);
    expect(view.status).toBe(200);
    const body = await view.text();
    expect(body).toContain(person.ref);
    expect(body).not.toContain('@example.com');
    // one person: no other external id on the page
    expect([...body.matchAll(/PL-0\d{4}/g)].map((m) => m[0])).toEqual([person.ref]);
    expect(body).toMatch(/<li><strong>[a-z -]+<\/strong>: \+\d\.\d\d log-odds \(×[\d.]+ odds\)<\/li>/);
    expect(body).toContain('probability of buying (%)');
    const audit = await api.database.db
      .selectFrom('audit_log')
      .select(['actor', 'details'])
      .where('action', '=', 'ui.person_scores_viewed')
      .where('subject_id', '=', String(person.id))
      .execute();
    expect(audit.length).toBeGreaterThan(0);
    expect(audit[0]!.actor).toMatch(/^apikey:\d+:test data_scientist$/);
  });

  it('finds a person by external id from a form, without putting the id in an address', async () => {
    const person = seeded.base.people[3]!;
    const found = await page('data_scientist', '/ui/people', form({ external_id: person.ref }));
    expect(found.status).toBe(303);
    expect(found.headers.get('location')).toBe(`/ui/people/${person.id}`);
    const missingPerson = await page('data_scientist', '/ui/people', form({ external_id: 'NOBODY-HERE' }));
    expect(missingPerson.status).toBe(404);
    const html = await missingPerson.text();
    expectReadable(html);
    expect(html).not.toContain('NOBODY-HERE');
    expect((await page('data_scientist', '/ui/people/by-id?id=12')).headers.get('location')).toBe('/ui/people/12');
  });

  it('the runs page lists the runs with their stages, outcomes and errors', async () => {
    const html = await (await page('data_scientist', '/ui/runs')).text();
    for (const run of seeded.runs) expect(html).toContain(`data-run="${run.runId}"`);
    const durations = chartImage(html, 'run-durations');
    expect(durations.src).toMatch(/^\/ui\/runs\/charts\/durations\.svg\?v=[0-9a-f]{16}$/);
    await fetchChart(durations, 'run-durations');
    const older = await (await page('data_scientist', `/ui/runs?before=${seeded.runs[1]!.runId}`)).text();
    const olderDurations = chartImage(older, 'run-durations');
    expect(olderDurations.src).toMatch(new RegExp(`^/ui/runs/charts/durations\\.svg\\?before=${seeded.runs[1]!.runId}&v=[0-9a-f]{16}$`));
    await fetchChart(olderDurations, 'run-durations');
    const detail = await (await page('data_scientist', `/ui/runs/${seeded.runs[1]!.runId}`)).text();
    const stages = chartImage(detail, 'stages');
    expect(stages.src).toMatch(new RegExp(`^/ui/runs/${seeded.runs[1]!.runId}/charts/stages\\.svg\\?v=[0-9a-f]{16}$`));
    await fetchChart(stages, 'stages');
    expect((await page('data_scientist', '/ui/runs/999999/charts/stages.svg')).status).toBe(404);
    expect((await page('data_scientist', `/ui/runs/${seeded.runs[1]!.runId}/charts/durations.svg`)).status).toBe(404);
    expect((await page('data_scientist', '/ui/runs/charts/durations.svg?before=soon')).status).toBe(400);
    for (const stage of seeded.runs[1]!.stages) expect(detail).toContain(`<td>${stage.stage}</td>`);
    expect(detail).toContain('consent funnel');
    const failed = await api.database.db
      .insertInto('pipeline_runs')
      .values({
        status: 'failed',
        trigger: 'test',
        as_of: new Date(),
        params: '{}',
        summary: JSON.stringify({ stages: [{ stage: 'features', seconds: 1.5, rows: 10 }] }),
        error: 'out of memory in features',
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const withFailure = await (await page('dpo', '/ui/runs')).text();
    expect(withFailure).toContain('out of memory in features');
    expect(await (await page('dpo', `/ui/runs/${failed.id}`)).text()).toContain('out of memory in features');
    // a queued run's parts, with its driver and shards, on its page
    await api.database.db.updateTable('pipeline_runs').set({ driver: 'queue', shards: 2 }).where('id', '=', failed.id).execute();
    await api.database.db
      .insertInto('pipeline_run_parts')
      .values({
        run_id: failed.id,
        part: 'score:1',
        status: 'failed',
        attempt: 2,
        worker: 'worker-b:4242',
        started_at: new Date('2026-11-02T07:00:00Z'),
        finished_at: new Date('2026-11-02T07:00:12Z'),
        rows: 150,
        output: null,
        error: 'shard lost its lease',
      })
      .execute();
    const queued = await (await page('data_scientist', `/ui/runs/${failed.id}`)).text();
    expect(queued).toMatch(
      /<tr class="problem" data-part="score:1"><td>score:1<\/td><td><span[^>]*>failed<\/span><\/td><td class="num">2<\/td><td>worker-b:4242<\/td><td>2026-11-02 07:00 UTC<\/td><td class="num">12\.0<\/td><td class="num">150<\/td><td class="reason">shard lost its lease<\/td><\/tr>/,
    );
    expect(queued).toContain('job queue, 2 scoring shards');
  });
});

describe('bad input', () => {
  it('an unknown target is a readable 404, a malformed one a readable 400', async () => {
    const unknown = await page('data_scientist', '/ui/models/NO-SUCH-SKU');
    expect(unknown.status).toBe(404);
    const html = await unknown.text();
    expectReadable(html);
    expect(html).toContain('No such model');
    for (const path of ['/ui/models/%00', `/ui/models/${'X'.repeat(201)}`, '/ui/models/%20']) {
      const response = await page('data_scientist', path);
      expect(response.status, path).toBe(400);
      expectReadable(await response.text());
    }
  });

  it('malformed ids are readable 400s; unknown ids readable 404s', async () => {
    const cases: Array<[string, number]> = [
      ['/ui/people/abc', 400],
      ['/ui/people/0', 400],
      ['/ui/people/-4', 400],
      ['/ui/people/1e3', 400],
      ['/ui/people/99999999', 404],
      ['/ui/people/by-id?id=%27%20OR%201=1', 400],
      ['/ui/runs/x', 400],
      ['/ui/runs/999999', 404],
      ['/ui/runs?before=soon', 400],
      ['/ui/nothing-here', 404],
    ];
    for (const [path, status] of cases) {
      const response = await page('data_scientist', path);
      expect(response.status, path).toBe(status);
      expectReadable(await response.text());
    }
  });

  it('a product with too few buyers gets a page that says why', async () => {
    const response = await page('data_scientist', '/ui/models/PL-RARE');
    expect(response.status).toBe(200);
    const html = await response.text();
    expectReadable(html);
    expect(html).toContain('No live model for this target.');
    expect(html).toContain('not enough data');
    expect(html).toMatch(/at least 10 people bought it/);
  });

  it('a model without any version yet gets a page that says so', async () => {
    const product = await api.database.db
      .insertInto('products')
      .values({ sku: 'PL-NEW', name: 'New thing', category: 'kitchen' })
      .returning('id')
      .executeTakeFirstOrThrow();
    await api.database.db.insertInto('models').values({ target_kind: 'product', target_key: 'PL-NEW', product_id: product.id }).execute();
    const response = await page('data_scientist', '/ui/models/PL-NEW');
    expect(response.status).toBe(200);
    const html = await response.text();
    expectReadable(html);
    expect(html).toContain('The registry has this model but no version yet.');
    expect(html).not.toContain('<img');
    for (const chart of ['history', 'roc']) {
      const image = await page('data_scientist', `/ui/models/PL-NEW/charts/${chart}.svg`);
      expect(image.status, chart).toBe(404);
      expect(await image.text(), chart).toMatch(/No data point to draw|no live model/);
    }
    const overview = await (await page('data_scientist', '/ui/models')).text();
    expect(overview).toContain('data-target="product:PL-NEW" data-status="not enough data"');
    const features = await page('data_scientist', '/ui/models/PL-NEW/features');
    expect(features.status).toBe(404);
    expectReadable(await features.text());
  });

  it('a failing database gives a 500 page with a request id, never the database message', async () => {
    const secret = 'duplicate key value (email)=(someone.secret@example.com)';
    const failing = new Proxy({} as Kysely<Database>, {
      get() {
        throw new Error(secret);
      },
    });
    const captured = captureLogger();
    const app = createApp({
      database: { ...api.database, db: failing },
      clock: seeded.clock,
      logger: captured.logger,
      config: api.config,
      pipeline: { start: async () => 0 },
    });
    const response = await app.request('/ui/models', { headers: { cookie: await sessionCookie(api.keys.data_scientist) } });
    expect(response.status).toBe(500);
    const html = await response.text();
    expectReadable(html);
    expect(html).toContain('request id');
    expect(html).not.toContain('secret');
    expect(captured.lines.join('\n')).not.toContain('someone.secret');
  });

  it('logs name routes, never a person', async () => {
    const person = seeded.base.people[1]!;
    await page('data_scientist', `/ui/people/${person.id}`);
    await page('data_scientist', '/ui/people', form({ external_id: person.ref }));
    const logs = api.logLines.join('\n');
    expect(logs).toContain('/ui/people/:contactId');
    expect(logs).not.toContain(person.ref);
    expect(logs).not.toContain('@example.com');
  });
});
