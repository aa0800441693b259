import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import type { AppContext } from '../../src/context.ts';
import { type DatabaseHandle, openDatabase } from '../../src/db/engine.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { type JobQueue, openJobQueue } from '../../src/jobs/job-queue.ts';
import { enqueueRun, type RunDefaults } from '../../src/jobs/pipeline-jobs.ts';
import { freePort } from '../helpers/cible-serve.ts';
import { adminPool, databaseUrlFor } from '../helpers/postgres.ts';
import { captureLogger } from '../helpers/silent-logger.ts';
import { allValid, DAY_MS, seedBase, smallOptions } from '../pipelines/pipeline.fixtures.ts';

/*
 * `cible serve --with-worker` runs its worker as a child process, so that training and scoring
 * never run on the event loop that answers HTTP: a queued run's parts are done by another
 * process than the server; that worker is restarted when it dies, and stops with the server.
 * On PostgreSQL (a real server process and its child share the database).
 */

const SERVER = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NOW = new Date();
const name = `cible_serve_worker_${randomBytes(5).toString('hex')}`;
const url = databaseUrlFor(SERVER, name);
const admin = adminPool(SERVER);
let database: DatabaseHandle;
let context: AppContext;
let queue: JobQueue;
let serve: ChildProcess;
let output = '';
const { kind: _kind, trigger: _trigger, asOf: _asOf, products: _products, ...defaults } = smallOptions();
const runDefaults: RunDefaults = defaults;

async function waitUntil<T>(what: string, probe: () => Promise<T | null | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null && value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; server output:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const pidOf = (worker: string | null) => Number(worker?.split(':').at(-1));
const liveWorkers = () => database.db.selectFrom('job_workers').select(['worker', 'stopped_at']).where('stopped_at', 'is', null).execute();
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

beforeAll(async () => {
  await admin.query(`CREATE DATABASE ${name}`);
  database = await openDatabase({ kind: 'postgres', url });
  await migrateToLatest(database.db);
  await seedBase(database, { seed: 5, from: new Date(NOW.getTime() - 400 * DAY_MS), to: NOW, consents: allValid(300) });
  context = {
    config: loadConfig({ DATABASE_URL: url }),
    logger: captureLogger().logger,
    clock: { now: () => new Date() },
    database,
    stop: async () => undefined,
  };
  queue = await openJobQueue(context);
  serve = spawn('node', ['bin/cible.js', 'serve', '--with-worker'], {
    env: { ...process.env, DATABASE_URL: url, PORT: String(await freePort()), LOG_LEVEL: 'info', CIBLE_CODE_VERSION: 'serve-worker-test' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  serve.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  serve.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
}, 180_000);

afterAll(async () => {
  if (serve && serve.exitCode === null && serve.signalCode === null) serve.kill('SIGKILL');
  for (const row of (await database?.db.selectFrom('job_workers').select('worker').execute()) ?? []) {
    if (alive(pidOf(row.worker))) process.kill(pidOf(row.worker), 'SIGKILL');
  }
  await queue?.stop({ timeoutMs: 1000 });
  await database?.close();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
});

describe('cible serve --with-worker', () => {
  let workerPid: number;

  it('runs the worker in a child process, which does the parts of a queued run', { timeout: 240_000 }, async () => {
    const [worker] = await waitUntil('the worker to beat', async () => ((await liveWorkers()).length > 0 ? liveWorkers() : null), 90_000);
    workerPid = pidOf(worker!.worker);
    expect(workerPid).not.toBe(serve.pid);
    expect(alive(workerPid)).toBe(true);

    const runId = await enqueueRun(context, queue, { trigger: 'test:serve-with-worker' }, runDefaults);
    const run = await waitUntil(
      `run ${runId} to end`,
      async () => {
        const row = await database.db
          .selectFrom('pipeline_runs')
          .select(['status', 'error'])
          .where('id', '=', runId)
          .executeTakeFirstOrThrow();
        return row.status === 'queued' || row.status === 'running' ? null : row;
      },
      200_000,
    );
    expect(run).toEqual({ status: 'succeeded', error: null });
    const parts = await database.db.selectFrom('pipeline_run_parts').select(['part', 'worker']).where('run_id', '=', runId).execute();
    expect(parts.map((part) => part.part)).toContain('train');
    expect(new Set(parts.map((part) => pidOf(part.worker)))).toEqual(new Set([workerPid]));
  });

  it('restarts a worker that dies, and reports its exit', { timeout: 120_000 }, async () => {
    process.kill(workerPid, 'SIGKILL');
    const [next] = await waitUntil(
      'another worker to beat',
      async () => {
        const rows = (await liveWorkers()).filter((row) => pidOf(row.worker) !== workerPid);
        return rows.length > 0 ? rows : null;
      },
      90_000,
    );
    expect(output).toMatch(new RegExp(`"pid":${workerPid},"code":null,"signal":"SIGKILL".*"msg":"worker process died: restarting it"`));
    workerPid = pidOf(next!.worker);
    expect(workerPid).not.toBe(serve.pid);
  });

  it('stops the worker with the server on SIGTERM', { timeout: 90_000 }, async () => {
    serve.kill('SIGTERM');
    const [code] = await once(serve, 'exit');
    expect(code).toBe(0);
    expect(alive(workerPid)).toBe(false);
    const row = await database.db
      .selectFrom('job_workers')
      .select('stopped_at')
      .where('worker', 'like', `%:${workerPid}`)
      .executeTakeFirstOrThrow();
    expect(row.stopped_at).not.toBeNull();
    expect(output).toMatch(new RegExp(`"pid":${workerPid},"code":0,"signal":null.*"msg":"worker process exited"`));
  });
});
