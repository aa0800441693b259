/**
 * npm run bench:ui — server time of the model review pages (issue 6) against the base scored
 * by `npm run bench:pipeline` on PostgreSQL (1M contacts, 50 products: run that first).
 *
 * The app is built in-process (no port, no HTTP client in the measure) with a new data
 * scientist key. Each page kind is requested once cold (its charts not drawn yet), then
 * WARMUP times, then ROUNDS times; the median and 95th percentile of the page's own
 * Server-Timing (`total`) are printed, with the cold figure beside them. The key is revoked
 * at the end; the person view writes its audit line each time, as in production.
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
      SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = 'score_sets' AND column_name = 'feature_profile'`.execute(db);
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
      .select(['m.target_key', 's.id as set_id', sql<boolean>`v.metrics -> 'evaluation' ? 'curves'`.as('has_curves'), sql<boolean>`s.feature_profile IS NOT NULL`.as('has_profile')])
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
      const person = await db.selectFrom('scores').select('contact_id').where('score_set_id', '=', picked[0]!.set_id).orderBy('rank').limit(1).executeTakeFirstOrThrow();
      const pages: Array<[string, string]> = [
        ['overview', '/ui/models'],
        ...picked.map((row, i): [string, string] => [`model page ${i + 1} (${row.target_key})`, `/ui/models/${encodeURIComponent(row.target_key)}`]),
        ['person view', `/ui/people/${person.contact_id}`],
        ['runs', '/ui/runs'],
        [`feature profile (${picked[0]!.target_key})`, `/ui/models/${encodeURIComponent(picked[0]!.target_key)}/features`],
      ];
      const headers = { cookie: `cible_ui_key=${key.key}` };
      console.log(`review pages on ${url}: ${models.n} models, ${champions.length} scored products; ${ROUNDS} requests per page after ${WARMUP} warm-up requests`);
      console.log('page                                   status   cold ms  median ms    p95 ms   max ms');
      let over = 0;
      for (const [name, path] of pages) {
        const first = await app.request(path, { headers });
        await first.arrayBuffer();
        if (first.status !== 200) throw new Error(`${path} answered ${first.status}`);
        const cold = serverTime(first);
        for (let i = 0; i < WARMUP; i++) await (await app.request(path, { headers })).arrayBuffer();
        const times: number[] = [];
        for (let i = 0; i < ROUNDS; i++) {
          const response = await app.request(path, { headers });
          await response.arrayBuffer();
          times.push(serverTime(response));
        }
        times.sort((a, b) => a - b);
        const p95 = percentile(times, 0.95);
        if (p95 > BUDGET_MS) over++;
        console.log(
          `${name.slice(0, 38).padEnd(38)} ${String(first.status).padStart(6)} ${cold.toFixed(1).padStart(9)} ${percentile(times, 0.5).toFixed(1).padStart(10)} ${p95.toFixed(1).padStart(9)} ${times[times.length - 1]!.toFixed(1).padStart(8)}`,
        );
      }
      console.log(over === 0 ? `every page under ${BUDGET_MS} ms at the 95th percentile` : `${over} page(s) over ${BUDGET_MS} ms at the 95th percentile`);
    } finally {
      await revokeApiKey(db, key.id, new Date());
    }
  } finally {
    await database.close();
  }
}

await main();
