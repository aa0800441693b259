import type PgBoss from 'pg-boss';
import { sweepConsent } from '../../pipelines/consent-sweep.ts';
import type { AppContext } from '../context.ts';
import { describeError } from '../logger.ts';
import { PipelineBusyError } from '../registry/registry.repository.ts';
import { startScheduleTicker, validateSchedule } from '../schedule/pipeline-schedule.ts';
import { type JobQueue, openJobQueue, QUEUES } from './job-queue.ts';
import { enqueueRun, pipelineHandlers, WORKER_ID } from './pipeline-jobs.ts';
import { forgetWorkersSeenBefore, recordHeartbeat, recordWorkerStopped } from './worker-presence.repository.ts';

/** workers not seen for this long are forgotten */
const FORGET_WORKERS_AFTER_MS = 7 * 24 * 3_600_000;

/** How often a worker beats: several times within the absence threshold, at most every 15 s. */
export function heartbeatIntervalMs(absentAfterSeconds: number): number {
  return Math.max(1000, Math.min(15_000, Math.floor((absentAfterSeconds * 1000) / 4)));
}

export interface WorkerOptions {
  /** jobs of each queue this process works on at once */
  concurrency: number;
  /** also enqueue the nightly run and the consent sweep when they are due */
  schedule: boolean;
  pollingIntervalSeconds?: number;
  /** how often the schedule is checked */
  scheduleCheckMs?: number;
}

export interface Worker {
  queue: JobQueue;
  /** stops taking jobs; a job still running after `timeoutMs` is released for another worker */
  stop(timeoutMs?: number): Promise<void>;
}

/**
 * A worker process: takes pipeline parts and consent sweeps from the queue. Any number of
 * them, on any machines, may share one database. With `schedule`, it also enqueues the
 * nightly run at the configured local time and the consent sweep every few minutes; every
 * worker may do so, the database keeps one run per schedule slot and pg-boss one sweep per
 * interval.
 */
export async function startWorker(context: AppContext, options: WorkerOptions): Promise<Worker> {
  const { logger, config } = context;
  const schedule = { cron: config.jobs.cron, timeZone: config.jobs.timeZone };
  // a bad schedule is refused before anything is started
  if (options.schedule) validateSchedule(schedule);
  const queue = await openJobQueue(context);
  try {
    return await startOn(queue);
  } catch (error) {
    await queue.stop({ graceful: false });
    throw error;
  }

  async function startOn(queue: JobQueue): Promise<Worker> {
    const { db } = context.database;
    const timers: Array<{ stop(): void }> = [];
    const handlers = pipelineHandlers(context, queue);
    const polling = { batchSize: 1, includeMetadata: true as const, pollingIntervalSeconds: options.pollingIntervalSeconds ?? 1 };
    const work = async <T extends object>(name: string, handler: (job: PgBoss.JobWithMetadata<T>) => Promise<void>) => {
      for (let i = 0; i < options.concurrency; i++) {
        await queue.boss.work<T>(name, polling, async (jobs) => {
          for (const job of jobs) await handler(job);
        });
      }
    };
    await work(QUEUES.train, handlers.train);
    await work(QUEUES.score, handlers.score);
    await work(QUEUES.rank, handlers.rank);
    await work(QUEUES.publish, handlers.publish);
    await work(QUEUES.consentSweep, async () => {
      await sweepConsent(context);
    });

    if (options.schedule) {
      timers.push(
        startScheduleTicker({
          clock: context.clock,
          schedule,
          intervalMs: options.scheduleCheckMs ?? 30_000,
          logger,
          onSlot: async (slot) => {
            try {
              await enqueueRun(context, queue, { trigger: `schedule:${slot.toISOString()}` });
            } catch (error) {
              if (!(error instanceof PipelineBusyError)) throw error;
              logger.info({ slot: slot.toISOString(), reason: error.message }, 'scheduled run not queued');
            }
          },
        }),
      );
      const sweepSeconds = config.jobs.consentSweepMinutes * 60;
      const sweep = setInterval(() => {
        queue
          .send(QUEUES.consentSweep, {}, undefined, { singletonSeconds: sweepSeconds, retryLimit: 0 })
          .catch((error: unknown) => logger.warn({ err: describeError(error) }, 'consent sweep not queued'));
      }, sweepSeconds * 1000);
      sweep.unref();
      timers.push({ stop: () => clearInterval(sweep) });
    }
    // last, so that a worker that failed to start never looks live; its own short statement
    // each time, never inside a job's transaction
    try {
      await forgetWorkersSeenBefore(db, new Date(context.clock.now().getTime() - FORGET_WORKERS_AFTER_MS));
      await recordHeartbeat(db, WORKER_ID, context.clock.now());
    } catch (error) {
      for (const timer of timers) timer.stop();
      throw error;
    }
    const beat = setInterval(() => {
      recordHeartbeat(db, WORKER_ID, context.clock.now()).catch((error: unknown) =>
        logger.warn({ err: describeError(error) }, 'worker heartbeat not recorded'),
      );
    }, heartbeatIntervalMs(config.jobs.workerAbsentSeconds));
    beat.unref();
    timers.push({ stop: () => clearInterval(beat) });
    logger.info({ worker: WORKER_ID, concurrency: options.concurrency, schedule: options.schedule }, 'worker started');

    return {
      queue,
      async stop(timeoutMs = 30_000) {
        for (const timer of timers) timer.stop();
        await queue.stop({ graceful: true, timeoutMs });
        await recordWorkerStopped(db, WORKER_ID, context.clock.now()).catch((error: unknown) =>
          logger.warn({ err: describeError(error) }, 'worker stop not recorded'),
        );
        logger.info({ worker: WORKER_ID }, 'worker stopped');
      },
    };
  }
}
