/**
 * npm run bench:responsive — does the API stay responsive while a pipeline run trains and scores?
 *
 * Loads the demo base (`cible demo --no-serve`), starts `cible serve --with-worker`, and measures,
 * from outside the server, /health and a target list (top 100 by email): first with no run in
 * progress (the anchor), then while a run queued with POST /v1/pipeline/runs trains, scores, ranks
 * and publishes. Each request is classed by the run part that was running when it was sent (from
 * the run's parts in GET /v1/pipeline/runs/{id}). Prints p50 / p99 / max of each with its anchor
 * and the ratio; the targets are /health under 100 ms and a list at most 2× its anchor while the
 * run trains and scores.
 *
 *   BENCH_DATABASE_URL   PostgreSQL database to use (created if missing; default
 *                        postgres://postgres@127.0.0.1:5432/cible_bench_responsive)
 *   BENCH_EMBEDDED=1     the embedded database instead, in a fresh temporary CIBLE_DATA_DIR
 *   BENCH_DATA_DIR       the embedded database, in this CIBLE_DATA_DIR (a demo base already
 *                        loaded there is reused and kept; the run adds model versions to it)
 *   BENCH_CONTACTS       demo contacts (default 20000)
 *   BENCH_BASELINE_SECONDS  how long the anchor is measured (default 20)
 *   BENCH_CIBLE_ROOT     the checkout whose bin/cible.js is measured (default this one): point it
 *                        at an older checkout (own node_modules or a link) to measure before a change
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import { freePort } from '../helpers/cible-serve.ts';

const root = resolve(process.env.BENCH_CIBLE_ROOT ?? '.');
const givenDataDir = process.env.BENCH_DATA_DIR;
const embedded = process.env.BENCH_EMBEDDED === '1' || givenDataDir !== undefined;
const url = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/cible_bench_responsive';
const contacts = Number(process.env.BENCH_CONTACTS ?? 20_000);
const baselineSeconds = Number(process.env.BENCH_BASELINE_SECONDS ?? 20);
const HEALTH_EVERY_MS = 50;
const LIST_EVERY_MS = 250;

const dataDir = givenDataDir ?? (embedded ? mkdtempSync(join(tmpdir(), 'cible-bench-responsive-')) : null);
const env: NodeJS.ProcessEnv = {
  ...process.env,
  LOG_LEVEL: 'warn',
  // the same list asked for again and again: neither pressure nor the rate limit may change it
  CIBLE_PRESSURE_MAX_LISTS: '1000000000',
  CIBLE_API_RATE_LIMIT: '1000000',
  ...(embedded ? { CIBLE_DATA_DIR: dataDir as string, DATABASE_URL: '' } : { DATABASE_URL: url }),
};

async function ensureDatabase(): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: url.replace(/\/[^/]*$/, '/postgres') });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!exists.rowCount) await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
}

/** Runs `cible <args>` of the measured checkout to the end; its stdout. */
async function cible(...args: string[]): Promise<string> {
  const child = spawn(process.execPath, [join(root, 'bin/cible.js'), ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  const [code] = await once(child, 'exit');
  if (code !== 0) throw new Error(`cible ${args.join(' ')} exited with ${code}:\n${out}`);
  return out;
}

const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

interface Sample {
  at: number;
  ms: number;
  status: number;
}

/** One request, timed to its last byte; a request the server dropped counts with status 0 and the time until it was dropped. */
async function timed(target: string, headers: Record<string, string> = {}): Promise<Sample> {
  const at = Date.now();
  const began = performance.now();
  try {
    const response = await fetch(target, { headers });
    await response.arrayBuffer();
    return { at, ms: performance.now() - began, status: response.status };
  } catch {
    return { at, ms: performance.now() - began, status: 0 };
  }
}

function quantile(sorted: number[], q: number): number {
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const lower = sorted[below] ?? 0;
  const upper = sorted[Math.min(below + 1, sorted.length - 1)] ?? lower;
  return lower + (upper - lower) * (position - below);
}

interface Figures {
  n: number;
  dropped: number;
  p50: number;
  p99: number;
  max: number;
}

function figures(samples: Sample[]): Figures | null {
  if (samples.length === 0) return null;
  const sorted = samples.map((sample) => sample.ms).sort((a, b) => a - b);
  return {
    n: sorted.length,
    dropped: samples.filter((sample) => sample.status === 0).length,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted[sorted.length - 1] as number,
  };
}

const ms = (value: number) => `${value.toFixed(1)} ms`;
function describe(label: string, during: Figures | null, anchor: Figures | null): string {
  if (!during) return `  ${label}: no request`;
  const dropped = during.dropped > 0 ? `  (${during.dropped} dropped by the server, counted at the time they were dropped)` : '';
  const ratio = (key: keyof Figures) => (anchor ? ` (anchor ${ms(anchor[key])}, ×${(during[key] / anchor[key]).toFixed(2)})` : '');
  return `  ${label}: n=${during.n}  p50 ${ms(during.p50)}${ratio('p50')}  p99 ${ms(during.p99)}${ratio('p99')}  max ${ms(during.max)}${ratio('max')}${dropped}`;
}

/** /health and a list, each in its own loop, until `stop` says so. */
async function measure(base: string, listPath: string, marketer: string, stop: () => boolean) {
  const health: Sample[] = [];
  const lists: Sample[] = [];
  const loop = async (every: number, probe: () => Promise<Sample>, into: Sample[]) => {
    while (!stop()) {
      const sample = await probe();
      // a refusal is a bug of the bench (key, parameters), not a slow answer
      if (sample.status !== 200 && sample.status !== 0) throw new Error(`HTTP ${sample.status}`);
      into.push(sample);
      await sleep(every);
    }
  };
  await Promise.all([
    loop(HEALTH_EVERY_MS, () => timed(`${base}/health`), health),
    loop(LIST_EVERY_MS, () => timed(`${base}${listPath}`, { authorization: `Bearer ${marketer}` }), lists),
  ]);
  return { health, lists };
}

interface RunPart {
  part: string;
  worker: string | null;
  startedAt: string | null;
  finishedAt: string | null;
}

async function main(): Promise<void> {
  if (!embedded) await ensureDatabase();
  console.log(`measuring ${root}/bin/cible.js on ${embedded ? `the embedded database (${dataDir})` : url}, ${contacts} demo contacts`);
  const demo = await cible('demo', '--no-serve', '--contacts', String(contacts));
  const sku = /npx cible targets (\S+) --channel email/.exec(demo)?.[1];
  if (!sku) throw new Error(`the demo named no product with a champion model:\n${demo}`);
  const keyOf = async (role: string) => {
    const created = JSON.parse(await cible('keys', 'create', '--role', role, '--name', `bench:responsive ${role}`, '--json')) as {
      key: string;
    };
    return created.key;
  };
  const marketer = await keyOf('marketer');
  const scheduler = await keyOf('scheduler');

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server: ChildProcess = spawn(process.execPath, [join(root, 'bin/cible.js'), 'serve', '--with-worker'], {
    cwd: root,
    env: { ...env, PORT: String(port) },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  try {
    for (;;) {
      if (server.exitCode !== null) throw new Error(`cible serve exited with ${server.exitCode}`);
      const up = await fetch(`${base}/health`).then(
        (response) => response.ok,
        () => false,
      );
      if (up) break;
      await sleep(200);
    }
    const listPath = `/v1/products/${encodeURIComponent(sku)}/targets?channel=email&top=100`;
    // warm-up: first requests compile routes and fill caches
    for (let i = 0; i < 5; i++) await timed(`${base}${listPath}`, { authorization: `Bearer ${marketer}` });

    const anchorEnds = Date.now() + baselineSeconds * 1000;
    const anchor = await measure(base, listPath, marketer, () => Date.now() > anchorEnds);

    const started = await fetch(`${base}/v1/pipeline/runs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${scheduler}`, 'content-type': 'application/json' },
      body: '{}',
    });
    if (started.status !== 202) throw new Error(`POST /v1/pipeline/runs answered ${started.status}: ${await started.text()}`);
    const { runId } = (await started.json()) as { runId: number };
    const queuedAt = Date.now();
    let run: { status: string; parts: RunPart[] } = { status: 'queued', parts: [] };
    const follow = (async () => {
      while (run.status === 'queued' || run.status === 'running') {
        await sleep(1000);
        try {
          const response = await fetch(`${base}/v1/pipeline/runs/${runId}`, { headers: { authorization: `Bearer ${scheduler}` } });
          if (response.ok) run = (await response.json()) as typeof run;
        } catch {
          // dropped by a server that did not answer in time: asked again
        }
      }
    })();
    // awaited below; caught here so that a failure cannot end the bench before the server is stopped
    follow.catch(() => undefined);
    const during = await measure(base, listPath, marketer, () => run.status !== 'queued' && run.status !== 'running');
    await follow;
    const runSeconds = (Date.now() - queuedAt) / 1000;
    if (run.status !== 'succeeded') throw new Error(`run ${runId} ended ${run.status}`);

    const intervals = run.parts.map((part) => ({
      kind: part.part.split(':')[0] as string,
      from: part.startedAt ? Date.parse(part.startedAt) : Number.POSITIVE_INFINITY,
      to: part.finishedAt ? Date.parse(part.finishedAt) : Number.NEGATIVE_INFINITY,
    }));
    const within = (kinds: string[]) => (sample: Sample) =>
      intervals.some((part) => kinds.includes(part.kind) && sample.at >= part.from && sample.at <= part.to);
    const workers = [...new Set(run.parts.map((part) => part.worker?.split(':').at(-1)))];
    const where = workers.every((pid) => pid === String(server.pid))
      ? 'in the server process'
      : `in process(es) ${workers.join(', ')}, not the server (${server.pid})`;

    console.log(`\nrun ${runId} took ${runSeconds.toFixed(1)} s; its parts ran ${where}`);
    const anchorHealth = figures(anchor.health);
    const anchorList = figures(anchor.lists);
    console.log(`\n/health (target: under 100 ms while the run trains and scores)`);
    console.log(describe('no run (anchor)', anchorHealth, null));
    console.log(describe('while training and scoring', figures(during.health.filter(within(['train', 'score']))), anchorHealth));
    console.log(describe('whole run', figures(during.health), anchorHealth));
    console.log(`\nGET ${listPath} (target: at most 2× the anchor while the run trains and scores)`);
    console.log(describe('no run (anchor)', anchorList, null));
    console.log(describe('while training and scoring', figures(during.lists.filter(within(['train', 'score']))), anchorList));
    console.log(describe('whole run', figures(during.lists), anchorList));
    for (const kind of ['train', 'score', 'rank', 'publish']) {
      const health = figures(during.health.filter(within([kind])));
      const lists = figures(during.lists.filter(within([kind])));
      console.log(
        `  during ${kind.padEnd(7)} /health p99 ${health ? ms(health.p99) : '-'} max ${health ? ms(health.max) : '-'};  list p50 ${lists ? ms(lists.p50) : '-'} p99 ${lists ? ms(lists.p99) : '-'}`,
      );
    }
  } finally {
    if (server.exitCode === null) {
      server.kill('SIGTERM');
      await once(server, 'exit');
    }
    if (dataDir && !givenDataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
