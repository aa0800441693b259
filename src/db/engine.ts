import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { DatabaseTarget } from '../config.ts';
import type { Database } from './database.ts';

export type Engine = 'postgres' | 'pglite';

/** One open database: the Kysely handle, the pg pool under it, and how to close both. */
export interface DatabaseHandle {
  engine: Engine;
  db: Kysely<Database>;
  pool: pg.Pool;
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
  return { engine: 'postgres', db, pool, close: () => db.destroy() };
}

/**
 * Embedded PostgreSQL (PGlite, WASM) served on a private Unix socket so that the
 * same `pg` code runs on both engines. PGlite runs one transaction at a time:
 * inside a transaction every query must go through that transaction's handle.
 * `dataDir` may be `memory://` for a throw-away database.
 */
async function openPglite(dataDir: string): Promise<DatabaseHandle> {
  if (!dataDir.startsWith('memory://')) mkdirSync(dataDir, { recursive: true });
  const pglite = await PGlite.create(dataDir);
  const socketDir = mkdtempSync(join(tmpdir(), 'cible-pglite-'));
  const server = new PGLiteSocketServer({
    db: pglite,
    path: join(socketDir, '.s.PGSQL.5432'),
    // the measured default of 1 drops a pool's second connection
    maxConnections: 16,
  });
  await server.start();
  // One connection: the socket server interleaves protocol messages, not whole queries or
  // transactions, so a second connection's statement could land inside the first one's
  // transaction (seen: a run inserted by the API inside a worker's open transaction). With one
  // connection every query and transaction runs whole, one after the other.
  const pool = ignoreIdleClientErrors(
    new pg.Pool({ host: socketDir, port: 5432, user: 'postgres', database: 'postgres', max: 1, types: typeParsers }),
  );
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    engine: 'pglite',
    db,
    pool,
    async close() {
      await db.destroy();
      await server.stop();
      await pglite.close();
      rmSync(socketDir, { recursive: true, force: true });
    },
  };
}
