import { CompiledQuery, type Kysely } from 'kysely';
import PgBoss from 'pg-boss';
import type { AppContext } from '../context.ts';
import type { Database } from '../db/database.ts';
import { describeError } from '../logger.ts';

/** The queues of the pipeline (one per kind of part) and of the light consent job. */
export const QUEUES = {
  train: 'pipeline-train',
  score: 'pipeline-score',
  rank: 'pipeline-rank',
  publish: 'pipeline-publish',
  consentSweep: 'consent-sweep',
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];

export interface JobQueue {
  boss: PgBoss;
  /** enqueues a job; with `within`, in that transaction (it exists only if the transaction commits) */
  send(name: QueueName, data: object, within?: Kysely<Database>, options?: PgBoss.SendOptions): Promise<void>;
  stop(options?: { graceful?: boolean; timeoutMs?: number }): Promise<void>;
}

/** pg-boss speaks to the database through our own pool, or through a transaction's connection. */
function executorOf(db: Kysely<Database>): PgBoss.Db {
  return {
    async executeSql(text, values) {
      const result = await db.executeQuery(CompiledQuery.raw(text, values ?? []));
      return { rows: result.rows as unknown[] as never[] };
    },
  };
}

/**
 * pg-boss on the application's own database (PostgreSQL or the embedded PGlite: it goes
 * through our pool, so it needs no connection of its own). Why pg-boss: it runs on any
 * PostgreSQL including PGlite through this adapter, enqueues inside our transactions (a
 * part's output and the jobs that follow it commit together), retries a job whose worker
 * died once its expiry passes, and needs no extra service.
 */
export async function openJobQueue(context: AppContext): Promise<JobQueue> {
  const { jobs } = context.config;
  const boss = new PgBoss({
    db: executorOf(context.database.db),
    schema: 'pgboss',
    // expiry of dead workers' jobs is checked by whichever process maintains first
    supervise: true,
    maintenanceIntervalSeconds: Math.max(1, Math.min(60, Math.floor(jobs.jobTimeoutSeconds / 4))),
    schedule: false,
  });
  boss.on('error', (error) => context.logger.warn({ err: describeError(error) }, 'job queue error'));
  await boss.start();
  for (const name of Object.values(QUEUES)) await boss.createQueue(name);
  const defaults: PgBoss.SendOptions = {
    retryLimit: 2,
    retryDelay: 2,
    expireInSeconds: jobs.jobTimeoutSeconds,
  };
  return {
    boss,
    async send(name, data, within, options = {}) {
      await boss.send(name, data, { ...defaults, ...options, ...(within ? { db: executorOf(within) } : {}) });
    },
    async stop({ graceful = true, timeoutMs = 30_000 } = {}) {
      await boss.stop({ graceful, wait: true, timeout: timeoutMs, close: false });
    },
  };
}
