/**
 * The generated bench base shared by bench:pipeline and bench:workers: 1M contacts (70 % with an
 * explicit profiling consent), ~10M purchases with a planted signal, 50 products, on
 * PostgreSQL, generated in SQL once and reused while it has the expected size.
 *
 *   BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/cible_bench_pipeline)
 *   BENCH_CONTACTS (default 1000000)
 */
import pg from 'pg';

export const url = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/cible_bench_pipeline';
export const contacts = Number(process.env.BENCH_CONTACTS ?? 1_000_000);
const fresh = process.argv.includes('--fresh');
const PRODUCTS = 50;
const MEAN_PURCHASES = 10.5;
export const AS_OF = new Date('2025-10-01T00:00:00Z');

export async function ensureDatabase(): Promise<void> {
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
export async function generateBase(client: pg.Client): Promise<void> {
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
  console.log(
    `generated ${contacts} contacts, ${counts.rows[0]?.purchases} purchases, ${PRODUCTS} products in ${((performance.now() - began) / 1000).toFixed(0)} s`,
  );
}
