import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { ImportFileError } from '../../src/imports/csv-source.ts';
import { importOppositionList, type OppositionImportRequest } from '../../src/opposition/opposition.import.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { captureLogger } from '../helpers/silent-logger.ts';
import { NOW } from '../imports/import.fixtures.ts';

/*
 * Rule 6: opposition lists (Bloctel, Robinson-type, the company's own) are imported
 * as SHA-256 hashes of normalised values (E.164 phones, lower-cased emails), a new
 * import replaces the list of that name at once, and bad input writes nothing.
 */

let database: DatabaseHandle;
const files = tempFolder();

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database?.close());

// ---------------------------------------------------------------- helpers

/** SHA-256 written out here, independently of the code under test. */
const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest('hex');

let fileNumber = 0;
function importList(content: string | Buffer, request: Partial<Omit<OppositionImportRequest, 'file'>> & { name: string; channel: string }) {
  fileNumber += 1;
  return importOppositionList(
    { database, logger: captureLogger().logger, now: NOW, defaultPhoneCountry: 'FR' },
    { listDate: new Date('2026-05-30T00:00:00Z'), ...request, file: files.write(`list-${fileNumber}.csv`, content) },
  );
}

async function listRow(name: string) {
  return database.db.selectFrom('opposition_lists').selectAll().where('name', '=', name).executeTakeFirst();
}

async function entryHashes(name: string): Promise<string[]> {
  const rows = await database.db
    .selectFrom('opposition_entries as e')
    .innerJoin('opposition_lists as l', 'l.id', 'e.list_id')
    .select('e.value_hash')
    .where('l.name', '=', name)
    .orderBy('e.value_hash')
    .execute();
  return rows.map((row) => row.value_hash);
}

/** Every row of the opposition tables and of the audit log, to prove that a refused import changed nothing. */
async function oppositionTables(): Promise<{ lists: unknown[]; entries: unknown[]; auditEntries: number }> {
  const lists = await database.pool.query('SELECT * FROM opposition_lists ORDER BY id');
  const entries = await database.pool.query('SELECT * FROM opposition_entries ORDER BY list_id, value_hash');
  const audit = await database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM audit_log`);
  return { lists: lists.rows, entries: entries.rows, auditEntries: audit.rows[0]!.n };
}

/** The text of every stored row of the opposition tables and of the audit log, to look for personal data. */
async function everythingStoredAsText(): Promise<string> {
  const { rows } = await database.pool.query<{ text: string }>(
    `SELECT row_to_json(l)::text AS text FROM opposition_lists l
     UNION ALL SELECT row_to_json(e)::text FROM opposition_entries e
     UNION ALL SELECT row_to_json(a)::text FROM audit_log a`,
  );
  return rows
    .map((row) => row.text)
    .join('\n')
    .toLowerCase();
}

const sorted = (values: string[]) => [...values].sort();

/** Expects a file-level refusal with `message`, and no change at all in the opposition tables. */
async function expectRefusedWhole(
  content: string | Buffer,
  request: Partial<Omit<OppositionImportRequest, 'file'>> & { name: string; channel: string },
  message: RegExp,
): Promise<void> {
  const before = await oppositionTables();
  const attempt = importList(content, request);
  await expect(attempt).rejects.toBeInstanceOf(ImportFileError);
  await expect(attempt).rejects.toThrow(message);
  expect(await oppositionTables()).toEqual(before);
}

// ---------------------------------------------------------------- the tests (in order: they share one database)

describe('opposition list import: normalised, hashed values', () => {
  it('reads a CSV with a value column: phone numbers in any French format become one E.164 hash each', async () => {
    const report = await importList(
      csv(
        'value,comment',
        '06 39 98 00 01,written as on a form',
        '+33 6 39 98 00 02,international with spaces',
        '06.39.98.00.03,dotted',
        '0033639980004,00 prefix',
        '+33639980001,the first number again in E.164',
        '01 99 00 00 05,landline',
      ),
      { name: 'bloctel', channel: 'phone' },
    );
    expect(report).toMatchObject({
      status: 'committed',
      name: 'bloctel',
      channel: 'phone',
      listDate: '2026-05-30',
      rowsRead: 6,
      entries: 5,
      previousEntries: 0,
      rejected: 0,
    });
    const expected = ['+33639980001', '+33639980002', '+33639980003', '+33639980004', '+33199000005'].map(sha256);
    expect(await entryHashes('bloctel')).toEqual(sorted(expected));
    const list = await listRow('bloctel');
    expect(list).toMatchObject({ id: report.listId, channel: 'phone', entry_count: 5, imported_at: NOW });
  });

  it('reads a file of bare values, the first line included: emails lower-cased and trimmed', async () => {
    const report = await importList(
      csv('  Alice.Martin@Example.COM', 'bruno.petit@example.com  ', 'BRUNO.PETIT@example.com', 'chloe.roux@example.com'),
      {
        name: 'robinson-email',
        channel: 'email',
      },
    );
    expect(report).toMatchObject({ status: 'committed', rowsRead: 4, entries: 3, rejected: 0 });
    expect(await entryHashes('robinson-email')).toEqual(
      sorted(['alice.martin@example.com', 'bruno.petit@example.com', 'chloe.roux@example.com'].map(sha256)),
    );
  });

  it('stores only hashes: no raw or normalised value appears in the opposition tables or the audit log', async () => {
    const stored = await everythingStoredAsText();
    for (const value of [
      '06 39 98 00 01',
      '0639980001',
      '+33639980001',
      '639980001',
      '06.39.98.00.03',
      '0033639980004',
      '199000005',
      'alice.martin@example.com',
      'bruno.petit',
      'chloe.roux',
      'example.com',
    ]) {
      expect(stored, value).not.toContain(value.toLowerCase());
    }
    const hashes = await database.db.selectFrom('opposition_entries').select('value_hash').execute();
    expect(hashes.every((row) => /^[0-9a-f]{64}$/.test(row.value_hash))).toBe(true);
  });

  it('replaces the previous version of a list in one go: old entries gone, counts right, same list', async () => {
    const previous = await listRow('bloctel');
    const report = await importList(csv('value', '06 39 98 00 02', '06 39 98 00 09'), {
      name: 'bloctel',
      channel: 'phone',
      listDate: new Date('2026-05-31T00:00:00Z'),
    });
    expect(report).toMatchObject({ status: 'committed', listId: previous!.id, entries: 2, previousEntries: 5 });
    expect(await entryHashes('bloctel')).toEqual(sorted(['+33639980002', '+33639980009'].map(sha256)));
    const list = await listRow('bloctel');
    expect(list).toMatchObject({ id: previous!.id, entry_count: 2 });
    const listDate = await database.pool.query<{ day: string }>(
      `SELECT list_date::text AS day FROM opposition_lists WHERE name = 'bloctel'`,
    );
    expect(listDate.rows[0]!.day).toBe('2026-05-31');
    // the other list is untouched
    expect(await entryHashes('robinson-email')).toHaveLength(3);
    const { rows } = await database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM opposition_lists WHERE name = 'bloctel'`);
    expect(rows[0]!.n).toBe(1);
  });
});

describe('opposition list import: bad input is refused whole, naming the line', () => {
  it('refuses malformed phone numbers, naming each line, and writes nothing', async () => {
    const before = await oppositionTables();
    const report = await importList(csv('value', '06 39 98 00 06', 'call me maybe', '12', '+33 6 39 98 00 07'), {
      name: 'bloctel',
      channel: 'phone',
    });
    expect(report).toMatchObject({ status: 'rejected', listId: null, rowsRead: 4, rejected: 2, entries: 0 });
    expect(report.rejects).toEqual([
      { line: 3, field: 'value', message: expect.stringMatching(/^"call me maybe" is not a (valid|possible) phone number$/) },
      { line: 4, field: 'value', message: expect.stringMatching(/^"12" is not a (valid|possible) phone number$/) },
    ]);
    expect(await oppositionTables()).toEqual(before);
  });

  it('refuses malformed emails in a bare file, counting the first line as line 1, and writes nothing', async () => {
    const before = await oppositionTables();
    const report = await importList(csv('not-an-email', 'david.leroy@example.com', 'emma@', 'farid benali@example.com'), {
      name: 'robinson-email',
      channel: 'email',
    });
    expect(report).toMatchObject({ status: 'rejected', listId: null, rowsRead: 4, rejected: 3 });
    expect(report.rejects.map((reject) => reject.line)).toEqual([1, 3, 4]);
    expect(report.rejects[0]!.message).toBe('"not-an-email" is not a valid email address');
    expect(await oppositionTables()).toEqual(before);
  });

  it('with skipInvalid imports the good values and reports the bad ones', async () => {
    const report = await importList(csv('value', 'emma.moreau@example.com', 'emma@', 'Farid.Benali@Example.com'), {
      name: 'company-suppression',
      channel: 'email',
      skipInvalid: true,
    });
    expect(report).toMatchObject({ status: 'committed', rowsRead: 3, entries: 2, rejected: 1 });
    expect(report.rejects).toEqual([{ line: 3, field: 'value', message: '"emma@" is not a valid email address' }]);
    expect(await entryHashes('company-suppression')).toEqual(sorted(['emma.moreau@example.com', 'farid.benali@example.com'].map(sha256)));
    expect(await listRow('company-suppression')).toMatchObject({ channel: 'email', entry_count: 2 });
  });

  it('refuses an unknown channel', async () => {
    await expectRefusedWhole(csv('value', '06 39 98 00 06'), { name: 'bloctel-fax', channel: 'fax' }, /^unknown channel "fax"$/);
  });

  it('refuses a postal list, which cannot be matched against contacts', async () => {
    await expectRefusedWhole(
      csv('value', '12 rue de la Paix, 75002 Paris'),
      { name: 'robinson-postal', channel: 'postal' },
      /^channel "postal" is reached by postal_address, which opposition lists cannot match$/,
    );
  });

  it('refuses a list date in the future', async () => {
    await expectRefusedWhole(
      csv('value', '06 39 98 00 06'),
      { name: 'bloctel', channel: 'phone', listDate: new Date('2026-06-02T00:00:00Z') },
      /--list-date 2026-06-02 is in the future/,
    );
  });

  it('refuses an empty file, and a file with a header and no value', async () => {
    await expectRefusedWhole('', { name: 'bloctel', channel: 'phone' }, /the file is empty/);
    await expectRefusedWhole(csv('value'), { name: 'bloctel', channel: 'phone' }, /^the list holds no values$/);
  });

  it('refuses a bad list name', async () => {
    for (const name of ['Bloctel', 'bloctel 2026', '', '-bloctel', 'b'.repeat(64)]) {
      await expectRefusedWhole(
        csv('value', '06 39 98 00 06'),
        { name, channel: 'phone' },
        /must be lower-case letters, digits, - or _ \(at most 63\)/,
      );
    }
  });

  it('refuses an existing list name with another channel, leaving that list as it was', async () => {
    await expectRefusedWhole(
      csv('value', 'gina.costa@example.com'),
      { name: 'bloctel', channel: 'email' },
      /^list "bloctel" is a list for channel phone; import a list for channel email under another name$/,
    );
    await expectRefusedWhole(
      csv('value', '06 39 98 00 06'),
      { name: 'robinson-email', channel: 'sms' },
      /^list "robinson-email" is a list for channel email; import a list for channel sms under another name$/,
    );
    expect(await entryHashes('bloctel')).toEqual(sorted(['+33639980002', '+33639980009'].map(sha256)));
  });

  // a corrupted download replacing Bloctel would silently open the phone channel to every opposed number
  it('with skipInvalid, refuses a file in which no value is valid and keeps the previous list', async () => {
    await importList(csv('value', '06 39 98 00 10', '06 39 98 00 11'), { name: 'company-phone-suppression', channel: 'phone' });
    const before = await oppositionTables();
    const attempt = await importList(csv('value', 'garbage', 'n/a'), {
      name: 'company-phone-suppression',
      channel: 'phone',
      skipInvalid: true,
    }).catch((error: unknown) => error);
    expect(attempt instanceof ImportFileError || (attempt as { status?: string }).status === 'rejected').toBe(true);
    expect(await oppositionTables()).toEqual(before);
  });
});
