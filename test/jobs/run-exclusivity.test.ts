import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runPipeline } from '../../pipelines/run-pipeline.ts';
import type { AppContext } from '../../src/context.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { type JobQueue, openJobQueue } from '../../src/jobs/job-queue.ts';
import { enqueueRun } from '../../src/jobs/pipeline-jobs.ts';
import { PipelineBusyError } from '../../src/registry/registry.repository.ts';
import { startScheduleTicker } from '../../src/schedule/pipeline-schedule.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { movableClock, pipelineContext, smallOptions } from '../pipelines/pipeline.fixtures.ts';

/*
 * One run at a time, whoever triggers it: two triggers at once (API, schedule, CLI, any
 * process) give exactly one run; a run whose process died stops blocking once its heartbeat is
 * stale; the nightly schedule enqueues at 02:00 Paris time on each side of a daylight-saving
 * change, once per slot however many schedulers run. Real database, real queue (no worker:
 * the runs stay queued).
 */

const clock = movableClock(new Date('2026-03-26T12:00:00Z'));
let database: DatabaseHandle;
let context: AppContext;
let queue: JobQueue;

beforeAll(async () => {
  database = await createTestDatabase();
  context = pipelineContext(database, clock);
  queue = await openJobQueue(context);
}, 120_000);
afterAll(async () => {
  await queue?.stop({ timeoutMs: 1000 });
  await database?.close();
});
beforeEach(async () => {
  await database.db
    .updateTable('pipeline_runs')
    .set({ status: 'succeeded', finished_at: clock.now() })
    .where('status', 'in', ['queued', 'running'])
    .execute();
});

const activeRuns = () =>
  database.db.selectFrom('pipeline_runs').select(['id', 'trigger', 'status']).where('status', 'in', ['queued', 'running']).execute();

describe('one run at a time', () => {
  it('two runs triggered at once: exactly one is queued, the other refused', async () => {
    const before = await database.db.selectFrom('pipeline_runs').select('id').execute();
    const outcomes = await Promise.allSettled([
      enqueueRun(context, queue, { trigger: 'test:first' }),
      enqueueRun(context, queue, { trigger: 'test:second' }),
    ]);
    const queued = outcomes.filter((outcome) => outcome.status === 'fulfilled');
    const refused = outcomes.filter((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    expect(queued).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(refused[0]?.reason).toBeInstanceOf(PipelineBusyError);
    expect((refused[0]!.reason as Error).message).toMatch(/^pipeline run \d+ is queued; try again when it has finished$/);
    const after = await database.db.selectFrom('pipeline_runs').select('id').execute();
    expect(after.length - before.length).toBe(1);
    const jobs = await queue.boss.getQueueSize('pipeline-train');
    expect(jobs).toBe(1);
  });

  it('a run in this process is refused while a queued one is active, and leaves no record', async () => {
    const runId = await enqueueRun(context, queue, { trigger: 'test:queued' });
    const count = async () => (await database.db.selectFrom('pipeline_runs').select('id').execute()).length;
    const before = await count();
    await expect(runPipeline(context, smallOptions({ trigger: 'test:inline' }))).rejects.toThrow(
      new PipelineBusyError(`pipeline run ${runId} is queued; try again when it has finished`),
    );
    expect(await count()).toBe(before);
  });

  it('a run whose process died (no heartbeat for CIBLE_RUN_STALE_SECONDS) is marked failed by the next trigger', async () => {
    const stale = await enqueueRun(context, queue, { trigger: 'test:stale' });
    await database.db.updateTable('pipeline_runs').set({ status: 'running', heartbeat_at: clock.now() }).where('id', '=', stale).execute();
    const seconds = context.config.jobs.staleRunSeconds;
    clock.set(new Date(clock.now().getTime() + (seconds - 1) * 1000));
    await expect(enqueueRun(context, queue, { trigger: 'test:too-early' })).rejects.toBeInstanceOf(PipelineBusyError);
    clock.set(new Date(clock.now().getTime() + 2000));
    const next = await enqueueRun(context, queue, { trigger: 'test:after-stale' });
    const old = await database.db.selectFrom('pipeline_runs').select(['status', 'error']).where('id', '=', stale).executeTakeFirstOrThrow();
    expect(old).toEqual({
      status: 'failed',
      error: expect.stringMatching(/^abandoned: no sign of life since \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
    });
    expect((await activeRuns()).map((run) => run.id)).toEqual([next]);
  });
});

describe('the nightly schedule (0 2 * * *, Europe/Paris) with a fixed clock', () => {
  it('enqueues at 02:00 local time across the spring and autumn changes, once per slot with two schedulers', {
    timeout: 60_000,
  }, async () => {
    const triggered: string[] = [];
    const onSlot = async (slot: Date) => {
      try {
        await enqueueRun(context, queue, { trigger: `schedule:${slot.toISOString()}` });
        triggered.push(slot.toISOString());
      } catch (error) {
        if (!(error instanceof PipelineBusyError)) throw error;
      }
    };
    const schedule = { cron: context.config.jobs.cron, timeZone: context.config.jobs.timeZone };
    expect(schedule).toEqual({ cron: '0 2 * * *', timeZone: 'Europe/Paris' });

    const nights = async (from: string, to: string) => {
      clock.set(new Date(from));
      // two processes, each with its own scheduler: the database keeps one run per slot
      const tickers = [0, 1].map(() => startScheduleTicker({ clock, schedule, intervalMs: 3_600_000, onSlot, logger: context.logger }));
      try {
        while (clock.now() < new Date(to)) {
          clock.set(new Date(clock.now().getTime() + 15 * 60_000));
          for (const ticker of tickers) await ticker.tick();
          // each night's run finishes before the next night
          await database.db
            .updateTable('pipeline_runs')
            .set({ status: 'succeeded' })
            .where('trigger', 'like', 'schedule:%')
            .where('status', '=', 'queued')
            .execute();
        }
      } finally {
        for (const ticker of tickers) ticker.stop();
      }
    };
    await nights('2026-03-27T12:00:00Z', '2026-03-31T12:00:00Z');
    await nights('2026-10-23T12:00:00Z', '2026-10-27T12:00:00Z');

    expect(triggered).toEqual([
      '2026-03-28T01:00:00.000Z', // 02:00 CET
      '2026-03-29T01:00:00.000Z', // 02:00 does not exist that night: 03:00 CEST, the first instant after
      '2026-03-30T00:00:00.000Z', // 02:00 CEST
      '2026-03-31T00:00:00.000Z',
      '2026-10-24T00:00:00.000Z', // 02:00 CEST
      '2026-10-25T00:00:00.000Z', // 02:00 happens twice that night: the first one only
      '2026-10-26T01:00:00.000Z', // 02:00 CET
      '2026-10-27T01:00:00.000Z',
    ]);
    const runs = await database.db
      .selectFrom('pipeline_runs')
      .select('trigger')
      .where('trigger', 'like', 'schedule:%')
      .orderBy('id')
      .execute();
    expect(runs.map((run) => run.trigger)).toEqual(triggered.map((slot) => `schedule:${slot}`));
  });
});
