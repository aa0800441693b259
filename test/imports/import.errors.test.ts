import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { ImportFileError } from '../../src/imports/csv-source.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { CONTACTS_CSV, importFile, PRODUCTS_CSV, tableCounts } from './import.fixtures.ts';

let database: DatabaseHandle;
const files = tempFolder();
const PURCHASE_HEADER = 'order_id,external_id,sku,quantity,unit_price,purchased_at';

beforeAll(async () => {
  database = await createTestDatabase();
  await importFile(database, 'products', files.write('products.csv', csv(...PRODUCTS_CSV)));
  await importFile(database, 'contacts', files.write('contacts.csv', csv(...CONTACTS_CSV)));
});
afterAll(() => database.close());

/** Imports a file that must be refused whole, and checks that no table changed. */
async function expectRefused(kind: 'contacts' | 'products' | 'purchases' | 'consents', content: string | Buffer, name = `${kind}.csv`) {
  const before = await tableCounts(database);
  const report = await importFile(database, kind, files.write(name, content));
  expect(report.status).toBe('rejected');
  expect(report.inserted + report.updated).toBe(0);
  expect(await tableCounts(database)).toEqual(before);
  const recorded = await database.pool.query(`SELECT status, rows_rejected FROM imports WHERE id = $1`, [report.importId]);
  expect(recorded.rows[0]).toEqual({ status: 'rejected', rows_rejected: report.rejected });
  return report;
}

async function expectFileError(kind: 'contacts' | 'purchases', content: string | Buffer, name: string, message: RegExp) {
  const before = await tableCounts(database);
  await expect(importFile(database, kind, files.write(name, content))).rejects.toThrow(message);
  await expect(importFile(database, kind, files.write(name, content))).rejects.toBeInstanceOf(ImportFileError);
  expect(await tableCounts(database)).toEqual(before);
}

describe('CSV import, bad input: clear messages naming the line, nothing half-imported', () => {
  it('refuses a header that lacks a required column, naming it and the columns found', async () => {
    await expectFileError(
      'purchases',
      csv('order,external_id,sku,quantity,unit_price,purchased_at', 'O1,C1,SKU-1,1,1.00,2025-01-01'),
      'bad-header.csv',
      /line 1: missing required column\(s\) order_id; the header has: order, external_id/,
    );
  });

  it('refuses an empty file', async () => {
    await expectFileError('contacts', '', 'empty.csv', /the file is empty: expected a header line with the columns external_id,created_at/);
  });

  it('refuses a file that does not exist', async () => {
    await expect(importFile(database, 'contacts', `${files.dir}/missing.csv`)).rejects.toThrow(/cannot read .*missing\.csv: ENOENT/);
  });

  it('refuses a binary file', async () => {
    const binary = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48]);
    await expectFileError('contacts', binary, 'image.png', /not CSV text: it holds binary content/);
  });

  it('refuses a --map naming a column the file does not have', async () => {
    await expect(
      importFile(database, 'contacts', files.write('map.csv', csv(...CONTACTS_CSV)), { columnMap: { CustomerID: 'external_id' } }),
    ).rejects.toThrow(/--map names column "CustomerID", which the header does not have/);
  });

  it('malformed dates name the line and the value', async () => {
    const report = await expectRefused(
      'purchases',
      csv(PURCHASE_HEADER, 'O1,C1,SKU-1,1,1.00,2025-01-01', 'O2,C1,SKU-1,1,1.00,31/12/2025', 'O3,C1,SKU-1,1,1.00,2025-02-30'),
    );
    expect(report.rejects).toEqual([
      {
        line: 3,
        field: 'purchased_at',
        message: '"31/12/2025" is not an ISO 8601 date (expected e.g. 2024-03-31 or 2024-03-31T14:05:00Z)',
      },
      { line: 4, field: 'purchased_at', message: '"2025-02-30" is not a real date' },
    ]);
  });

  it('negative or non-numeric amounts and quantities name the line', async () => {
    const report = await expectRefused(
      'purchases',
      csv(
        PURCHASE_HEADER,
        'O1,C1,SKU-1,1,-2.00,2025-01-01',
        'O2,C1,SKU-1,abc,1.00,2025-01-01',
        'O3,C1,SKU-1,1,"1,50",2025-01-01',
        'O4,C1,SKU-1,-3,1.00,2025-01-01',
      ),
    );
    expect(report.rejects.map((reject) => [reject.line, reject.field])).toEqual([
      [2, 'unit_price'],
      [3, 'quantity'],
      [4, 'unit_price'],
      [5, 'quantity'],
    ]);
    expect(report.rejects[0]!.message).toBe('-2.00 must not be negative');
    expect(report.rejects[2]!.message).toBe('"1,50" is not a number (use a dot as decimal separator)');
  });

  it('unknown contact and product references name the line and the reference', async () => {
    const report = await expectRefused(
      'purchases',
      csv(PURCHASE_HEADER, 'O1,C1,SKU-1,1,1.00,2025-01-01', 'O2,C404,SKU-1,1,1.00,2025-01-01', 'O3,C1,SKU-404,1,1.00,2025-01-01'),
    );
    expect(report.rejects).toEqual([
      { line: 3, field: 'external_id', message: 'no contact has external_id "C404" (import contacts first)' },
      { line: 4, field: 'sku', message: 'no product has sku "SKU-404" (import products first)' },
    ]);
  });

  it('duplicate keys name both lines', async () => {
    const contacts = await expectRefused('contacts', csv('external_id,created_at', 'D1,2024-01-01', 'D2,2024-01-01', 'D1,2024-02-01'));
    expect(contacts.rejects).toEqual([{ line: 4, field: 'external_id', message: 'duplicate external_id "D1": already on line 2' }]);
    const products = await expectRefused('products', csv('sku,name,category', 'P1,A,x', 'P1,B,x'));
    expect(products.rejects[0]).toMatchObject({ line: 3, message: 'duplicate sku "P1": already on line 2' });
    const lines = await expectRefused('purchases', csv(PURCHASE_HEADER, 'O9,C1,SKU-1,1,1.00,2025-01-01', 'O9,C1,SKU-1,2,1.00,2025-01-01'));
    expect(lines.rejects[0]).toMatchObject({
      line: 3,
      message: 'duplicate order line O9 / SKU-1: already on line 2 (--merge-lines sums them)',
    });
  });

  it('rows with the wrong number of fields, bad emails and phones, and future dates are named', async () => {
    const report = await expectRefused(
      'contacts',
      csv(
        'external_id,email,phone,first_name,last_name,country,created_at',
        'E1,not-an-email,,,,,2024-01-01',
        'E2,,12,,,,2024-01-01',
        'E3,,,,,,2030-01-01',
        'E4,,,,2024-01-01',
        ',,,,,,2024-01-01',
      ),
    );
    expect(report.rejects).toEqual([
      { line: 2, field: 'email', message: 'is not a valid email address' },
      { line: 3, field: 'phone', message: 'is not a possible phone number' },
      { line: 4, field: 'created_at', message: '2030-01-01T00:00:00.000Z is in the future' },
      { line: 5, field: 'row', message: 'expected 7 fields as in the header, found 5' },
      { line: 6, field: 'external_id', message: 'is empty' },
    ]);
  });

  it('consents: unknown purpose, channel, method and status, a missing channel, a channel on profiling', async () => {
    const report = await expectRefused(
      'consents',
      csv(
        'external_id,purpose,channel,status,captured_at,source,method',
        'C1,profiling,,granted,2024-01-02T10:00:00Z,web_form,explicit_checkbox',
        'C1,telepathy,,granted,2024-01-02T10:00:00Z,web_form,explicit_checkbox',
        'C1,direct_marketing,,granted,2024-01-02T10:00:00Z,web_form,explicit_checkbox',
        'C1,direct_marketing,fax,granted,2024-01-02T10:00:00Z,web_form,explicit_checkbox',
        'C1,profiling,sms,granted,2024-01-02T10:00:00Z,web_form,explicit_checkbox',
        'C1,profiling,,maybe,2024-01-02T10:00:00Z,web_form,explicit_checkbox',
        'C1,profiling,,granted,2024-01-02T10:00:00Z,web_form,telepathic_link',
        'C1,profiling,,granted,2099-01-02T10:00:00Z,web_form,explicit_checkbox',
      ),
    );
    expect(report.rejects.map((reject) => `${reject.line} ${reject.field}: ${reject.message}`)).toEqual([
      '3 purpose: unknown purpose "telepathy" (known: direct_marketing, profiling)',
      '4 channel: a direct_marketing consent needs a channel (one of email, phone, postal, push, sms)',
      '5 channel: unknown channel "fax" (known: email, phone, postal, push, sms)',
      '6 channel: a profiling consent takes no channel, found "sms"',
      '7 status: unknown status "maybe" (expected granted, withdrawn, refused)',
      '8 method: unknown method "telepathic_link" (known: bundled, double_opt_in, explicit_checkbox, implied, pre_ticked, recorded_verbal, signed_form)',
      '9 captured_at: 2099-01-02T10:00:00.000Z is in the future',
    ]);
  });

  it('counts lines across quoted fields that hold line breaks, and reports broken quoting', async () => {
    const report = await expectRefused(
      'contacts',
      csv('external_id,first_name,created_at', 'Q1,"Anne', 'Marie",2024-01-01', 'Q2,Paul,not-a-date', 'Q3,"Jo"e,2024-01-01'),
    );
    expect(report.rejects[0]).toEqual({
      line: 4,
      field: 'created_at',
      message: '"not-a-date" is not an ISO 8601 date (expected e.g. 2024-03-31 or 2024-03-31T14:05:00Z)',
    });
    expect(report.rejects[1]).toMatchObject({ line: 5, field: 'row' });
    expect(report.rejects[1]!.message).toMatch(/malformed CSV|expected 3 fields/);
  });

  it('a good file after all these refusals imports normally', async () => {
    const report = await importFile(database, 'purchases', files.write('good.csv', csv(PURCHASE_HEADER, 'G1,C1,SKU-1,1,1.00,2025-01-01')));
    expect(report).toMatchObject({ status: 'committed', inserted: 1 });
  });
});
