import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { type DatabaseHandle, openDatabase } from '../../src/db/engine.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { adminPool, databaseUrlFor } from './postgres.ts';

/**
 * A fresh, migrated database for one test file: a clone of the migrated template
 * on PostgreSQL when DATABASE_URL is set, else a new in-memory PGlite.
 * close() drops it.
 */
export async function createTestDatabase(): Promise<DatabaseHandle> {
  const url = process.env.DATABASE_URL;
  const template = inject('templateDatabase');
  if (!url || !template) {
    const database = await openDatabase({ kind: 'pglite', dataDir: 'memory://' });
    await migrateToLatest(database.db);
    return database;
  }
  const name = `cible_test_${randomBytes(6).toString('hex')}`;
  const admin = adminPool(url);
  await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
  const database = await openDatabase({ kind: 'postgres', url: databaseUrlFor(url, name) });
  return {
    ...database,
    async close() {
      await database.close();
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    },
  };
}
