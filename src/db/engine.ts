import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { DatabaseTarget } from '../config.ts';
import type { Database } from './database.ts';
import { openEmbedded, socketTo } from './embedded-owner.ts';

export type Engine = 'postgres' | 'pglite';

/** One open database: the Kysely handle, the pg pool under it, and how to close both. */
export interface DatabaseHandle {
  engine: Engine;
  db: Kysely<Database>;
  pool: pg.Pool;
  /**
   * Short control queries (API key checks, readiness) on connections of their own, so they
   * never queue behind list work holding every connection of `pool`; `db` itself on PGlite,
   * which runs one transaction at a time anyway.
   */
  control: Kysely<Database>;
  /** embedded database: whether this process opened the files (the others connect to it) */
  isOwner(): boolean;
  close(): Promise<void>;
}

const INT8_OID = 20;
const NUMERIC_OID = 1700;
const INT8_ARRAY_OID = 1016;

// Ids (bigint) and money (numeric) come back as numbers: every value we store fits a double exactly.
const parseInt8Array = pg.types.getTypeParser(INT8_ARRAY_OID as Parameters<typeof pg.types.getTypeParser>[0]);
const typeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID || oid === NUMERIC_OID) return (value: string) => Number(value);
    if (oid === INT8_ARRAY_OID) return (value: string) => (parseInt8Array(value) as string[]).map(Number);
    return pg.types.getTypeParser(oid, format);
  },
};

export async function openDatabase(target: DatabaseTarget): Promise<DatabaseHandle> {
  return target.kind === 'postgres' ? openPostgres(target.url) : openPglite(target.dataDir);
}

// An idle client that dies (server restart, database dropped) is discarded by the
// pool and the next query opens a new one; without a listener it would crash the process.
function ignoreIdleClientErrors(pool: pg.Pool): pg.Pool {
  pool.on('error', () => undefined);
  return pool;
}

function openPostgres(url: string): DatabaseHandle {
  // JIT compilation cost more than it saved on every pipeline query measured (1.1 s of a 3.5 s
  // feature query); the feature aggregates sort half a million rows a chunk, spilling at 4 MB.
  const pool = ignoreIdleClientErrors(
    new pg.Pool({ connectionString: url, max: 10, types: typeParsers, options: '-c jit=off -c work_mem=64MB' }),
  );
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const controlPool = ignoreIdleClientErrors(new pg.Pool({ connectionString: url, max: 2, types: typeParsers, options: '-c jit=off' }));
  const control = new Kysely<Database>({ dialect: new PostgresDialect({ pool: controlPool }) });
  return {
    engine: 'postgres',
    db,
    pool,
    control,
    isOwner: () => false,
    async close() {
      await Promise.all([db.destroy(), control.destroy()]);
    },
  };
}

/**
 * Embedded PostgreSQL (PGlite, WASM). The first process to open a data directory owns it
 * and serves it on a local socket; every other process connects to that owner (see
 * embedded-owner.ts), so the same `pg` code runs on both engines and two processes never
 * open the files at once. PGlite runs one transaction at a time: inside a transaction
 * every query must go through that transaction's handle.
 * `dataDir` may be `memory://` for a throw-away database.
 */
async function openPglite(dataDir: string): Promise<DatabaseHandle> {
  const embedded = await openEmbedded(dataDir);
  // One connection per process: a transaction holds the whole backend until it ends, so a
  // second connection of the same process could only wait (or deadlock on its own transaction).
  const pool = ignoreIdleClientErrors(
    new EmbeddedPool({ stream: () => socketTo(embedded.address), user: 'postgres', database: 'postgres', max: 1, types: typeParsers }),
  );
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    engine: 'pglite',
    db,
    pool,
    control: db,
    isOwner: () => embedded.isOwner(),
    async close() {
      await db.destroy();
      await embedded.close();
    },
  };
}

const TAKEOVER_WAIT_MS = 30_000;

/**
 * When the embedded database's owner leaves, another process binds its address and starts
 * serving (a thread to start, a second or two on a loaded machine): a connection asked for in
 * that gap is refused, and waits for the new owner instead of failing the command.
 */
class EmbeddedPool extends pg.Pool {
  override connect(): Promise<pg.PoolClient>;
  override connect(
    callback: (error: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void,
  ): void;
  // biome-ignore lint/suspicious/noConfusingVoidType: the implementation of pg.Pool's own two overloads (a promise, or a callback and void)
  override connect(callback?: Parameters<pg.Pool['connect']>[0]): Promise<pg.PoolClient> | void {
    if (callback) return super.connect(callback);
    return this.connectWhileTakingOver(Date.now() + TAKEOVER_WAIT_MS);
  }

  private async connectWhileTakingOver(deadline: number): Promise<pg.PoolClient> {
    for (;;) {
      try {
        return await super.connect();
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if ((code !== 'ECONNREFUSED' && code !== 'ENOENT') || Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
}
