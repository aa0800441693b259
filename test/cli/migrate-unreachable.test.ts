import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { DatabaseUnreachableError, migrateToLatest } from '../../src/db/migrate.ts';

// "database migration failed" was printed for any connection failure: a database that cannot
// be reached is said as such, with where it was tried, and no migration is blamed.

describe('migrating a database that cannot be reached', () => {
  it('says the database is unreachable and where, not that a migration failed', async () => {
    // port 1 on the loopback: nothing listens there, the connection is refused at once
    const db = new Kysely<unknown>({
      dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:1/none', max: 1 }) }),
    });
    try {
      const error = await migrateToLatest(db).then(
        () => null,
        (failure: Error) => failure,
      );
      expect(error).toBeInstanceOf(DatabaseUnreachableError);
      expect(error?.message).toMatch(/^the database is unreachable at 127\.0\.0\.1:1 \(ECONNREFUSED/);
      expect(error?.message).not.toMatch(/migration failed/);
    } finally {
      await db.destroy();
    }
  });
});
