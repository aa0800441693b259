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

/**
 * pg-boss speaks to the database through our own pool, or through a transaction's connection.
 * Its guarded commands are one text 'BEGIN; …; COMMIT;' (installing its schema, maintenance):
 * when one fails midway (two processes installing at once, a lock timeout) its transaction
 * stays open on the connection, so every later query there fails, and on the embedded
 * database, where a transaction holds the only backend, every process waits for ever: the
 * connection is rolled back before it goes back to the pool.
 */
export function jobQueueExecutor(db: Kysely<Database>): PgBoss.Db {
  const run = async (executor: { executeQuery: Kysely<Database>['executeQuery'] }, text: string, values: unknown[] | undefined) => {
    const result = await executor.executeQuery(CompiledQuery.raw(text, values ?? []));
    return { rows: result.rows as unknown[] as never[] };
  };
  return {
    async executeSql(text, values) {
      // inside the caller's transaction (a job sent with its part's output): theirs to end
      if (db.isTransaction) return run(db, text, values);
      return db.connection().execute(async (connection) => {
        try {
          return await run(connection, text, values);
        } catch (error) {
          await connection.executeQuery(CompiledQuery.raw('ROLLBACK')).catch(() => undefined);
          throw error;
        }
      });
    },
  };
}

/**
 * Creates a queue unless it exists. Two processes starting on a fresh database create the same
 * queues at the same moment, and PostgreSQL may end one of them as a deadlock victim: it looks
 * again, and tries again.
 */
async function createQueue(boss: PgBoss, name: QueueName): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await boss.createQueue(name);
      return;
    } catch (error) {
      if (attempt >= 3) throw error;
      if (await boss.getQueue(name)) return;
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
  }
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
    db: jobQueueExecutor(context.database.db),
    schema: 'pgboss',
    // expiry of dead workers' jobs is checked by whichever process maintains first
    supervise: true,
    maintenanceIntervalSeconds: Math.max(1, Math.min(60, Math.floor(jobs.jobTimeoutSeconds / 4))),
    schedule: false,
  });
  boss.on('error', (error) => context.logger.warn({ err: describeError(error) }, 'job queue error'));
  await boss.start();
  for (const name of Object.values(QUEUES)) await createQueue(boss, name);
  const defaults: PgBoss.SendOptions = {
    retryLimit: 2,
    retryDelay: 2,
    expireInSeconds: jobs.jobTimeoutSeconds,
  };
  return {
    boss,
    async send(name, data, within, options = {}) {
      await boss.send(name, data, { ...defaults, ...options, ...(within ? { db: jobQueueExecutor(within) } : {}) });
    },
    async stop({ graceful = true, timeoutMs = 30_000 } = {}) {
      await boss.stop({ graceful, wait: true, timeout: timeoutMs, close: false });
    },
  };
}
