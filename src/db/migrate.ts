import { readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type Kysely, type Migration, type MigrationProvider, type MigrationResultSet, Migrator, sql } from 'kysely';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url));

/**
 * .ts when this runs from the sources (tsx, the test runner), .js when it runs from the build in dist/,
 * whose migrations/ holds the compiled copies: one file per migration is ever loaded.
 */
const MIGRATION_EXTENSION = extname(fileURLToPath(import.meta.url));

// Kysely's FileMigrationProvider imports from inside node_modules, where TypeScript
// files cannot be loaded under the test runner; importing from here works everywhere.
const migrationFiles: MigrationProvider = {
  async getMigrations() {
    const migrations: Record<string, Migration> = {};
    for (const name of await migrationNames()) {
      migrations[name] = (await import(pathToFileURL(join(MIGRATIONS_DIR, `${name}${MIGRATION_EXTENSION}`)).href)) as Migration;
    }
    return migrations;
  },
};

/** The names recorded in the database, the same from the sources and from the build. */
async function migrationNames(): Promise<string[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((file) => /^\d/.test(file) && extname(file) === MIGRATION_EXTENSION).sort();
  return files.map((file) => file.slice(0, -MIGRATION_EXTENSION.length));
}

/**
 * Every command checks the schema first: when each migration is already recorded, one query says
 * so, without loading the migrations or taking the migrator's lock (a CLI command beside a running
 * server starts that much sooner). Otherwise the migrator runs, and says why if it cannot.
 */
async function everyMigrationRecorded(db: Kysely<any>): Promise<boolean> {
  const names = await migrationNames();
  try {
    const { rows } = await sql<{ name: string }>`SELECT name FROM kysely_migration`.execute(db);
    const recorded = new Set(rows.map((row) => row.name));
    return names.every((name) => recorded.has(name));
  } catch {
    return false;
  }
}

function createMigrator(db: Kysely<any>): Migrator {
  return new Migrator({ db, provider: migrationFiles });
}

export class MigrationError extends Error {}

/** The database could not be reached at all: no migration was tried. */
export class DatabaseUnreachableError extends MigrationError {}

/** Brings the schema to the latest migration; returns the names applied now. */
export async function migrateToLatest(db: Kysely<any>): Promise<string[]> {
  if (await everyMigrationRecorded(db)) return [];
  let outcome: MigrationResultSet;
  try {
    outcome = await createMigrator(db).migrateToLatest();
  } catch (error) {
    throw unreachable(error) ?? error;
  }
  return unwrap(outcome.error, outcome.results);
}

// refused, unknown host, timed out, reset; then PostgreSQL's own: no such database, bad password,
// no such role, starting up or shutting down
const CONNECTION_FAILURES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  '3D000',
  '28P01',
  '28000',
  '57P03',
]);

interface ConnectionFailure {
  code?: string;
  address?: string;
  port?: number;
  hostname?: string;
  message?: string;
  errors?: ConnectionFailure[];
}

/** A connection failure said as such, with where it tried (host and port, never the URL: it may hold a password). */
function unreachable(error: unknown): DatabaseUnreachableError | undefined {
  const failure = error as ConnectionFailure | undefined;
  const first = failure?.errors?.[0] ?? failure;
  if (!first?.code || !CONNECTION_FAILURES.has(first.code)) return undefined;
  const where = first.address ? `${first.address}${first.port ? `:${first.port}` : ''}` : first.hostname;
  return new DatabaseUnreachableError(
    `the database is unreachable${where ? ` at ${where}` : ''} (${first.code}: ${first.message ?? failure?.message ?? 'no detail'}); no migration was tried: check DATABASE_URL and that the server runs`,
  );
}

/** Names of migrations present in migrations/ but not yet applied. */
export async function pendingMigrations(db: Kysely<any>): Promise<string[]> {
  const migrations = await createMigrator(db).getMigrations();
  return migrations.filter((migration) => !migration.executedAt).map((migration) => migration.name);
}

function unwrap(error: unknown, results: MigrationResultSet['results']): string[] {
  if (error) {
    const connection = unreachable(error);
    if (connection) throw connection;
    const failed = results?.find((result) => result.status === 'Error');
    const where = failed ? ` in migration ${failed.migrationName}` : '';
    throw new MigrationError(`database migration failed${where}: ${(error as Error).message ?? String(error)}`);
  }
  return (results ?? []).filter((result) => result.status === 'Success').map((result) => result.migrationName);
}
