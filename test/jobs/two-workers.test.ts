import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import type { AppContext } from '../../src/context.ts';
import { type DatabaseHandle, openDatabase } from '../../src/db/engine.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { type JobQueue, openJobQueue } from '../../src/jobs/job-queue.ts';
import { enqueueRun, type RunDefaults } from '../../src/jobs/pipeline-jobs.ts';
import { adminPool, databaseUrlFor } from '../helpers/postgres.ts';
import { captureLogger } from '../helpers/silent-logger.ts';
import { allValid, DAY_MS, seedBase, smallOptions } from '../pipelines/pipeline.fixtures.ts';

/*
 * Two `cible worker` processes on one PostgreSQL database (always the real server: worker
 * processes cannot share an embedded database). A queued run is split between them; then a
 * worker is killed with SIGKILL while it trains, and the other one finishes the run after the
 * job's expiry: nothing of the killed attempt is visible, nothing is duplicated.
 */

const SERVER = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NOW = new Date();
const CONTACTS = 2500;
const SHARDS = 4;
// A part that outlives its job's expiry is retried (pg-boss 10 has no job heartbeat): training took 144 s on
// a loaded 2-core machine. The split run's expiry is far above any part, so 'attempt 1' holds whatever the
// load; the SIGKILL run's is short, so that the dead worker's part comes back within the test.
const SPLIT_JOB_TIMEOUT_SECONDS = 900;
const RECOVERY_JOB_TIMEOUT_SECONDS = 120;

const name = `cible_workers_${randomBytes(5).toString('hex')}`;
const url = databaseUrlFor(SERVER, name);
const admin = adminPool(SERVER);
let database: DatabaseHandle;
let context: AppContext;
let recoveryContext: AppContext;
let queue: JobQueue;
let recoveryQueue: JobQueue;
const workers: ChildProcess[] = [];
const { kind: _kind, trigger: _trigger, asOf: _asOf, products: _products, ...defaults } = smallOptions();
const runDefaults: RunDefaults = defaults;

function startWorkerProcess(jobTimeoutSeconds: number): ChildProcess {
  const child = spawn('node', ['bin/cible.js', 'worker', '--no-schedule'], {
    env: {
      ...process.env,
      DATABASE_URL: url,
      LOG_LEVEL: 'warn',
      CIBLE_JOB_TIMEOUT_SECONDS: String(jobTimeoutSeconds),
      CIBLE_SCORE_SHARDS: String(SHARDS),
      CIBLE_CODE_VERSION: 'two-workers-test',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  workers.push(child);
  return child;
}

async function waitUntil<T>(what: string, probe: () => Promise<T | null | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== null && value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function runEnd(runId: number, timeoutMs: number) {
  return waitUntil(
    `run ${runId} to end`,
    async () => {
      const run = await database.db
        .selectFrom('pipeline_runs')
        .select(['status', 'error'])
        .where('id', '=', runId)
        .executeTakeFirstOrThrow();
      return run.status === 'queued' || run.status === 'running' ? null : run;
    },
    timeoutMs,
  );
}

const partsOf = (runId: number) =>
  database.db
    .selectFrom('pipeline_run_parts')
    .select(['part', 'status', 'attempt', 'worker', 'started_at', 'finished_at'])
    .where('run_id', '=', runId)
    .orderBy('part')
    .execute();

/** Everything visible of a run is whole and single: one version per target, live sets complete, no leftovers. */
async function expectCleanRun(runId: number) {
  const { db } = database;
  const versions = await db
    .selectFrom('model_versions')
    .select(['model_id', 'status', 'network_id', 'evaluation_network_id'])
    .where('run_id', '=', runId)
    .execute();
  expect(versions.length).toBeGreaterThan(0);
  expect(new Set(versions.map((version) => version.model_id)).size, 'one version per target').toBe(versions.length);
  const champions = versions.filter((version) => version.status === 'champion');
  expect(champions.length).toBeGreaterThan(0);
  const sets = await db.selectFrom('score_sets').select(['id', 'model_id', 'status', 'row_count']).where('run_id', '=', runId).execute();
  expect(sets.map((set) => set.status)).toEqual(champions.map(() => 'live'));
  expect(new Set(sets.map((set) => set.model_id))).toEqual(new Set(champions.map((version) => version.model_id)));
  for (const set of sets) {
    const { rows } = await sql<{ rows: number; people: number; ranks: number; top: number; bottom: number }>`
      SELECT count(*)::int AS rows, count(DISTINCT contact_id)::int AS people, count(DISTINCT rank)::int AS ranks,
        min(rank)::int AS top, max(rank)::int AS bottom
      FROM scores WHERE score_set_id = ${set.id}`.execute(db);
    // every consenting person once, ranked 1..n across the shards
    expect(rows[0]).toEqual({ rows: CONTACTS, people: CONTACTS, ranks: CONTACTS, top: 1, bottom: CONTACTS });
  }
  // the networks kept are exactly those the versions use: a dead attempt's networks are gone
  const networks = await db.selectFrom('model_networks').select('id').where('run_id', '=', runId).execute();
  const used = new Set(versions.flatMap((version) => [version.network_id, version.evaluation_network_id]).filter((id) => id !== null));
  expect(new Set(networks.map((network) => network.id))).toEqual(used);
  const { rows: leftovers } = await sql<{
    name: string;
  }>`SELECT tablename AS name FROM pg_tables WHERE tablename LIKE 'score\\_part\\_%'`.execute(db);
  expect(leftovers).toEqual([]);
  const snapshot = await db
    .selectFrom('profiling_snapshots')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('run_id', '=', runId)
    .executeTakeFirstOrThrow();
  expect(Number(snapshot.n)).toBe(CONTACTS);
}

beforeAll(async () => {
  await admin.query(`CREATE DATABASE ${name}`);
  database = await openDatabase({ kind: 'postgres', url });
  await migrateToLatest(database.db);
  await seedBase(database, { seed: 77, from: new Date(NOW.getTime() - 400 * DAY_MS), to: NOW, consents: allValid(CONTACTS) });
  const contextWith = (jobTimeoutSeconds: number): AppContext => ({
    config: loadConfig({ DATABASE_URL: url, CIBLE_SCORE_SHARDS: String(SHARDS), CIBLE_JOB_TIMEOUT_SECONDS: String(jobTimeoutSeconds) }),
    logger: captureLogger().logger,
    clock: { now: () => new Date() },
    database,
    stop: async () => undefined,
  });
  // the train job's expiry is the enqueuer's; the jobs that follow it take the workers'
  context = contextWith(SPLIT_JOB_TIMEOUT_SECONDS);
  recoveryContext = contextWith(RECOVERY_JOB_TIMEOUT_SECONDS);
  queue = await openJobQueue(context);
  recoveryQueue = await openJobQueue(recoveryContext);
}, 180_000);

afterAll(async () => {
  for (const child of workers) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await queue?.stop({ timeoutMs: 1000 });
  await recoveryQueue?.stop({ timeoutMs: 1000 });
  await database?.close();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.end();
});

describe('two worker processes on one PostgreSQL', () => {
  // Under load either worker may take every part (which one claims a job is scheduling): the test
  // asserts what must hold whatever the timing: each part done once, on attempt 1 (the expiry is far
  // above any part), by one of the two workers, both still alive. Deadlines are generous; nothing is timed.
  it('split a run between them, each part done once', { timeout: 600_000 }, async () => {
    const first = startWorkerProcess(SPLIT_JOB_TIMEOUT_SECONDS);
    const second = startWorkerProcess(SPLIT_JOB_TIMEOUT_SECONDS);
    const runId = await enqueueRun(context, queue, { trigger: 'test:two-workers' }, runDefaults);
    const run = await runEnd(runId, 580_000);
    expect(run).toEqual({ status: 'succeeded', error: null });

    const parts = await partsOf(runId);
    const champions = await database.db
      .selectFrom('model_versions')
      .select('id')
      .where('run_id', '=', runId)
      .where('status', '=', 'champion')
      .execute();
    expect(parts.map((part) => part.part).sort()).toEqual(
      [
        'publish',
        'train',
        ...Array.from({ length: SHARDS }, (_, shard) => `score:${shard}`),
        ...parts.filter((part) => part.part.startsWith('rank:')).map((part) => part.part),
      ].sort(),
    );
    expect(parts.filter((part) => part.part.startsWith('rank:'))).toHaveLength(champions.length);
    // a figure, not an assertion: how close the longest part came to the job expiry (beyond it, the part is retried)
    const longest = parts
      .map((part) => ({ part: part.part, seconds: (Number(part.finished_at) - Number(part.started_at)) / 1000 }))
      .sort((a, b) => b.seconds - a.seconds)[0];
    console.log(
      `two workers: longest part ${longest?.part} took ${longest?.seconds.toFixed(1)} s (job expiry ${SPLIT_JOB_TIMEOUT_SECONDS} s)`,
    );
    expect(parts.every((part) => part.status === 'succeeded' && part.attempt === 1)).toBe(true);
    const live = [first, second].filter((child) => child.exitCode === null && child.signalCode === null).map((child) => child.pid);
    expect(live, 'both workers still running').toHaveLength(2);
    for (const part of parts) expect(live, `the worker of ${part.part}`).toContain(Number(part.worker?.split(':').at(-1)));
    await expectCleanRun(runId);

    // SIGTERM: idle workers stop cleanly (a worker that did not stop would hold the test to its timeout)
    for (const child of [first, second]) {
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      expect(code).toBe(0);
    }
  });

  it('finish a run whose training worker was killed with SIGKILL: retried on the other, nothing of the dead attempt visible', {
    timeout: 720_000,
  }, async () => {
    const pair = [startWorkerProcess(RECOVERY_JOB_TIMEOUT_SECONDS), startWorkerProcess(RECOVERY_JOB_TIMEOUT_SECONDS)];
    const runId = await enqueueRun(recoveryContext, recoveryQueue, { trigger: 'test:sigkill' }, runDefaults);
    // the worker that claims the training part is killed while it trains
    const training = await waitUntil(
      'a worker to start training',
      async () => (await partsOf(runId)).find((part) => part.part === 'train' && part.status === 'running'),
      180_000,
    );
    const victim = pair.find((child) => `${child.pid}` === training.worker?.split(':').at(-1));
    expect(victim, 'the training worker is one of ours').toBeDefined();
    // killed as soon as it is seen training (training takes many seconds); it must still be running
    // once the process is gone, or the kill came after the part ended and there is nothing to recover
    victim?.kill('SIGKILL');
    await once(victim as ChildProcess, 'exit');
    expect((await partsOf(runId)).find((part) => part.part === 'train')?.status, 'still training when killed').toBe('running');
    const survivor = pair.find((child) => child !== victim) as ChildProcess;

    const run = await runEnd(runId, 500_000);
    expect(run).toEqual({ status: 'succeeded', error: null });
    const parts = await partsOf(runId);
    const train = parts.find((part) => part.part === 'train');
    // retried on the survivor (attempt 2, or 3 if the retry itself outlived the expiry on a loaded machine);
    // every part was finished by the survivor, the only worker left
    expect(train).toMatchObject({ status: 'succeeded', worker: expect.stringMatching(new RegExp(`:${survivor.pid}$`)) });
    expect(train?.attempt).toBeGreaterThanOrEqual(2);
    for (const part of parts) {
      expect(part, part.part).toMatchObject({ status: 'succeeded', worker: expect.stringMatching(new RegExp(`:${survivor.pid}$`)) });
    }
    await expectCleanRun(runId);
    // the previous run's champions retired or stayed, never two at once
    const { rows } = await sql<{ model_id: number }>`
      SELECT model_id FROM model_versions WHERE status = 'champion' GROUP BY model_id HAVING count(*) > 1`.execute(database.db);
    expect(rows).toEqual([]);
  });
});
