import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { registerRunsCommands } from '../../src/cli/runs.command.ts';
import type { AppContext } from '../../src/context.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { type JobQueue, openJobQueue } from '../../src/jobs/job-queue.ts';
import { enqueueRun, WORKER_ID } from '../../src/jobs/pipeline-jobs.ts';
import { startWorker } from '../../src/jobs/worker.ts';
import { recordHeartbeat, workerPresence } from '../../src/jobs/worker-presence.repository.ts';
import { type ApiHarness, bodyOf, createApiHarness } from '../api/api.fixtures.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { movableClock, pipelineContext } from '../pipelines/pipeline.fixtures.ts';

/*
 * Nobody waits on nothing: a run queued while no worker is live is reported by `cible runs
 * list`, GET /ready (still 200, with a warning) and /metrics once it has waited longer than
 * CIBLE_WORKER_ABSENT_SECONDS (60 s by default); with a live worker's heartbeat it is not. The
 * clock is moved by hand; real database, real queue, a real worker started and stopped.
 */

const T0 = new Date('2026-12-03T09:00:00Z');
const clock = movableClock(T0);
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
let database: DatabaseHandle;
let context: AppContext;
let queue: JobQueue;
let api: ApiHarness;

beforeAll(async () => {
  database = await createTestDatabase();
  context = pipelineContext(database, clock);
  api = await createApiHarness({ database, clock });
  queue = await openJobQueue(context);
}, 120_000);
afterAll(async () => {
  await queue?.stop({ timeoutMs: 1000 });
  await api?.close();
});
afterEach(() => vi.restoreAllMocks());

/** `cible runs list [--json]` in-process on the test database; what it printed. */
async function runsList(...flags: string[]): Promise<string> {
  const program = new Command('cible').exitOverride();
  registerRunsCommands(program, (run) => run(context));
  const printed: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...values: unknown[]) => {
    printed.push(values.join(' '));
  });
  await program.parseAsync(['node', 'cible', 'runs', 'list', ...flags]);
  vi.restoreAllMocks();
  return printed.join('\n');
}

async function ready() {
  const response = await api.call(null, '/ready');
  expect(response.status).toBe(200);
  return bodyOf(response);
}

async function metric(name: string): Promise<number> {
  const text = await (await api.call(null, '/metrics')).text();
  const line = text.split('\n').find((sample) => sample.startsWith(`${name} `));
  if (!line) throw new Error(`no sample ${name}`);
  return Number(line.slice(name.length + 1));
}

describe('a run queued with no live worker', () => {
  let runId: number;

  it('a worker records its heartbeat when it starts and its stop when it stops', async () => {
    clock.set(at(-600));
    const worker = await startWorker(context, { concurrency: 1, schedule: false });
    try {
      const row = await database.db.selectFrom('job_workers').selectAll().where('worker', '=', WORKER_ID).executeTakeFirstOrThrow();
      expect(row).toMatchObject({ started_at: at(-600), heartbeat_at: at(-600), stopped_at: null });
      expect(await workerPresence(database.db, at(-590), 60)).toEqual({ liveWorkers: 1, lastHeartbeatAt: at(-600), runsWithoutWorker: [] });
      expect((await ready()).workers).toEqual({ live: 1, lastHeartbeatAt: at(-600).toISOString() });
    } finally {
      clock.set(at(-500));
      await worker.stop(1000);
    }
    const row = await database.db
      .selectFrom('job_workers')
      .select(['stopped_at'])
      .where('worker', '=', WORKER_ID)
      .executeTakeFirstOrThrow();
    expect(row.stopped_at).toEqual(at(-500));
    expect((await workerPresence(database.db, at(-499), 60)).liveWorkers).toBe(0);
  });

  it('is not reported while it has waited less than the threshold', async () => {
    clock.set(T0);
    runId = await enqueueRun(context, queue, { trigger: 'test:nobody' });
    clock.set(at(59));
    expect((await workerPresence(database.db, clock.now(), 60)).runsWithoutWorker).toEqual([]);
    expect((await ready()).warnings).toEqual([]);
    expect(await runsList()).not.toContain('warning');
    expect(await metric('cible_pipeline_runs_without_worker')).toBe(0);
  });

  it('is reported by runs list, /ready (still 200) and /metrics once it has waited longer', async () => {
    clock.set(at(61));
    const detail = `pipeline run ${runId} is queued but no worker has been live for 61 s (the last worker was seen at ${at(-500).toISOString()}): start one with \`cible worker\` or \`cible serve --with-worker\``;

    const listing = await runsList();
    expect(listing.split('\n').at(-1)).toBe(`warning: ${detail}`);
    const entries = JSON.parse(await runsList('--json')) as Array<{ id: number; withoutWorker: { since: string; seconds: number } | null }>;
    expect(entries.find((entry) => entry.id === runId)?.withoutWorker).toEqual({ since: T0.toISOString(), seconds: 61 });

    const body = await ready();
    expect(body.status).toBe('ready');
    expect(body.workers).toEqual({ live: 0, lastHeartbeatAt: at(-500).toISOString() });
    expect(body.warnings).toEqual([{ code: 'run_without_worker', runId, status: 'queued', since: T0.toISOString(), seconds: 61, detail }]);

    expect(await metric('cible_pipeline_runs_without_worker')).toBe(1);
    expect(await metric('cible_pipeline_run_without_worker_seconds')).toBe(61);
    expect(await metric('cible_workers_live')).toBe(0);
    expect(await metric('cible_worker_last_heartbeat_timestamp_seconds')).toBe(at(-500).getTime() / 1000);
  });

  it('is not reported while a worker beats, and is again a threshold after its last beat', async () => {
    await recordHeartbeat(database.db, 'other-host:4242', at(100));
    clock.set(at(150));
    expect((await ready()).warnings).toEqual([]);
    expect((await ready()).workers).toEqual({ live: 1, lastHeartbeatAt: at(100).toISOString() });
    expect(await runsList()).not.toContain('warning');
    expect(await metric('cible_pipeline_runs_without_worker')).toBe(0);
    expect(await metric('cible_workers_live')).toBe(1);

    // the worker was killed after that beat: live until the threshold, then the run waits on nobody
    clock.set(at(159));
    expect(await ready()).toMatchObject({ workers: { live: 1 }, warnings: [] });
    clock.set(at(161));
    const body = await ready();
    expect(body.workers.live).toBe(0);
    expect(body.warnings).toEqual([expect.objectContaining({ runId, since: at(100).toISOString(), seconds: 61 })]);
    expect(await metric('cible_pipeline_runs_without_worker')).toBe(1);
  });

  it('an inline run needs no worker and is never reported', async () => {
    await database.db.updateTable('pipeline_runs').set({ driver: 'inline', status: 'running' }).where('id', '=', runId).execute();
    clock.set(at(3600));
    expect((await ready()).warnings).toEqual([]);
    expect(await metric('cible_pipeline_runs_without_worker')).toBe(0);
  });
});
