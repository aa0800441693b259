/**
 * npm run bench:pipeline — the whole propensity pipeline on a generated base of 1M contacts,
 * ~10M purchases and 50 products, on PostgreSQL. Prints seconds and rows per stage and the
 * peak RSS. The base is generated in SQL once and reused while it has the expected size
 * (pass --fresh to rebuild it).
 *
 *   BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/cible_bench_pipeline)
 *   BENCH_CONTACTS (default 1000000)
 */
import pg from 'pg';
import { loadConfig } from '../../src/config.ts';
import { createContext } from '../../src/context.ts';
import { fixedClock } from '../../src/clock.ts';
import { DEFAULT_PIPELINE_OPTIONS, runPipeline } from '../../pipelines/run-pipeline.ts';
import { terminalProgress, logProgress } from '../../pipelines/progress.ts';
import { createLogger } from '../../src/logger.ts';

const url = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/cible_bench_pipeline';
const contacts = Number(process.env.BENCH_CONTACTS ?? 1_000_000);
const fresh = process.argv.includes('--fresh');
const PRODUCTS = 50;
const MEAN_PURCHASES = 10.5;
const AS_OF = new Date('2025-10-01T00:00:00Z');

async function ensureDatabase(): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: url.replace(/\/[^/]*$/, '/postgres') });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (fresh && exists.rowCount) await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
    if (fresh || !exists.rowCount) await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
}

/** Contacts, 70% with an explicit profiling consent, and purchases with a planted signal, all in SQL. */
async function generateBase(client: pg.Client): Promise<void> {
  const present = await client.query<{ n: string }>('SELECT count(*) AS n FROM contacts');
  if (Number(present.rows[0]?.n) === contacts) {
    console.log(`reusing the generated base (${contacts} contacts); --fresh rebuilds it`);
    return;
  }
  const began = performance.now();
  await client.query('TRUNCATE purchases, consent_events, consent_state, contacts, products RESTART IDENTITY CASCADE');
  await client.query('SELECT setseed(0.42)');
  await client.query(`
    INSERT INTO products (sku, name, category)
    SELECT 'BENCH-' || lpad(i::text, 3, '0'), 'Bench product ' || i, 'category-' || (i % 10) FROM generate_series(1, ${PRODUCTS}) i`);
  await client.query(`
    INSERT INTO contacts (external_id, created_at) SELECT 'bench-' || i, '2024-01-01' FROM generate_series(1, ${contacts}) i`);
  await client.query(`
    INSERT INTO consent_events (contact_id, purpose, channel, status, captured_at, source, method, evidence_ref)
    SELECT id, 'profiling', NULL, 'granted', '2024-01-01', 'bench:web-form', 'explicit_checkbox', 'bench-' || id
    FROM contacts WHERE id % 10 < 7`);
  // each person: a purchase count (exponential), a favourite category, and a lifetime after which they stop
  await client.query(`
    WITH catalog AS (SELECT array_agg(id ORDER BY sku) AS ids FROM products),
    people AS (
      SELECT id, floor(-ln(1 - random()) * ${MEAN_PURCHASES})::int AS n, (id % 10) AS favourite, 0.15 + 0.85 * random() AS life
      FROM contacts
    )
    INSERT INTO purchases (order_id, contact_id, product_id, quantity, unit_price, purchased_at)
    SELECT 'B' || p.id || '-' || k, p.id,
      catalog.ids[1 + CASE WHEN random() < 0.7 THEN (p.favourite + 10 * floor(random() * 5)::int) ELSE floor(random() * ${PRODUCTS})::int END],
      1 + floor(random() * 3)::int, round((5 + random() * 95)::numeric, 2),
      timestamptz '2024-01-01' + (random() * p.life) * interval '730 days'
    FROM people p CROSS JOIN catalog, generate_series(1, p.n) k`);
  await client.query('ANALYZE');
  const counts = await client.query<{ purchases: string }>('SELECT count(*) AS purchases FROM purchases');
  console.log(`generated ${contacts} contacts, ${counts.rows[0]?.purchases} purchases, ${PRODUCTS} products in ${((performance.now() - began) / 1000).toFixed(0)} s`);
}

async function main(): Promise<void> {
  await ensureDatabase();
  const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
  const context = await createContext(loadConfig({ ...process.env, DATABASE_URL: url }), { migrate: true, logger, clock: fixedClock(new Date()) });
  try {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await generateBase(client);
      // a previous bench run's scores and snapshots would only slow this one down
      await client.query('TRUNCATE profiling_snapshots');
    } finally {
      await client.end();
    }
    const report = await runPipeline(
      context,
      { ...DEFAULT_PIPELINE_OPTIONS, kind: 'pipeline', trigger: 'bench', asOf: AS_OF, horizonDays: 30, backend: context.config.tfBackend },
      process.stdout.isTTY ? terminalProgress(process.stdout) : logProgress(logger),
    );
    const total = report.stages.reduce((sum, stage) => sum + stage.seconds, 0);
    console.log(`\npipeline on ${contacts} contacts, backend ${report.backend}, population ${report.population}`);
    console.log('stage                    seconds        rows     rows/s');
    for (const stage of report.stages) {
      const rate = stage.rows > 0 ? Math.round(stage.rows / Math.max(stage.seconds, 1e-3)) : 0;
      console.log(`${stage.stage.padEnd(22)} ${stage.seconds.toFixed(1).padStart(9)} ${String(stage.rows).padStart(11)} ${String(rate).padStart(10)}`);
    }
    const champions = report.targets.filter((target) => target.status === 'champion').length;
    console.log(`total ${total.toFixed(1)} s (${(total / 60).toFixed(1)} min); ${champions} champions of ${report.targets.length} targets`);
    console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
  } finally {
    await context.stop();
  }
}

await main();
