import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type ServerType, serve } from '@hono/node-server';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHarness, createApiHarness } from '../api/api.fixtures.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { type ReviewBase, seedReviewBase } from './review.fixtures.ts';

/*
 * The review pages in a real browser (Debian's headless Chromium), against the app served
 * over HTTP on a free port after two small real pipeline runs. Screenshots of the overview
 * and of a model page are left in test/artifacts/ (gitignored) for a human to look at.
 */

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));

let api: ApiHarness;
let seeded: ReviewBase;
let server: ServerType;
let base: string;
let browser: Browser;

beforeAll(async () => {
  // never skipped: without the browser this test fails and says why
  if (!existsSync(CHROMIUM))
    throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium) to run the browser tests`);
  const database = await createTestDatabase();
  seeded = await seedReviewBase(database);
  api = await createApiHarness({ database, clock: seeded.clock });
  server = await new Promise<ServerType>((resolve) => {
    const started = serve({ fetch: api.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  await mkdir(ARTIFACTS, { recursive: true });
}, 170_000);

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  await api?.close();
});

async function signIn(page: Page, key: string): Promise<void> {
  await page.goto(`${base}/ui/models`);
  // no cookie yet: the login form, which brings back to the overview
  expect(new URL(page.url()).pathname).toBe('/ui/login');
  await page.fill('input[name="key"]', key);
  await Promise.all([page.waitForURL(`${base}/ui/models`), page.click('button[type="submit"]')]);
}

/** Per chart figure: its id, and its image as the browser loaded it. */
async function chartImages(page: Page): Promise<
  Array<{
    id: string;
    src: string | null;
    alt: string | null;
    complete: boolean;
    naturalWidth: number;
    naturalHeight: number;
    caption: string | null;
  }>
> {
  return page.$$eval('figure.chart', (figures) =>
    figures.map((figure) => {
      const img = figure.querySelector('img');
      return {
        id: figure.getAttribute('data-chart') ?? '',
        src: img?.getAttribute('src') ?? null,
        alt: img?.getAttribute('alt') ?? null,
        complete: img?.complete ?? false,
        naturalWidth: img?.naturalWidth ?? 0,
        naturalHeight: img?.naturalHeight ?? 0,
        caption: figure.querySelector('figcaption')?.textContent ?? null,
      };
    }),
  );
}

/** How many drawn data marks (paths, rects, circles inside Vega mark groups) an SVG holds. */
function dataMarks(svg: string): number {
  let marks = 0;
  for (const group of svg.matchAll(/<g class="mark-(line|symbol|rect|area|rule)[^"]*"[^>]*>([\s\S]*?)<\/g>/g)) {
    marks += (group[2]!.match(/<(path|rect|circle|line)\b/g) ?? []).length;
  }
  return marks;
}

describe('in a browser', () => {
  it('a data scientist signs in, reads the overview, a model with every chart, and follows a link to a person', async () => {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, javaScriptEnabled: false });
    const page = await context.newPage();
    try {
      await signIn(page, api.keys.data_scientist);
      const cookie = (await context.cookies()).find((c) => c.name === 'cible_ui_session');
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/ui' });

      await expect.poll(() => page.locator('table#models tbody tr').count()).toBeGreaterThan(3);
      expect(await page.locator('h1').textContent()).toBe('Models');
      // a product no run modelled has its own row, below the models
      expect(await page.locator('table#unmodelled tr[data-target="product:PL-RARE"][data-status="not enough data"]').count()).toBe(1);
      expect(await page.locator('p.lead').textContent()).toMatch(/\d+ never modelled/);
      await page.screenshot({ path: `${ARTIFACTS}overview.png`, fullPage: true });

      // sorting works by following header links (no script on the page)
      await page.click('th a[href^="/ui/models?sort=auc"]');
      expect(new URL(page.url()).searchParams.get('sort')).toBe('auc');

      await page.click('table#models a[href="/ui/models/PL-REFILL"]');
      await page.waitForURL(`${base}/ui/models/PL-REFILL`);
      // every chart is an image of its own, loaded by the browser (no script on the page)
      await expect.poll(() => page.$$eval('figure img', (images) => images.every((img) => img.complete))).toBe(true);
      const charts = await chartImages(page);
      expect(charts.map((chart) => chart.id).sort()).toEqual([
        'drift',
        'funnel',
        'gains',
        'history',
        'importance',
        'lift',
        'reliability',
        'roc',
        'score-distribution',
      ]);
      for (const chart of charts) {
        expect(chart.src, `address of the ${chart.id} chart`).toMatch(new RegExp(`^/ui/models/PL-REFILL/charts/${chart.id}\\.svg\\?v=`));
        expect(chart.naturalWidth, `the ${chart.id} chart loaded`).toBeGreaterThan(0);
        expect(chart.naturalHeight, `the ${chart.id} chart loaded`).toBeGreaterThan(0);
        expect(chart.alt, `alternative text of ${chart.id}`).toBeTruthy();
        expect(chart.caption, `caption of ${chart.id}`).toBeTruthy();
      }
      // an image as the browser gets it (its session cookie): a labelled SVG with data marks
      for (const chart of charts) {
        const response = await page.request.get(`${base}${chart.src}`);
        expect(response.status(), chart.id).toBe(200);
        expect(response.headers()['content-type'], chart.id).toMatch(/^image\/svg\+xml/);
        const svg = await response.text();
        expect(svg, chart.id).toMatch(/^<svg role="img" aria-label="[^"]+"/);
        expect(svg, chart.id).toMatch(/<title>[^<]+<\/title>/);
        expect(dataMarks(svg), `data marks in the ${chart.id} chart`).toBeGreaterThan(0);
      }
      await page.screenshot({ path: `${ARTIFACTS}model.png`, fullPage: true });
      expect(await page.locator('#drift-exempt-tenure_days').textContent()).toContain('is never flagged');

      // the review fixes as the browser draws them, each chart opened on its own and kept as a picture
      const modelUrl = page.url();
      const src = (id: string) => `${base}${charts.find((chart) => chart.id === id)!.src}`;
      await page.goto(src('history'));
      // per axis (grid lines are axes of their own, without labels)
      const axes = await page.$$eval('g.role-axis', (groups) =>
        groups.map((axis) => [...axis.querySelectorAll('g.role-axis-label text')].map((text) => text.textContent ?? '')),
      );
      const ticks = axes.filter((labels) => labels.length > 0);
      expect(ticks.length).toBe(2);
      for (const labels of ticks) expect(new Set(labels).size, labels.join(' ')).toBe(labels.length);
      await page.screenshot({ path: `${ARTIFACTS}chart-history.png` });

      await page.goto(src('drift'));
      // no axis title drawn over a feature name: their boxes as laid out do not meet
      const overlaps = await page.$$eval('svg', ([svg]) => {
        const boxes = (selector: string) => [...svg!.querySelectorAll(selector)].map((element) => element.getBoundingClientRect());
        const titles = boxes('g.role-axis-title text');
        const labels = boxes('g.role-axis-label text');
        return titles.flatMap((t) => labels.filter((l) => t.left < l.right && l.left < t.right && t.top < l.bottom && l.top < t.bottom))
          .length;
      });
      expect(overlaps).toBe(0);
      expect(await page.locator('g.role-legend-label text', { hasText: 'grows with time (not flagged)' }).count()).toBe(1);
      await page.screenshot({ path: `${ARTIFACTS}chart-drift.png` });

      await page.goto(src('roc'));
      const legend = await page.$$eval('g.role-legend-label text', (texts) => texts.map((text) => text.textContent ?? ''));
      for (const series of ['model', 'RFM', 'BG/NBD'])
        expect(
          legend.some((label) => label.startsWith(`${series}, AUC`)),
          series,
        ).toBe(true);
      // chance, the model and both baselines: one line each
      expect(await page.locator('g.mark-line path').count()).toBe(4);
      await page.screenshot({ path: `${ARTIFACTS}chart-roc.png` });

      // the feature profile: sections by feature group, each reached from the list of links at the top
      await page.goto(`${modelUrl}/features`);
      const groups = await page.$$eval('nav#feature-groups a', (links) => links.map((link) => link.getAttribute('href') ?? ''));
      expect(groups.length).toBeGreaterThan(3);
      expect(await page.locator('details.feature-group').count()).toBe(groups.length);
      const product = groups.find((href) => href.startsWith('#group-product-'))!;
      await page.click(`nav#feature-groups a[href="${product}"]`);
      expect(new URL(page.url()).hash).toBe(product);
      await page.screenshot({ path: `${ARTIFACTS}features.png`, fullPage: true });
      await page.goto(modelUrl);

      const link = page.locator('table#top a').first();
      const href = await link.getAttribute('href');
      expect(href).toMatch(/^\/ui\/people\/\d+$/);
      await link.click();
      await page.waitForURL(`${base}${href}`);
      const person = seeded.base.people.find((p) => `/ui/people/${p.id}` === href)!;
      expect(await page.locator('h1').textContent()).toBe(`Person #${person.id}`);
      const text = (await page.locator('main').textContent()) ?? '';
      expect(text).toContain(person.ref);
      expect(text).not.toContain('@');
      expect(await page.locator('table#scores tbody tr').count()).toBeGreaterThan(0);
      await page.screenshot({ path: `${ARTIFACTS}person.png`, fullPage: true });

      // signing out ends the session
      await Promise.all([page.waitForURL(`${base}/ui/login`), page.click('header button[type="submit"]')]);
      expect((await context.cookies()).find((c) => c.name === 'cible_ui_session')).toBeUndefined();
    } finally {
      await context.close();
    }
  });

  it('a marketer key is refused on the data scientist pages', async () => {
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    try {
      await page.goto(`${base}/ui/login`);
      await page.fill('input[name="key"]', api.keys.marketer);
      const [response] = await Promise.all([
        page.waitForResponse((r) => new URL(r.url()).pathname === '/ui/models'),
        page.click('button[type="submit"]'),
      ]);
      expect(response.status()).toBe(403);
      expect(await page.locator('h1').textContent()).toBe('Not for this role');
      expect(await page.locator('figure.chart').count()).toBe(0);
      for (const path of ['/ui/models/PL-REFILL', `/ui/people/${seeded.base.people[0]!.id}`, '/ui/runs']) {
        const refused = await page.goto(`${base}${path}`);
        expect(refused?.status(), path).toBe(403);
        expect(await page.locator('[role="alert"]').textContent()).toContain('has the role marketer');
      }
    } finally {
      await context.close();
    }
  });
});
