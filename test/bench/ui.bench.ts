/**
 * npm run bench:ui — server time of the model review pages (issue 6) and of their charts,
 * against the base scored by `npm run bench:pipeline` on PostgreSQL (1M contacts, 50 products:
 * run that first).
 *
 * The app is built in-process (no port, no HTTP client in the measure) with a new data
 * scientist key. A page no longer draws its charts: each chart is an <img> whose SVG is drawn
 * by its own request. For each page, in order:
 *   1. first view (cold cache): the page once, then each of its chart images once, as a
 *      browser would on a first visit: every chart drawn for the first time (compile, parse,
 *      View.toSVG); the page and each chart image are timed apart and summed;
 *   2. warm: the page WARMUP then ROUNDS times, then each chart image the same (from the
 *      renderer's cache).
 * Printed: the page's own server time (Server-Timing `total`: its charts not included), the
 * first view of each page (page + charts), and per chart kind the first draws and the warm
 * median / 95th percentile. The key is revoked at the end; the person view writes its audit
 * line each time, as in production.
 *
 *   BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/cible_bench_pipeline)
 *   BENCH_ROUNDS (default 20)
 */
import { sql } from 'kysely';
import { createApp } from '../../src/api/app.ts';
import { createApiKey, revokeApiKey } from '../../src/auth/api-key.repository.ts';
import { systemClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/engine.ts';
import { createLogger } from '../../src/logger.ts';

const url = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/cible_bench_pipeline';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const WARMUP = 3;
const BUDGET_MS = 300;

function serverTime(response: Response): number {
  const total = /(?:^|,)\s*total;dur=([\d.]+)/.exec(response.headers.get('server-timing') ?? '');
  if (!total) throw new Error(`no Server-Timing total on ${response.url}`);
  return Number(total[1]);
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

async function main(): Promise<void> {
  const database = await openDatabase({ kind: 'postgres', url });
  const { db } = database;
  try {
    const { rows: columns } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'score_sets' AND column_name = 'feature_profile'`.execute(
      db,
    );
    if (columns[0]?.n !== 1) {
      console.error(
        `${url} lacks score_sets.feature_profile (migration 20261129_1600_review_pages): migrate it (DATABASE_URL=… npx cible db migrate), then run npm run bench:pipeline so that its scores carry the profiles the pages draw`,
      );
      process.exitCode = 1;
      return;
    }
    const champions = await db
      .selectFrom('models as m')
      .innerJoin('model_versions as v', (join) => join.onRef('v.model_id', '=', 'm.id').on('v.status', '=', 'champion'))
      .innerJoin('score_sets as s', (join) => join.onRef('s.model_id', '=', 'm.id').on('s.status', '=', 'live'))
      .select([
        'm.target_key',
        's.id as set_id',
        sql<boolean>`v.metrics -> 'evaluation' ? 'curves'`.as('has_curves'),
        sql<boolean>`s.feature_profile IS NOT NULL`.as('has_profile'),
      ])
      .where('m.target_kind', '=', 'product')
      .orderBy('m.target_key')
      .execute();
    const models = await db.selectFrom('models').select(sql<number>`count(*)::int`.as('n')).executeTakeFirstOrThrow();
    if (champions.length < 3) {
      console.error(`${url} has ${champions.length} scored product models: run npm run bench:pipeline first`);
      process.exitCode = 1;
      return;
    }
    const withCurves = champions.filter((row) => row.has_curves).length;
    const withProfiles = champions.filter((row) => row.has_profile).length;
    if (withCurves < champions.length || withProfiles < champions.length) {
      console.log(
        `note: ${champions.length - withCurves} of ${champions.length} champions have no stored curves and ${champions.length - withProfiles} no scored-population profile ` +
          '(trained before the review pages): their pages draw fewer charts. Run npm run bench:pipeline again for the full pages.',
      );
    }
    const config = loadConfig({ ...process.env, DATABASE_URL: url });
    const app = createApp({
      database,
      clock: systemClock,
      logger: createLogger('warn'),
      config,
      pipeline: {
        async start() {
          throw new Error('no pipeline runs from the UI bench');
        },
      },
    });
    const key = await createApiKey(db, `bench ui ${new Date().toISOString()}`, 'data_scientist');
    try {
      const picked = [champions[0]!, champions[Math.floor(champions.length / 2)]!, champions[champions.length - 1]!];
      const person = await db
        .selectFrom('scores')
        .select('contact_id')
        .where('score_set_id', '=', picked[0]!.set_id)
        .orderBy('rank')
        .limit(1)
        .executeTakeFirstOrThrow();
      const run = await db.selectFrom('pipeline_runs').select('id').orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
      const pages: Array<[string, string]> = [
        ['overview', '/ui/models'],
        ...picked.map((row, i): [string, string] => [
          `model page ${i + 1} (${row.target_key})`,
          `/ui/models/${encodeURIComponent(row.target_key)}`,
        ]),
        ['person view', `/ui/people/${person.contact_id}`],
        ['runs', '/ui/runs'],
        [`run #${run.id}`, `/ui/runs/${run.id}`],
        [`feature profile (${picked[0]!.target_key})`, `/ui/models/${encodeURIComponent(picked[0]!.target_key)}/features`],
      ];
      // signed in through the login form: the cookie holds a session id, never the key
      const login = await app.request('/ui/login', {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ key: key.key, next: '/ui/models' }).toString(),
        redirect: 'manual',
      });
      const headers = { cookie: (login.headers.get('set-cookie') ?? '').split(';')[0]! };
      const timed = async (path: string, expected: string): Promise<{ ms: number; body: string; drawn: boolean }> => {
        const response = await app.request(path, { headers });
        const body = await response.text();
        if (response.status !== 200) throw new Error(`${path} answered ${response.status}: ${body.slice(0, 200)}`);
        if (!(response.headers.get('content-type') ?? '').startsWith(expected)) throw new Error(`${path} is not ${expected}`);
        return { ms: serverTime(response), body, drawn: /chart;desc="chart drawn/.test(response.headers.get('server-timing') ?? '') };
      };
      const warm = async (path: string, expected: string): Promise<number[]> => {
        for (let i = 0; i < WARMUP; i++) await timed(path, expected);
        const times: number[] = [];
        for (let i = 0; i < ROUNDS; i++) times.push((await timed(path, expected)).ms);
        return times.sort((a, b) => a - b);
      };

      const pageRows: Array<{ name: string; cold: number; times: number[]; charts: number; chartsFirst: number; slowest: number }> = [];
      const kinds = new Map<string, { first: number[]; warm: number[]; cachedFirst: number }>();
      for (const [name, path] of pages) {
        // 1. first view, cold cache: the page, then its images
        const first = await timed(path, 'text/html');
        const images = [...first.body.matchAll(/<figure class="chart" id="chart-[^"]+" data-chart="([^"]+)"[^>]*><img src="([^"]+)"/g)].map(
          (m) => ({
            kind: m[1]!,
            src: m[2]!.replaceAll('&amp;', '&'),
          }),
        );
        let chartsFirst = 0;
        let slowest = 0;
        for (const image of images) {
          const drawn = await timed(image.src, 'image/svg+xml');
          const kind = kinds.get(image.kind) ?? { first: [], warm: [], cachedFirst: 0 };
          kinds.set(image.kind, kind);
          kind.first.push(drawn.ms);
          if (!drawn.drawn) kind.cachedFirst++;
          chartsFirst += drawn.ms;
          slowest = Math.max(slowest, drawn.ms);
        }
        // 2. warm
        const times = await warm(path, 'text/html');
        for (const image of images) kinds.get(image.kind)!.warm.push(...(await warm(image.src, 'image/svg+xml')));
        pageRows.push({ name, cold: first.ms, times, charts: images.length, chartsFirst, slowest });
      }

      const ms = (value: number, width: number) => value.toFixed(1).padStart(width);
      let over = 0;
      console.log(
        `review pages on ${url}: ${models.n} models, ${champions.length} scored products; ${ROUNDS} requests per page and per chart image after ${WARMUP} warm-up requests`,
      );
      console.log('');
      console.log('PAGES: server time of the page alone (its charts are separate <img> requests, not included)');
      console.log('page                                   first view ms   median ms    p95 ms   max ms');
      for (const row of pageRows) {
        const p95 = percentile(row.times, 0.95);
        if (p95 > BUDGET_MS || row.cold > BUDGET_MS) over++;
        console.log(
          `${row.name.slice(0, 38).padEnd(38)} ${ms(row.cold, 13)} ${ms(percentile(row.times, 0.5), 11)} ${ms(p95, 9)} ${ms(row.times[row.times.length - 1]!, 8)}`,
        );
      }
      console.log('');
      console.log(
        'FIRST VIEW (cold cache): the page, then each of its chart images drawn for the first time; server time summed (a browser fetches the images in parallel, this server draws them one at a time)',
      );
      console.log('page                                    page ms  charts  charts ms  slowest chart ms   page + charts ms');
      for (const row of pageRows.filter((r) => r.charts > 0)) {
        if (row.slowest > BUDGET_MS) over++;
        console.log(
          `${row.name.slice(0, 38).padEnd(38)} ${ms(row.cold, 8)} ${String(row.charts).padStart(7)} ${ms(row.chartsFirst, 10)} ${ms(row.slowest, 17)} ${ms(row.cold + row.chartsFirst, 18)}`,
        );
      }
      console.log('');
      console.log('CHART IMAGES per kind: first draw (cold cache: compile + parse + View.toSVG) and warm (from the renderer cache)');
      console.log('chart                 images  first draw median ms  first draw max ms   warm median ms  warm p95 ms  warm max ms');
      for (const [kind, times] of kinds) {
        const first = [...times.first].sort((a, b) => a - b);
        const warmTimes = [...times.warm].sort((a, b) => a - b);
        const p95 = percentile(warmTimes, 0.95);
        if (p95 > BUDGET_MS) over++;
        const note =
          times.cachedFirst > 0
            ? `  (${times.cachedFirst} first request(s) found the chart drawn already: same spec as another page's)`
            : '';
        console.log(
          `${kind.padEnd(21)} ${String(first.length).padStart(6)} ${ms(percentile(first, 0.5), 21)} ${ms(first[first.length - 1]!, 18)} ${ms(percentile(warmTimes, 0.5), 16)} ${ms(p95, 12)} ${ms(warmTimes[warmTimes.length - 1]!, 12)}${note}`,
        );
      }
      console.log('');
      console.log(
        over === 0
          ? `every request under ${BUDGET_MS} ms: each page and chart image at the 95th percentile warm, and on its first view (cold cache)`
          : `${over} figure(s) over ${BUDGET_MS} ms (a page or chart image at the 95th percentile warm, or a first view)`,
      );
    } finally {
      await revokeApiKey(db, key.id, new Date());
    }
  } finally {
    await database.close();
  }
}

await main();
