import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { UserError } from '../../src/cli/cli-context.ts';
import { type ConflictsJson, type ResolveJson, registerIdentityCommands, type SplitJson } from '../../src/cli/identities.command.ts';
import { fixedClock } from '../../src/clock.ts';
import { type Config, ConfigError, loadConfig } from '../../src/config.ts';
import type { AppContext } from '../../src/context.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { DomainError } from '../../src/errors.ts';
import { DEFAULT_IDENTITY_POLICY, refreshPersonConsentState } from '../../src/identities/resolution.repository.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { captureLogger } from '../helpers/silent-logger.ts';
import { importFile, NOW } from '../imports/import.fixtures.ts';

/*
 * `cible identities resolve|conflicts|split` (issue 19), in-process on the test's database, the
 * commands parsed by commander as on the command line, what they print captured; then through
 * the real command line once, for the configuration and the exit code.
 */

let database: DatabaseHandle;
let config: Config;
const files = tempFolder();
const CONTACT_HEADER = 'external_id,email,phone,first_name,last_name,created_at';
/** what must never be printed: the emails and phone numbers of the base */
const PERSONAL = /@|example|famille|39 ?98|\+33/;

beforeAll(async () => {
  database = await createTestDatabase();
  config = loadConfig({});
  const report = await importFile(
    database,
    'contacts',
    files.write(
      'contacts.csv',
      csv(
        CONTACT_HEADER,
        'SHOP-1,jeanne.durand@example.com,+33639981001,Jeanne,Durand,2025-01-01',
        'CRM-77,Jeanne.Durand@Example.com,06 39 98 10 01,Jeanne,Durand,2025-02-01',
        'LOY-5,,+33639981001,Jeanne,Durand,2025-03-01',
        'HH-1,info@famille-leroy.fr,,Marc,Leroy,2025-01-01',
        'HH-2,Info@famille-leroy.fr,,Julie,Leroy,2025-01-01',
        'LN-1,lea.noir@example.com,,Léa,Noir,2025-01-01',
        'LN-2,lea.noir@example.com,,Théo,Noir,2025-01-01',
        'PR-1,paul@roy.example.com,,Paul,Roy,2025-01-01',
        'PR-2,paul@roy.example.com,,Paul,Roy,2025-01-02',
      ),
    ),
  );
  expect(report).toMatchObject({ status: 'committed', rejected: 0 });
  // as in a base imported before persons existed: every record a person of its own
  const { rows } = await database.pool.query<{ id: number }>(
    `UPDATE contacts SET person_id = id WHERE external_id IN ('CRM-77', 'LOY-5', 'PR-2') RETURNING id`,
  );
  const { rows: first } = await database.pool.query<{ id: number }>(`SELECT id FROM contacts WHERE external_id IN ('SHOP-1', 'PR-1')`);
  await refreshPersonConsentState(
    database.db,
    [...rows, ...first].map((row) => Number(row.id)),
  );
}, 120_000);
afterAll(() => database?.close());
afterEach(() => vi.restoreAllMocks());

function contextWith(overrides: Partial<Config> = {}): AppContext {
  return {
    config: { ...config, ...overrides },
    logger: captureLogger().logger,
    clock: fixedClock(NOW),
    database,
    stop: async () => undefined,
  };
}

/** Runs `cible <args>` in-process on the test database; what it printed on stdout. */
async function cible(args: string[], context = contextWith()): Promise<string> {
  const program = new Command('cible').exitOverride();
  registerIdentityCommands(program, (run) => run(context));
  const printed: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...values: unknown[]) => {
    printed.push(values.map(String).join(' '));
  });
  await program.parseAsync(['node', 'cible', ...args]);
  return printed.join('\n');
}

async function refusal(...args: string[]): Promise<Error> {
  const error = await cible(args).then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error, args.join(' ')).toBeInstanceOf(Error);
  return error as Error;
}

/** external id -> the external id of its person's first record */
async function persons(): Promise<Record<string, string>> {
  const { rows } = await database.pool.query<{ external_id: string; person: string }>(
    `SELECT c.external_id, p.external_id AS person FROM contacts c JOIN contacts p ON p.id = c.person_id ORDER BY c.id`,
  );
  return Object.fromEntries(rows.map((row) => [row.external_id, row.person]));
}

const UNLINKED = {
  'SHOP-1': 'SHOP-1',
  'CRM-77': 'CRM-77',
  'LOY-5': 'LOY-5',
  'HH-1': 'HH-1',
  'HH-2': 'HH-2',
  'LN-1': 'LN-1',
  'LN-2': 'LN-2',
  'PR-1': 'PR-1',
  'PR-2': 'PR-2',
};

async function lastAudit(action: string) {
  const { rows } = await database.pool.query<{ actor: string; at: Date; details: Record<string, unknown> }>(
    'SELECT actor, at, details FROM audit_log WHERE action = $1 ORDER BY id DESC LIMIT 1',
    [action],
  );
  return rows[0];
}

describe('cible identities resolve', () => {
  it('--dry-run says what would be linked and why, changes nothing, prints no email or phone, and is audited with counts', async () => {
    const text = await cible(['identities', 'resolve', '--dry-run']);
    const lines = text.split('\n');
    expect(lines[0]).toBe('dry run, nothing changed: 9 records examined, persons 9 → 6, 3 records would change person');
    expect(lines[1]!.trim().split(/\s{2,}/)).toEqual(['record', 'person (first record)', 'was', 'via']);
    expect(lines.slice(2).map((line) => line.trim().split(/\s{2,}/))).toEqual([
      ['CRM-77', 'SHOP-1', 'CRM-77', 'email, phone'],
      ['LOY-5', 'SHOP-1', 'LOY-5', 'phone'],
      ['PR-2', 'PR-1', 'PR-2', 'email'],
    ]);
    expect(text).not.toMatch(PERSONAL);
    expect(await persons()).toEqual(UNLINKED);
    const audit = await lastAudit('identities.resolve');
    expect(audit).toMatchObject({ at: NOW, actor: expect.stringMatching(/^cli/) });
    expect(audit!.details).toEqual({ dryRun: true, examined: 9, personsBefore: 9, personsAfter: 6, relinked: 3 });
  });

  it('caps the list with --limit and counts the rest, in text and JSON', async () => {
    const text = await cible(['identities', 'resolve', '--dry-run', '--limit', '1']);
    expect(text).toMatch(/\n {2}CRM-77 +SHOP-1 +CRM-77 +email, phone\n {2}… and 2 more records: a larger --limit shows them$/);
    const json = JSON.parse(await cible(['identities', 'resolve', '--dry-run', '--limit', '2', '--json'])) as ResolveJson;
    expect(json).toEqual({
      dryRun: true,
      examined: 9,
      personsBefore: 9,
      personsAfter: 6,
      changed: 3,
      records: [
        { record: 'CRM-77', person: 'SHOP-1', previousPerson: 'CRM-77', via: ['email', 'phone'] },
        { record: 'LOY-5', person: 'SHOP-1', previousPerson: 'LOY-5', via: ['phone'] },
      ],
      more: 1,
    });
    const error = await refusal('identities', 'resolve', '--limit', '0');
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe('--limit expects a number from 1 to 10,000,000, got 0');
  });

  it('links the whole base, audited; a second run finds nothing to change', async () => {
    const text = await cible(['identities', 'resolve']);
    expect(text.split('\n')[0]).toBe('9 records examined, persons 9 → 6, 3 records changed person');
    expect(await persons()).toEqual({ ...UNLINKED, 'CRM-77': 'SHOP-1', 'LOY-5': 'SHOP-1', 'PR-2': 'PR-1' });
    expect((await lastAudit('identities.resolve'))!.details).toMatchObject({ dryRun: false, relinked: 3 });
    expect(await cible(['identities', 'resolve'])).toBe('9 records examined, persons 6 → 6, 0 records changed person');
  });
});

describe('cible identities conflicts', () => {
  it('lists the identifiers shared by records that were not linked, with why and the records persons', async () => {
    const text = await cible(['identities', 'conflicts']);
    const lines = text.split('\n');
    expect(lines[0]).toBe('2 identity conflicts left for review (records not linked)');
    expect(lines.slice(2).map((line) => line.trim().split(/\s{2,}/))).toEqual([
      ['email', 'generic address', 'HH-1 (HH-1), HH-2 (HH-2)'],
      ['email', 'different names', 'LN-1 (LN-1), LN-2 (LN-2)'],
    ]);
    expect(text).not.toMatch(PERSONAL);
    expect(await persons()).toMatchObject({ 'HH-1': 'HH-1', 'HH-2': 'HH-2' });
  });

  it('follows the configured list of generic addresses; --limit and --json', async () => {
    const context = contextWith({ identityPolicy: { ...config.identityPolicy, genericEmailLocalParts: ['paul'] } });
    const json = JSON.parse(await cible(['identities', 'conflicts', '--json', '--limit', '1'], context)) as ConflictsJson;
    // info@ is no longer generic with this list, but its holders bear different names
    expect(json.total).toBe(3);
    expect(json.more).toBe(2);
    expect(json.conflicts).toHaveLength(1);
    const all = JSON.parse(await cible(['identities', 'conflicts', '--json'], context)) as ConflictsJson;
    expect(all.conflicts).toContainEqual({
      identifier: 'email',
      reason: 'generic address',
      records: [
        { record: 'PR-1', person: 'PR-1' },
        { record: 'PR-2', person: 'PR-1' },
      ],
    });
  });
});

describe('cible identities split', () => {
  it('takes records out of a person named by any of its records, and resolution never links them back', async () => {
    const text = await cible(['identities', 'split', 'CRM-77', '--records', 'LOY-5', '--reason', 'a shared family phone']);
    const lines = text.split('\n');
    expect(lines[0]).toBe('person SHOP-1 split; the scores of 2 persons are dropped until the next run');
    expect(lines.slice(2).map((line) => line.trim().split(/\s{2,}/))).toEqual([
      ['SHOP-1', 'SHOP-1'],
      ['CRM-77', 'SHOP-1'],
      ['LOY-5', 'LOY-5'],
    ]);
    expect(text).not.toMatch(/family/);
    expect(await persons()).toMatchObject({ 'SHOP-1': 'SHOP-1', 'CRM-77': 'SHOP-1', 'LOY-5': 'LOY-5' });
    const audit = await lastAudit('identities.split');
    expect(audit!.details).toMatchObject({ reason: 'a shared family phone' });
    expect(await cible(['identities', 'resolve', '--dry-run'])).toMatch(/persons 7 → 7, 0 records would change person$/);
  });

  it('prints JSON', async () => {
    const json = JSON.parse(
      await cible(['identities', 'split', 'PR-2', '--records', 'PR-2', '--reason', 'two Paul Roys', '--json']),
    ) as SplitJson;
    expect(json).toEqual({
      person: 'PR-1',
      records: [
        { record: 'PR-1', person: 'PR-1' },
        { record: 'PR-2', person: 'PR-2' },
      ],
      scoresDroppedFor: 2,
    });
  });

  it('refuses unknown ids, records of another person, every record of the person, and no reason, naming no external id', async () => {
    const cases: Array<[string[], string, RegExp]> = [
      [['NOPE', '--records', 'CRM-77', '--reason', 'x'], 'PERSON', /^PERSON is not the external id of a live record$/],
      [
        ['SHOP-1', '--records', 'CRM-77,NOPE', '--reason', 'x'],
        'records',
        /^records has no live record under the external id at position 2$/,
      ],
      [
        ['SHOP-1', '--records', 'HH-1', '--reason', 'x'],
        'records',
        /^records names a record that is not of PERSON's person at position 1$/,
      ],
      [['SHOP-1', '--records', 'SHOP-1,CRM-77', '--reason', 'x'], 'records', /^records names every record of the person \(2\)/],
      [['SHOP-1', '--records', ' , ', '--reason', 'x'], 'records', /^records must name at least one record/],
      [['SHOP-1', '--records', 'CRM-77', '--reason', '  '], 'reason', /^reason is required/],
    ];
    for (const [args, field, message] of cases) {
      const error = await refusal('identities', 'split', ...args);
      expect(error, args.join(' ')).toBeInstanceOf(DomainError);
      expect((error as DomainError).field).toBe(field);
      expect(error.message).toMatch(message);
    }
    for (const args of [
      ['SHOP-1', '--reason', 'x'],
      ['SHOP-1', '--records', 'CRM-77'],
    ]) {
      expect(await refusal('identities', 'split', ...args)).toBeInstanceOf(UserError);
    }
    // nothing was changed by the refusals
    expect(await persons()).toMatchObject({ 'SHOP-1': 'SHOP-1', 'CRM-77': 'SHOP-1', 'HH-1': 'HH-1' });
  });
});

describe('the identity configuration', () => {
  it('reads CIBLE_IDENTITY_GENERIC_EMAILS as lower-case local parts, the built-in list by default', () => {
    expect(loadConfig({}).identityPolicy).toEqual(DEFAULT_IDENTITY_POLICY);
    expect(loadConfig({ CIBLE_IDENTITY_GENERIC_EMAILS: 'contact,no-reply,club.sport' }).identityPolicy).toEqual({
      ...DEFAULT_IDENTITY_POLICY,
      genericEmailLocalParts: ['contact', 'no-reply', 'club.sport'],
    });
    for (const value of ['Info', 'info@', 'info,,contact', 'info, contact']) {
      expect(() => loadConfig({ CIBLE_IDENTITY_GENERIC_EMAILS: value }), value).toThrow(ConfigError);
    }
    expect(() => loadConfig({ CIBLE_IDENTITY_GENERIC_EMAILS: 'info@' })).toThrow(/CIBLE_IDENTITY_GENERIC_EMAILS: must be lower-case/);
  });

  it('is followed by the contacts import and the identities commands on the command line; refusals exit with code 2', {
    timeout: 240_000,
  }, async () => {
    const run = promisify(execFile);
    const dataDir = mkdtempSync(join(tmpdir(), 'cible-identities-cli-'));
    // the embedded database whatever the test run's own engine
    const env = { ...process.env, DATABASE_URL: '', CIBLE_DATA_DIR: dataDir, CIBLE_IDENTITY_GENERIC_EMAILS: 'paul' };
    const command = (...args: string[]) => run('node', ['bin/cible.js', ...args], { env, timeout: 120_000 });
    try {
      const file = files.write(
        'paul.csv',
        csv(CONTACT_HEADER, 'PR-1,paul@roy.example.com,,Paul,Roy,2025-01-01', 'PR-2,Paul@roy.example.com,,Paul,Roy,2025-01-02'),
      );
      await command('import', 'contacts', file);
      const { stdout } = await command('identities', 'conflicts');
      expect(stdout).toMatch(/\n {2}email +generic address +PR-1 \(PR-1\), PR-2 \(PR-2\)\n?$/);
      const refused = await command('identities', 'split', 'PR-1', '--records', 'PR-9', '--reason', 'x').catch((error) => error);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(/error: --records has no live record under the external id at position 1/);
      const badConfig = await run('node', ['bin/cible.js', 'identities', 'conflicts'], {
        env: { ...env, CIBLE_IDENTITY_GENERIC_EMAILS: 'Info@' },
        timeout: 120_000,
      }).catch((error) => error);
      expect(badConfig.code).toBe(2);
      expect(badConfig.stderr).toMatch(/CIBLE_IDENTITY_GENERIC_EMAILS: must be lower-case email local parts/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
