import { randomBytes } from 'node:crypto';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import type { AppContext } from '../../src/context.ts';
import type { Database } from '../../src/db/database.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { jobQueueExecutor, openJobQueue } from '../../src/jobs/job-queue.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { adminPool, databaseUrlFor } from '../helpers/postgres.ts';
import { captureLogger } from '../helpers/silent-logger.ts';

/*
 * The start-up deadlock: pg-boss's guarded commands are one text 'BEGIN; …; COMMIT;'. One that
 * failed midway (two processes installing the queue at once) left its transaction open on the
 * connection: every later query of that process failed, and on the embedded database, where a
 * transaction holds the only backend, every process waited for ever (a worker alive but idle).
 */

const toClose: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const close of toClose.reverse()) await close();
});

describe("the job queue's connection", () => {
  it('is never left inside a transaction by a guarded command that failed midway', async () => {
    const database = await createTestDatabase();
    toClose.push(() => database.close());
    const executor = jobQueueExecutor(database.db);
    await expect(executor.executeSql('BEGIN; SELECT 1/0; COMMIT;', [])).rejects.toThrow(/division by zero/);
    // the next query takes the same connection (the embedded pool has one; pg's pool reuses the last released)
    const { rows } = await sql<{ open: boolean }>`SELECT now() <> statement_timestamp() AS open`.execute(database.db);
    expect(rows).toEqual([{ open: false }]);
  });
});

describe('two processes opening the job queue at once on a fresh PostgreSQL database', () => {
  it('both start, and both can query afterwards', { timeout: 60_000 }, async () => {
    const server = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
    const name = `cible_queue_start_${randomBytes(5).toString('hex')}`;
    const url = databaseUrlFor(server, name);
    const admin = adminPool(server);
    await admin.query(`CREATE DATABASE ${name}`);
    toClose.push(async () => {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    });
    // one connection each, as on the embedded database
    const handle = (): DatabaseHandle => {
      const pool = new pg.Pool({ connectionString: url, max: 1 });
      // the database is dropped at the end: its idle connections are ended by the server
      pool.on('error', () => undefined);
      const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
      return { engine: 'postgres', db, pool, control: db, isOwner: () => false, close: () => db.destroy() };
    };
    const contextOf = (database: DatabaseHandle): AppContext => ({
      config: loadConfig({ DATABASE_URL: url }),
      logger: captureLogger().logger,
      clock: { now: () => new Date() },
      database,
      stop: () => database.close(),
    });
    const contexts = [contextOf(handle()), contextOf(handle())];
    toClose.push(async () => {
      for (const context of contexts) await context.stop();
    });
    const opened = await Promise.allSettled(contexts.map((context) => openJobQueue(context)));
    for (const outcome of opened)
      if (outcome.status === 'fulfilled') toClose.push(() => outcome.value.stop({ graceful: false, timeoutMs: 1000 }));
    expect(opened.map((outcome) => (outcome.status === 'rejected' ? String(outcome.reason) : 'started'))).toEqual(['started', 'started']);
    for (const context of contexts) {
      const { rows } = await sql<{ open: boolean }>`SELECT now() <> statement_timestamp() AS open`.execute(context.database.db);
      expect(rows).toEqual([{ open: false }]);
    }
  });
});
