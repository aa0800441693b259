/**
 * npm run bench:api — target lists served over HTTP by `cible serve` on 127.0.0.1, against the
 * 1M-contact base scored by `npm run bench:pipeline` on PostgreSQL (run that first), with the
 * production contact-pressure cap (CIBLE_PRESSURE_MAX_LISTS unset: 3 lists per person per 7 days),
 * each figure printed beside an anchor measured in the same run and the ratio:
 *
 *   anchor  the bare SQL that selects what a top-1000 email list selects: the product's live
 *           scores joined to the email consents for direct marketing that count now
 *           (consent_state, the rule of stateCountsAt), by rank, LIMIT 1000; no walk, no manifest,
 *           no pressure. Median of BENCH_RUNS runs (at least 30) through pg from node, rotating
 *           over the products like the lists do.
 *   1. one `top=1000` JSON list at a time, rotating over the products (BENCH_LISTS, default 200):
 *      median and p99, from the request to the last byte. Targets: median ≤ 20 ms, ≤ 3× anchor.
 *   2. closed loop: 16 connections (autocannon), each asking for the next list as soon as the
 *      previous one ends, for BENCH_SECONDS (default 20): lists per second (2xx only). Target
 *      ≥ 100 lists/s; anchor: the bare SQL on 16 pg connections in the same closed loop.
 *      Meanwhile /ready and an authenticated cheap request (GET /v1/models) are timed one at a
 *      time, beside the same probes on the idle server: health and auth must not queue behind
 *      list work (target, ours: p99 ≤ 50 ms under load).
 *   3. open loop: lists launched at a fixed 50 per second for BENCH_SECONDS, whatever the earlier
 *      ones do, each latency measured from its scheduled send time to its last byte, so a server
 *      that falls behind shows it (no coordinated omission). Target p99 ≤ 100 ms.
 *   4. one 100,000-member CSV: time to its last byte (target ≤ 1.5 s), beside the bare SQL
 *      fetching the same number of ranked, consented rows with their email address.
 *   5. one 700,000-member CSV (the server's CIBLE_TARGETS_MAX_MEMBERS is raised to allow it;
 *      the base has fewer reachable people, so the list is as long as they are): time to last
 *      byte and the growth of the server process's resident memory during the request (VmRSS
 *      sampled every 20 ms by a worker thread from before the request to the last byte).
 *      Target growth < 100 MB.
 *
 * Every list is a real one (consent checked now, recorded with its manifest, counted towards
 * contact pressure), so successive lists reach deeper into the ranking as the best people reach
 * the cap: that is what production serves. Pressure is reset (TRUNCATE of target_exports CASCADE
 * and of whichever of target_export_members and contact_pressure exist) before the anchor and
 * phases 2, 3, 4 and 5, once the server's database sessions are idle (lists a load phase left
 * queued, their clients gone, would otherwise be recorded after the reset; read in
 * pg_stat_activity, whatever the schema). The bench
 * talks to the server over HTTP only; SQL serves the anchor, the reset and the one-time setup
 * (email addresses and email consents for the base, an API key).
 *
 * A phase whose requests fail (non-2xx, network error, 120 s timeout) counts and reports them;
 * its figures are of the successful requests and its verdict is NOT met when any failed.
 *
 *   BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/cible_bench_pipeline)
 *   BENCH_SECONDS (default 20)  BENCH_RUNS (default 50)  BENCH_LISTS (default 200)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import autocannon from 'autocannon';
import pg from 'pg';
import { buildState } from '../../scripts/build-state.js';
import { createApiKey } from '../../src/auth/api-key.repository.ts';
import { loadConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/engine.ts';
import { freePort } from '../helpers/cible-serve.ts';

const url = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/cible_bench_pipeline';
const seconds = Number(process.env.BENCH_SECONDS ?? 20);
const anchorRuns = Math.max(30, Number(process.env.BENCH_RUNS ?? 50));
const sequentialLists = Number(process.env.BENCH_LISTS ?? 200);
const CHANNEL = 'email';
const TOP = 1000;
const CONNECTIONS = 16;
const OPEN_LOOP_RATE = 50;
const SMALL_CSV = 100_000;
const LARGE_CSV = 700_000;
const REQUEST_TIMEOUT_MS = 120_000;

const TARGETS = {
  listMedianMs: 20,
  listAnchorRatio: 3,
  listsPerSecond: 100,
  openLoopP99Ms: 100,
  probeP99Ms: 50,
  smallCsvSeconds: 1.5,
  largeCsvRssGrowthMb: 100,
};

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

/**
 * Forgets every list served, on the schema before and after per-contact pressure (issue 18): the
 * members table of the old schema has no foreign key to target_exports, so CASCADE alone leaves it.
 */
async function resetPressure(client: pg.Client): Promise<void> {
  const { rows } = await client.query<{ name: string }>(`
    SELECT name FROM unnest(ARRAY['target_exports', 'target_export_members']) AS name
    WHERE to_regclass(name) IS NOT NULL`);
  await client.query(`TRUNCATE ${rows.map((row) => row.name).join(', ')} CASCADE`);
  // every contact keeps their pressure row (a list only locks rows): empty it
  if ((await client.query(`SELECT to_regclass('contact_pressure') IS NOT NULL AS present`)).rows[0].present) {
    await client.query(`UPDATE contact_pressure SET sends = '{}' WHERE cardinality(sends) > 0`);
  }
}

/**
 * The top `limit` of a product's live scores whose email consent for direct marketing counts now;
 * `withEmail` adds the address, as a CSV list carries it. The live score set is found by a
 * sub-query, so PostgreSQL prunes the score partitions at run time.
 */
function anchorSql(withEmail: boolean): string {
  return `
    SELECT s.contact_id, s.score, s.rank${withEmail ? ', d.email' : ''} FROM scores s
    JOIN consent_state c ON c.contact_id = s.contact_id AND c.purpose = 'direct_marketing' AND c.channel_key = $2
      AND c.counts AND (c.expires_at IS NULL OR c.expires_at > now())
    ${withEmail ? 'JOIN contact_personal_data d ON d.contact_id = s.contact_id AND d.email_hash IS NOT NULL' : ''}
    WHERE s.score_set_id = (
      SELECT ss.id FROM score_sets ss JOIN models m ON m.id = ss.model_id
      WHERE ss.status = 'live' AND m.target_kind = 'product' AND m.target_key = $1)
    ORDER BY s.rank LIMIT $3`;
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Nearest-rank percentile of the values (NaN when there are none). */
function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

interface Outcome {
  ok: boolean;
  status: number;
  /** the request's start to its last byte */
  ms: number;
  bytes: number;
  lines: number;
  body: string;
  failure?: string;
}

/**
 * One request read to its last byte without keeping the body (a 700,000-member CSV stays out of
 * this process's memory): its status, duration, size and line count. Never throws.
 */
async function request(base: string, path: string, headers: Record<string, string>, keepBody = false): Promise<Outcome> {
  const began = performance.now();
  let status = 0;
  let bytes = 0;
  let lines = 0;
  let body = '';
  try {
    const response = await fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    status = response.status;
    const decoder = new TextDecoder();
    for await (const chunk of response.body ?? []) {
      bytes += chunk.byteLength;
      for (let i = 0; i < chunk.length; i++) if (chunk[i] === 10) lines++;
      if (keepBody || !response.ok) body += decoder.decode(chunk, { stream: true });
    }
    const ms = performance.now() - began;
    return { ok: response.ok, status, ms, bytes, lines, body, ...(response.ok ? {} : { failure: `${status} ${body.slice(0, 200)}` }) };
  } catch (error) {
    return {
      ok: false,
      status,
      ms: performance.now() - began,
      bytes,
      lines,
      body,
      failure: `${status || 'no response'}: ${String(error)}`,
    };
  }
}

/** Counts failures per phase; prints them, with the first one, so that no phase fails silently. */
class Failures {
  readonly byPhase = new Map<string, { count: number; first: string }>();
  note(phase: string, outcome: Pick<Outcome, 'ok' | 'failure'>): void {
    if (outcome.ok) return;
    const seen = this.byPhase.get(phase);
    if (seen) seen.count++;
    else this.byPhase.set(phase, { count: 1, first: outcome.failure ?? 'failed' });
  }
  count(phase: string): number {
    return this.byPhase.get(phase)?.count ?? 0;
  }
  report(phase: string): void {
    const seen = this.byPhase.get(phase);
    if (seen) console.log(`  ${seen.count} FAILED request(s) in this phase; the first: ${seen.first}`);
  }
}

const ms = (value: number) => (Number.isFinite(value) ? `${value.toFixed(1)} ms` : 'n/a');

/** A figure beside its anchor and their ratio, in the style of bench:cli. */
function line(label: string, value: string, anchorLabel: string, anchor: string, ratio: number): void {
  console.log(
    `  ${label.padEnd(44)} ${value.padStart(12)}   ${anchorLabel.padEnd(40)} ${anchor.padStart(12)}   ratio ${ratio.toFixed(1)}×`,
  );
}

const verdicts: string[] = [];
function verdict(label: string, met: boolean, detail: string): void {
  verdicts.push(`${label.padEnd(58)} ${detail.padEnd(34)} ${met ? 'met' : 'NOT met'}`);
}

/** The peak resident memory of a process between start() and stop(), sampled by a worker thread so a busy event loop here does not skip samples. */
function rssSampler(pid: number, everyMs: number) {
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const { readFileSync } = require('node:fs');
     const rss = () => Number(/VmRSS:\\s+(\\d+) kB/.exec(readFileSync('/proc/' + workerData.pid + '/status', 'utf8'))?.[1] ?? 0);
     const first = rss(); let peak = first; let samples = 1; let last = Date.now(); let widestGap = 0;
     const timer = setInterval(() => { const now = Date.now(); widestGap = Math.max(widestGap, now - last); last = now; peak = Math.max(peak, rss()); samples++; }, workerData.everyMs);
     parentPort.postMessage('started');
     parentPort.on('message', () => { clearInterval(timer); peak = Math.max(peak, rss()); parentPort.postMessage({ first, peak, samples: samples + 1, widestGap }); });`,
    { eval: true, workerData: { pid, everyMs } },
  );
  const started = new Promise((resolve) => worker.once('message', resolve));
  return {
    started,
    async stop(): Promise<{ baselineMb: number; peakMb: number; samples: number; widestGapMs: number }> {
      const result = new Promise<{ first: number; peak: number; samples: number; widestGap: number }>((resolve) =>
        worker.once('message', resolve),
      );
      worker.postMessage('stop');
      const { first, peak, samples, widestGap } = await result;
      await worker.terminate();
      return { baselineMb: first / 1024, peakMb: peak / 1024, samples, widestGapMs: widestGap };
    },
  };
}

async function main(): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect().catch((error: { code?: string }) => {
    if (error.code !== '3D000') throw error;
    console.error(`the database of ${url} does not exist: run \`npm run bench:pipeline\` first (it builds and scores the 1M-contact base)`);
    process.exit(1);
  });
  await client.query("SET lock_timeout = '120s'");
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
  await resetPressure(client);
  const scored = live.rows.reduce((sum, row) => sum + row.rows, 0);
  console.log(
    `${live.rows.length} products with live scores, ${scored.toLocaleString('en-GB')} scores (${Math.round(scored / live.rows.length).toLocaleString('en-GB')} people each); ` +
      `server from ${buildState() === 'current' ? 'dist/' : 'the sources through tsx (dist/ is not current)'}; load average ${loadavg()[0]!.toFixed(1)}`,
  );

  const database = await openDatabase(loadConfig({ DATABASE_URL: url }).database);
  const key = (await createApiKey(database.db, 'bench marketer', 'marketer')).key;
  await database.close();

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: url,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    // the per-key request rate limit, not the contact-pressure cap, which stays the production one
    CIBLE_API_RATE_LIMIT: '100000000',
    CIBLE_TARGETS_MAX_MEMBERS: String(LARGE_CSV),
  };
  delete env.CIBLE_PRESSURE_MAX_LISTS;
  delete env.CIBLE_PRESSURE_WINDOW_DAYS;
  // the server's own error log goes to a file: the bench prints how many lines it holds and the first
  const serverLog = join(mkdtempSync(join(tmpdir(), 'cible-bench-api-')), 'server.log');
  const server = spawn('node', ['bin/cible.js', 'serve'], { env, stdio: ['ignore', 'ignore', openSync(serverLog, 'w')] });
  const failures = new Failures();
  try {
    await waitReady(base, Date.now() + 240_000);
    const headers = { authorization: `Bearer ${key}` };
    const skus = live.rows.map((row) => row.sku);
    let next = 0;
    const nextSku = () => skus[next++ % skus.length]!;
    const listPath = (sku: string, top: number, format = 'json') =>
      `/v1/products/${encodeURIComponent(sku)}/targets?channel=${CHANNEL}&top=${top}${format === 'json' ? '' : `&format=${format}`}`;

    /**
     * Waits until the server has finished the lists a load phase left queued (their clients gone,
     * their work not): no database session but ours busy for three polls in a row. Otherwise they
     * would record lists, and use pressure, after the next reset.
     */
    const drain = async () => {
      const deadline = Date.now() + 300_000;
      let quietPolls = 0;
      while (quietPolls < 3 && Date.now() < deadline) {
        const { rows } = await client.query<{ busy: number }>(`
          SELECT count(*)::int AS busy FROM pg_stat_activity
          WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend' AND state <> 'idle'`);
        quietPolls = rows[0]!.busy === 0 ? quietPolls + 1 : 0;
        await sleep(250);
      }
      if (quietPolls < 3) console.log('  (the server was still working 300 s after the phase ended)');
    };

    // warm-up: connections, plans, caches; unmeasured
    for (let i = 0; i < 10; i++) failures.note('warm-up', await request(base, listPath(nextSku(), TOP), headers));
    await client.query(anchorSql(false), [skus[0], CHANNEL, TOP]);
    failures.report('warm-up');
    await resetPressure(client);

    // anchor
    const anchor: number[] = [];
    for (let run = 0; run < anchorRuns; run++) {
      const began = performance.now();
      const { rowCount } = await client.query(anchorSql(false), [nextSku(), CHANNEL, TOP]);
      anchor.push(performance.now() - began);
      if (rowCount !== TOP) console.log(`  anchor returned ${rowCount} rows, not ${TOP}`);
    }
    const anchorMedian = percentile(anchor, 50);
    console.log(`\nanchor: bare SQL top-${TOP} (live scores ⋈ email consent that counts), ${anchorRuns} runs through pg:`);
    console.log(`  median ${ms(anchorMedian)}, p99 ${ms(percentile(anchor, 99))}`);

    // 1. one list at a time
    const single: number[] = [];
    const memberCounts: number[] = [];
    for (let i = 0; i < sequentialLists; i++) {
      const outcome = await request(base, listPath(nextSku(), TOP), headers, true);
      failures.note('sequential', outcome);
      if (!outcome.ok) continue;
      single.push(outcome.ms);
      memberCounts.push((JSON.parse(outcome.body) as { members: unknown[] }).members.length);
    }
    const singleMedian = percentile(single, 50);
    console.log(
      `\n1. one top=${TOP} JSON list at a time, ${sequentialLists} lists rotating over ${skus.length} products (pressure cap 3 per 7 days):`,
    );
    line('median', ms(singleMedian), 'anchor median', ms(anchorMedian), singleMedian / anchorMedian);
    line('p99', ms(percentile(single, 99)), 'anchor p99', ms(percentile(anchor, 99)), percentile(single, 99) / percentile(anchor, 99));
    console.log(
      `  members per list: min ${Math.min(...memberCounts)}, median ${percentile(memberCounts, 50)} (a shorter list: the reachable people ran out under the cap)`,
    );
    failures.report('sequential');
    const sequentialClean = failures.count('sequential') === 0;
    verdict(
      `one list at a time: median ≤ ${TARGETS.listMedianMs} ms`,
      sequentialClean && singleMedian <= TARGETS.listMedianMs,
      ms(singleMedian),
    );
    verdict(
      `one list at a time: median ≤ ${TARGETS.listAnchorRatio}× anchor`,
      sequentialClean && singleMedian <= TARGETS.listAnchorRatio * anchorMedian,
      `${(singleMedian / anchorMedian).toFixed(1)}× (anchor ${ms(anchorMedian)})`,
    );

    // probes on the idle server, the anchor of the probes under load
    const probes = [
      { label: 'GET /ready', path: '/ready', headers: {} as Record<string, string> },
      { label: 'GET /v1/models (authenticated)', path: '/v1/models', headers },
    ];
    const idleProbe = probes.map(() => [] as number[]);
    for (let i = 0; i < 30; i++) {
      for (const [index, probe] of probes.entries()) {
        const outcome = await request(base, probe.path, probe.headers);
        failures.note('probes idle', outcome);
        if (outcome.ok) idleProbe[index]!.push(outcome.ms);
      }
    }

    // anchor of the closed loop: the bare SQL on as many connections
    const pool = new pg.Pool({ connectionString: url, max: CONNECTIONS });
    const anchorSeconds = Math.min(seconds, 10);
    let anchorQueries = 0;
    const anchorEnd = performance.now() + anchorSeconds * 1000;
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        while (performance.now() < anchorEnd) {
          await pool.query(anchorSql(false), [nextSku(), CHANNEL, TOP]);
          anchorQueries++;
        }
      }),
    );
    await pool.end();
    const anchorPerSecond = anchorQueries / anchorSeconds;

    // 2. closed loop, with the probes alongside
    await drain();
    await resetPressure(client);
    let loading = true;
    const loadedProbe = probes.map(() => [] as number[]);
    const probing = (async () => {
      await sleep(Math.min(1_000, seconds * 100));
      while (loading) {
        for (const [index, probe] of probes.entries()) {
          if (!loading) break;
          // a probe sent during the load counts however late it ends: a slow one is the finding
          const outcome = await request(base, probe.path, probe.headers);
          failures.note('probes under load', outcome);
          if (outcome.ok) loadedProbe[index]!.push(outcome.ms);
        }
        await sleep(100);
      }
    })();
    const result = await autocannon({
      url: base,
      connections: CONNECTIONS,
      duration: seconds,
      headers,
      timeout: REQUEST_TIMEOUT_MS / 1000,
      requests: [{ method: 'GET', setupRequest: (options) => ({ ...options, path: listPath(nextSku(), TOP) }) }],
    });
    loading = false;
    await probing;
    const listsPerSecond = result['2xx'] / result.duration;
    const closedFailures = result.non2xx + result.errors + result.timeouts;
    const l = result.latency;
    console.log(`\n2. closed loop: ${CONNECTIONS} connections, ${seconds} s (autocannon):`);
    line(
      'lists/s (2xx)',
      listsPerSecond.toFixed(1),
      `bare SQL/s on ${CONNECTIONS} pg connections`,
      anchorPerSecond.toFixed(1),
      listsPerSecond / anchorPerSecond,
    );
    console.log(
      `  ${result['2xx']} lists; latency p50 ${l.p50} ms, p99 ${l.p99} ms, max ${l.max} ms; ${(result.throughput.average / 1e6).toFixed(1)} MB/s`,
    );
    if (result['2xx'] === 0 && closedFailures === 0)
      console.log('  no list ended within the phase: every connection was still waiting for its first');
    if (closedFailures > 0)
      console.log(`  ${closedFailures} FAILED request(s): ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`);
    verdict(
      `closed loop ${CONNECTIONS} connections: ≥ ${TARGETS.listsPerSecond} lists/s`,
      closedFailures === 0 && listsPerSecond >= TARGETS.listsPerSecond,
      `${listsPerSecond.toFixed(1)} lists/s`,
    );
    console.log('  while it ran, one probe at a time (beside the same probe on the idle server):');
    for (const [index, probe] of probes.entries()) {
      const loaded = loadedProbe[index]!;
      const idle = idleProbe[index]!;
      line(
        `${probe.label} p50 (${loaded.length} probes)`,
        ms(percentile(loaded, 50)),
        'idle p50',
        ms(percentile(idle, 50)),
        percentile(loaded, 50) / percentile(idle, 50),
      );
      line(
        `${probe.label} p99`,
        ms(percentile(loaded, 99)),
        'idle p99',
        ms(percentile(idle, 99)),
        percentile(loaded, 99) / percentile(idle, 99),
      );
      verdict(
        `${probe.label} under list load: p99 ≤ ${TARGETS.probeP99Ms} ms`,
        failures.count('probes under load') === 0 && percentile(loaded, 99) <= TARGETS.probeP99Ms,
        ms(percentile(loaded, 99)),
      );
    }
    failures.report('probes idle');
    failures.report('probes under load');
    await drain();

    // 3. open loop
    await drain();
    await resetPressure(client);
    const scheduled = Math.round(OPEN_LOOP_RATE * seconds);
    const interval = 1000 / OPEN_LOOP_RATE;
    const start = performance.now() + 100;
    const sent: Array<Promise<number | null>> = [];
    let lateLaunches = 0;
    for (let i = 0; i < scheduled; i++) {
      const due = start + i * interval;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      else if (wait < -interval) lateLaunches++;
      sent.push(
        request(base, listPath(nextSku(), TOP), headers).then((outcome) => {
          failures.note('open loop', outcome);
          return outcome.ok ? performance.now() - due : null;
        }),
      );
    }
    const openLatencies = (await Promise.all(sent)).filter((value): value is number => value !== null);
    const openP99 = percentile(openLatencies, 99);
    console.log(`\n3. open loop: ${OPEN_LOOP_RATE} lists/s on a fixed schedule for ${seconds} s (latency from the scheduled send):`);
    line('p50', ms(percentile(openLatencies, 50)), 'anchor median', ms(anchorMedian), percentile(openLatencies, 50) / anchorMedian);
    line('p99', ms(openP99), 'anchor p99', ms(percentile(anchor, 99)), openP99 / percentile(anchor, 99));
    console.log(`  ${openLatencies.length} of ${scheduled} lists served, max ${ms(Math.max(...openLatencies))}`);
    if (lateLaunches > 0)
      console.log(`  ${lateLaunches} launches left more than one interval late by this process (counted in their latency)`);
    failures.report('open loop');
    verdict(
      `open loop ${OPEN_LOOP_RATE} lists/s: p99 ≤ ${TARGETS.openLoopP99Ms} ms`,
      failures.count('open loop') === 0 && openP99 <= TARGETS.openLoopP99Ms,
      ms(openP99),
    );
    await drain();

    // 4 and 5. large CSV lists, each on a reset pressure, beside the bare SQL of as many rows
    for (const size of [SMALL_CSV, LARGE_CSV]) {
      const sku = skus[0]!;
      const anchorTimes: number[] = [];
      let anchorRows = 0;
      for (let run = 0; run < 3; run++) {
        const began = performance.now();
        anchorRows = (await client.query(anchorSql(true), [sku, CHANNEL, size])).rowCount ?? 0;
        anchorTimes.push(performance.now() - began);
      }
      await drain();
      await resetPressure(client);
      const sampler = size === LARGE_CSV ? rssSampler(server.pid!, 20) : null;
      await sampler?.started;
      const outcome = await request(base, listPath(sku, size, 'csv'), headers);
      const memory = await sampler?.stop();
      const phase = `csv ${size}`;
      failures.note(phase, outcome);
      const anchorCsv = percentile(anchorTimes, 50);
      console.log(
        `\n${size === SMALL_CSV ? 4 : 5}. one ${size.toLocaleString('en-GB')}-member CSV: status ${outcome.status}, ${Math.max(0, outcome.lines - 1).toLocaleString('en-GB')} members, ${(outcome.bytes / 1e6).toFixed(1)} MB`,
      );
      line(
        'last byte',
        `${(outcome.ms / 1000).toFixed(2)} s`,
        `bare SQL, ${anchorRows.toLocaleString('en-GB')} rows with email`,
        `${(anchorCsv / 1000).toFixed(2)} s`,
        outcome.ms / anchorCsv,
      );
      failures.report(phase);
      if (size === SMALL_CSV) {
        verdict(
          `${size.toLocaleString('en-GB')}-member CSV: last byte ≤ ${TARGETS.smallCsvSeconds} s`,
          outcome.ok && outcome.ms <= TARGETS.smallCsvSeconds * 1000,
          `${(outcome.ms / 1000).toFixed(2)} s`,
        );
      }
      if (memory) {
        const growth = memory.peakMb - memory.baselineMb;
        console.log(
          `  server RSS ${memory.baselineMb.toFixed(0)} MB before, peak ${memory.peakMb.toFixed(0)} MB: growth ${growth.toFixed(0)} MB (${memory.samples} samples, widest gap ${memory.widestGapMs} ms)`,
        );
        verdict(
          `${size.toLocaleString('en-GB')}-member CSV: server RSS growth < ${TARGETS.largeCsvRssGrowthMb} MB`,
          outcome.ok && growth < TARGETS.largeCsvRssGrowthMb,
          `${growth.toFixed(0)} MB (last byte ${(outcome.ms / 1000).toFixed(2)} s)`,
        );
      }
    }

    const logged = readFileSync(serverLog, 'utf8').split('\n').filter(Boolean);
    if (logged.length > 0) {
      const codes = new Map<string, number>();
      for (const entry of logged) {
        const code = /"code":"([^"]+)"/.exec(entry)?.[1] ?? 'other';
        codes.set(code, (codes.get(code) ?? 0) + 1);
      }
      console.log(
        `\nthe server logged ${logged.length} line(s) at warn or above (${[...codes].map(([code, n]) => `${code}: ${n}`).join(', ')}), in ${serverLog}; the first: ${logged[0]!.slice(0, 300)}`,
      );
    }
    console.log('\nverdicts:');
    for (const text of verdicts) console.log(`  ${text}`);
  } finally {
    server.kill('SIGTERM');
    await client.end();
  }
}

await main();
