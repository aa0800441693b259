/**
 * npm run bench:api — target lists served over HTTP by `cible serve` on 127.0.0.1, against
 * the 1M-contact base scored by `npm run bench:pipeline` on PostgreSQL (run that first).
 *
 *   1. `top=1000` JSON lists under 100 concurrent connections for BENCH_SECONDS (default 20),
 *      rotating over the scored products: latency percentiles and lists per second;
 *   2. one 100,000-member CSV list: time to its last byte.
 *
 * Every request is a real list: consent checked now, members and manifest recorded. The
 * contact-pressure cap is lifted (CIBLE_PRESSURE_MAX_LISTS) because a bench asks for
 * thousands of lists in seconds, which the default cap of 3 per week would rightly refuse.
 *
 *   BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/cible_bench_pipeline)
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import pg from 'pg';
import { createApiKey } from '../../src/auth/api-key.repository.ts';
import { loadConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/engine.ts';
import { freePort } from '../helpers/cible-serve.ts';

const url = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/cible_bench_pipeline';
const seconds = Number(process.env.BENCH_SECONDS ?? 20);
const CONNECTIONS = 100;
const CSV_MEMBERS = 100_000;

/** The bench base has no contact details: give everyone an example.com address and most an email consent, once. */
async function ensureReachableBase(client: pg.Client): Promise<void> {
  const { rows } = await client.query<{ people: number; details: number }>(
    'SELECT (SELECT count(*)::int FROM contacts) AS people, (SELECT count(*)::int FROM contact_personal_data) AS details',
  );
  const { people, details } = rows[0]!;
  if (details === people) return;
  const began = performance.now();
  await client.query('BEGIN');
  await client.query('DELETE FROM contact_personal_data');
  await client.query(`
    INSERT INTO contact_personal_data (contact_id, email, email_hash, country)
    SELECT id, 'bench-' || id || '@example.com', encode(sha256(convert_to('bench-' || id || '@example.com', 'UTF8')), 'hex'), 'FR' FROM contacts`);
  await client.query(`
    INSERT INTO consent_events (contact_id, purpose, channel, status, captured_at, source, method, evidence_ref)
    SELECT id, 'direct_marketing', 'email', 'granted', '2024-01-01', 'bench:web-form', 'double_opt_in', 'bench-dm-' || id
    FROM contacts WHERE id % 10 <> 3`);
  await client.query('COMMIT');
  await client.query('ANALYZE');
  console.log(`gave ${people} contacts an email address and 90% an email consent in ${((performance.now() - began) / 1000).toFixed(0)} s`);
}

async function waitReady(base: string, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${base}/ready`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error('the server did not become ready in time');
}

function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

async function main(): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect().catch((error: { code?: string }) => {
    if (error.code !== '3D000') throw error;
    console.error(`the database of ${url} does not exist: run \`npm run bench:pipeline\` first (it builds and scores the 1M-contact base)`);
    process.exit(1);
  });
  const live = await client
    .query<{ sku: string; rows: number }>(`
      SELECT m.target_key AS sku, ss.row_count AS rows FROM score_sets ss JOIN models m ON m.id = ss.model_id
      WHERE ss.status = 'live' AND m.target_kind = 'product' ORDER BY m.target_key`)
    .catch(() => ({ rows: [] as Array<{ sku: string; rows: number }> }));
  if (live.rows.length === 0) {
    console.error(`no live product scores in ${url}: run \`npm run bench:pipeline\` first`);
    process.exit(1);
  }
  await ensureReachableBase(client);
  await client.query('TRUNCATE target_export_members, target_exports');
  await client.end();
  const scored = live.rows.reduce((sum, row) => sum + row.rows, 0);
  console.log(
    `${live.rows.length} products with live scores, ${scored.toLocaleString('en-GB')} scores (${Math.round(scored / live.rows.length).toLocaleString('en-GB')} people each)`,
  );

  const database = await openDatabase(loadConfig({ DATABASE_URL: url }).database);
  const key = (await createApiKey(database.db, 'bench marketer', 'marketer')).key;
  await database.close();

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = spawn('node', ['bin/cible.js', 'serve'], {
    env: {
      ...process.env,
      DATABASE_URL: url,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      CIBLE_API_RATE_LIMIT: '100000000',
      CIBLE_PRESSURE_MAX_LISTS: '1000000',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    await waitReady(base, Date.now() + 60_000);
    const headers = { authorization: `Bearer ${key}` };
    const skus = live.rows.map((row) => row.sku);
    let next = 0;
    const listPath = () => `/v1/products/${encodeURIComponent(skus[next++ % skus.length]!)}/targets?channel=email&top=1000`;

    for (let i = 0; i < 20; i++) {
      const warm = await fetch(`${base}${listPath()}`, { headers });
      if (!warm.ok) throw new Error(`warm-up request failed: ${warm.status} ${await warm.text()}`);
      await warm.arrayBuffer();
    }

    const result = await autocannon({
      url: base,
      connections: CONNECTIONS,
      duration: seconds,
      headers,
      // a list waits its turn rather than fail: the latencies are the real ones, however long
      timeout: 120,
      requests: [{ method: 'GET', setupRequest: (request) => ({ ...request, path: listPath() }) }],
    });
    // lists still queued when autocannon stopped would delay the measures below
    for (;;) {
      const began = performance.now();
      await (await fetch(`${base}/v1/products/${encodeURIComponent(skus[0]!)}/targets?channel=email&top=1`, { headers })).arrayBuffer();
      if (performance.now() - began < 1_000) break;
    }
    const l = result.latency;
    console.log(`\ntop=1000 JSON lists, ${CONNECTIONS} concurrent connections, ${seconds} s (autocannon):`);
    console.log(
      `  ${result.requests.total} lists, ${result.requests.average.toFixed(1)} lists/s, ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`,
    );
    console.log(`  latency ms: p50 ${l.p50}  p90 ${l.p90}  p99 ${l.p99}  max ${l.max}  (target p99 <= 50)`);
    console.log(`  ${(result.throughput.average / 1e6).toFixed(1)} MB/s of JSON`);

    // one list alone, for its own latency without queueing
    const single: number[] = [];
    for (let i = 0; i < 20; i++) {
      const began = performance.now();
      const response = await fetch(`${base}${listPath()}`, { headers });
      await response.arrayBuffer();
      single.push(performance.now() - began);
    }
    single.sort((a, b) => a - b);
    console.log(`  one request at a time (20): median ${single[10]!.toFixed(1)} ms, max ${single[19]!.toFixed(1)} ms`);

    const began = performance.now();
    const response = await fetch(
      `${base}/v1/products/${encodeURIComponent(skus[0]!)}/targets?channel=email&top=${CSV_MEMBERS}&format=csv`,
      { headers },
    );
    const firstByte = performance.now() - began;
    const text = await response.text();
    const total = performance.now() - began;
    const lines = text.split('\n').filter(Boolean).length - 1;
    console.log(
      `\n${CSV_MEMBERS.toLocaleString('en-GB')}-member CSV: status ${response.status}, ${lines.toLocaleString('en-GB')} members, ${(text.length / 1e6).toFixed(1)} MB`,
    );
    console.log(`  first byte ${(firstByte / 1000).toFixed(2)} s, last byte ${(total / 1000).toFixed(2)} s (target <= 2 s)`);
    console.log(`\nserver peak RSS ${peakRssMb(server.pid!).toFixed(0)} MB`);
  } finally {
    server.kill('SIGTERM');
  }
}

await main();
