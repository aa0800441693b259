import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DatabaseHandle, openDatabase } from '../../src/db/engine.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { adminPool, databaseUrlFor } from '../helpers/postgres.ts';
import { SCORED_SKU, seedScoredBase } from './targeting.fixtures.ts';

/*
 * `cible targets` as a marketer scripts it, on a scored base (the embedded database in a
 * data dir of its own, or a fresh PostgreSQL database when the run uses PostgreSQL).
 */

const run = promisify(execFile);
const NOW = new Date();
const dataDir = mkdtempSync(join(tmpdir(), 'cible-targets-cli-'));
const serverUrl = process.env.DATABASE_URL;
const databaseName = `cible_targets_cli_${randomBytes(5).toString('hex')}`;
const target = serverUrl
  ? { kind: 'postgres' as const, url: databaseUrlFor(serverUrl, databaseName) }
  : { kind: 'pglite' as const, dataDir: join(dataDir, 'pgdata') };
const env = { ...process.env, DATABASE_URL: serverUrl ? target.url : '', CIBLE_DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
const cible = (...args: string[]) => run('node', ['bin/cible.js', ...args], { env, timeout: 120_000 });
const failure = (...args: string[]) =>
  cible(...args).then(
    () => {
      throw new Error(`cible ${args.join(' ')} succeeded`);
    },
    (error: { code: number; stderr: string }) => error,
  );

async function withDatabase<T>(work: (database: DatabaseHandle) => Promise<T>): Promise<T> {
  const database = await openDatabase(target);
  try {
    return await work(database);
  } finally {
    await database.close();
  }
}

const exportRows = () => withDatabase((database) => database.db.selectFrom('target_exports').select(['id', 'delivery']).execute());

beforeAll(async () => {
  if (serverUrl) {
    const admin = adminPool(serverUrl);
    await admin.query(`CREATE DATABASE ${databaseName}`);
    await admin.end();
  }
  await withDatabase(async (database) => {
    await migrateToLatest(database.db);
    await seedScoredBase(database, 40, NOW);
  });
}, 120_000);

afterAll(async () => {
  rmSync(dataDir, { recursive: true, force: true });
  if (!serverUrl) return;
  const admin = adminPool(serverUrl);
  await admin.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
  await admin.end();
});

describe('cible targets', { timeout: 120_000 }, () => {
  it('previews a list without recording it, and says so', async () => {
    const { stdout } = await cible('targets', SCORED_SKU, '--channel', 'email', '--top', '5', '--preview');
    expect(stdout).toMatch(/^preview for TG-LAMP \(Desk lamp\) on email/);
    expect(stdout).toMatch(/\s5 {2}to contact \(expected buyers 4\.\d\)/);
    expect(stdout).toMatch(/score threshold 0\.9000 \(the last member's score\)/);
    expect(stdout).toMatch(/no list was recorded, no manifest written and no contact pressure used/);
    const json = JSON.parse((await cible('targets', SCORED_SKU, '--channel', 'email', '--top', '5', '--preview', '--json')).stdout);
    expect(json).toMatchObject({ recorded: false, funnel: { returned: 5 } });
    expect(await exportRows()).toEqual([]);
  });

  it('says how far a list fell short of its expected buyers, and records it as delivered once written', async () => {
    const { stdout, stderr } = await cible('targets', SCORED_SKU, '--channel', 'sms', '--expected-buyers', '500');
    expect(stdout.trim().split('\n')).toHaveLength(21); // the header and the 20 people with an SMS consent
    expect(stderr).toMatch(
      /short of the size asked: asked 500 expected buyers, reached \d+\.\d+ expected buyers: ran out of eligible people/,
    );
    expect(await exportRows()).toEqual([{ id: expect.any(String), delivery: 'delivered' }]);
  });

  it('refuses an unknown option and a preview with --out', async () => {
    const misspelt = await failure('targets', SCORED_SKU, '--channel', 'email', '--tpo', '5');
    expect(misspelt.stderr).toMatch(/unknown option '--tpo'/);
    const previewOut = await failure('targets', SCORED_SKU, '--channel', 'email', '--preview', '--out', join(dataDir, 'x.csv'));
    expect(previewOut.stderr).toMatch(/--out writes a list: a --preview records none/);
    expect(await exportRows()).toHaveLength(1);
  });

  it('reports the refusals of the targeting service by their kind: exit code 2 and the message alone, naming the option at fault', async () => {
    const outOfRange = await failure('targets', SCORED_SKU, '--channel', 'email', '--min-score', '2');
    expect(outOfRange).toMatchObject({ code: 2, stderr: 'error: --min-score must be a probability from 0 to 1\n' });
    const unknownProduct = await failure('targets', 'NOPE-1', '--channel', 'email');
    expect(unknownProduct).toMatchObject({ code: 2, stderr: 'error: no product has the SKU "NOPE-1"\n' });
    const unknownChannel = await failure('eligibility', '--channel', 'pigeon');
    expect(unknownChannel).toMatchObject({ code: 2, stderr: 'error: unknown channel "pigeon"\n' });
    expect(await exportRows()).toHaveLength(1);
  });

  it('names closed channels and the detail a channel needs in the eligibility funnel', async () => {
    const postal = await cible('eligibility', '--channel', 'postal');
    expect(postal.stdout).toMatch(/channel closed: channel postal reaches no one: no postal address is held for contacts/);
    const sms = await cible('eligibility', '--channel', 'sms');
    expect(sms.stdout).toMatch(/\s20 {2}and a mobile number/);
    const refused = await failure('targets', SCORED_SKU, '--channel', 'push', '--top', '5');
    expect(refused.stderr).toMatch(/channel push reaches no one: no push token or device id is held for contacts/);
  });
});
