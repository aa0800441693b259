import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DatabaseHandle, openDatabase } from '../../src/db/engine.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { erase } from '../../src/rights/rights.service.ts';
import { adminPool, databaseUrlFor } from '../helpers/postgres.ts';
import { TEST_TOMBSTONE_KEYS } from '../helpers/tombstone-keys.ts';
import { NOW } from '../imports/import.fixtures.ts';
import { contactIdOf, NEIGHBOUR, personalValues, SUBJECT, seedExport, seedLiveScores, seedPeople } from '../rights/rights.fixtures.ts';

/*
 * `cible exports show` and `cible exports verify` on a list one of whose members was erased
 * since: the manifest still verifies and shows nothing that identifies them (the embedded
 * database in a data dir of its own, or a fresh PostgreSQL database when the run uses PostgreSQL).
 */

const run = promisify(execFile);
const dataDir = mkdtempSync(join(tmpdir(), 'cible-manifests-cli-'));
const serverUrl = process.env.DATABASE_URL;
const databaseName = `cible_manifests_cli_${randomBytes(5).toString('hex')}`;
const target = serverUrl
  ? { kind: 'postgres' as const, url: databaseUrlFor(serverUrl, databaseName) }
  : { kind: 'pglite' as const, dataDir: join(dataDir, 'pgdata') };
const env = { ...process.env, DATABASE_URL: serverUrl ? target.url : '', CIBLE_DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
const cible = (...args: string[]) => run('node', ['bin/cible.js', ...args], { env, timeout: 120_000 });
let exportId: string;

async function withDatabase<T>(work: (database: DatabaseHandle) => Promise<T>): Promise<T> {
  const database = await openDatabase(target);
  try {
    return await work(database);
  } finally {
    await database.close();
  }
}

beforeAll(async () => {
  if (serverUrl) {
    const admin = adminPool(serverUrl);
    await admin.query(`CREATE DATABASE ${databaseName}`);
    await admin.end();
  }
  await withDatabase(async (database) => {
    await migrateToLatest(database.db);
    await seedPeople(database);
    const ids = [await contactIdOf(database, SUBJECT.ref), await contactIdOf(database, NEIGHBOUR.ref)];
    exportId = await seedExport(database, await seedLiveScores(database, ids), [SUBJECT, NEIGHBOUR]);
    await erase(database.db, SUBJECT.ref, 'test', NOW, TEST_TOMBSTONE_KEYS);
  });
}, 120_000);

afterAll(async () => {
  rmSync(dataDir, { recursive: true, force: true });
  if (!serverUrl) return;
  const admin = adminPool(serverUrl);
  await admin.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
  await admin.end();
});

describe('cible exports, after a member was erased', { timeout: 120_000 }, () => {
  it('verifies the list, and shows it without the erased person', async () => {
    const verified = await cible('exports', 'verify', exportId);
    expect(verified.stdout).toMatch(new RegExp(`^valid: export ${exportId}, 2 members \\(1 erased since\\)`));

    const { stdout } = await cible('exports', 'show', exportId);
    const manifest = JSON.parse(stdout);
    expect(manifest).toMatchObject({ hashScheme: 2, header: { exportId, memberCount: 2 } });
    expect(manifest.members.map((member: { externalId: string | null }) => member.externalId)).toEqual([null, NEIGHBOUR.ref]);
    expect(personalValues(SUBJECT).filter((needle) => stdout.includes(needle))).toEqual([]);
  });
});
