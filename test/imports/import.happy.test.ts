import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { CONTACTS_CSV, importFile, PRODUCTS_CSV } from './import.fixtures.ts';

let database: DatabaseHandle;
const files = tempFolder();

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database.close());

describe('CSV import, happy paths', () => {
  it('imports products, then updates only the changed ones on a second import', async () => {
    const first = await importFile(database, 'products', files.write('products.csv', csv(...PRODUCTS_CSV)));
    expect(first).toMatchObject({ status: 'committed', rowsRead: 2, inserted: 2, updated: 0, rejected: 0 });

    const changed = csv('sku,name,category', 'SKU-1,Garden hose 20 m,garden', 'SKU-2,"Pan, 28 cm",kitchen');
    const second = await importFile(database, 'products', files.write('products-2.csv', changed));
    expect(second).toMatchObject({ inserted: 0, updated: 1, unchanged: 1 });
    const { rows } = await database.pool.query(`SELECT sku, name FROM products ORDER BY sku`);
    expect(rows).toEqual([
      { sku: 'SKU-1', name: 'Garden hose 20 m' },
      { sku: 'SKU-2', name: 'Pan, 28 cm' },
    ]);
  });

  it('imports contacts with normalised email and E.164 phone, personal fields in one table', async () => {
    const report = await importFile(database, 'contacts', files.write('contacts.csv', csv(...CONTACTS_CSV)));
    expect(report).toMatchObject({ status: 'committed', inserted: 3, rejected: 0 });
    const { rows } = await database.pool.query(
      `SELECT c.external_id, p.email, p.phone, p.country, c.created_at
       FROM contacts c JOIN contact_personal_data p ON p.contact_id = c.id ORDER BY c.external_id`,
    );
    expect(rows).toEqual([
      {
        external_id: 'C1',
        email: 'alice.martin@example.com',
        phone: '+33639980001',
        country: 'FR',
        created_at: new Date('2024-01-02T00:00:00Z'),
      },
      { external_id: 'C2', email: null, phone: '+33199000002', country: 'FR', created_at: new Date('2024-02-03T09:30:00Z') },
      { external_id: 'C3', email: 'bob@example.org', phone: null, country: 'BE', created_at: new Date('2024-03-04T10:00:00Z') },
    ]);
  });

  it('imports purchases from a gzip file with a column mapping, a date format, float ids and merged lines', async () => {
    const retailLike = csv(
      'InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country',
      '900001,SKU-1,GARDEN HOSE,2,03/05/2025 08:26,2.50,C1,United Kingdom',
      '900001,SKU-1,GARDEN HOSE,4,03/05/2025 08:26,1.00,C1,United Kingdom',
      '900002,SKU-2,"PAN, 28 CM",1,04/05/2025 10:00,20.00,C3,United Kingdom',
    );
    const report = await importFile(database, 'purchases', files.write('retail.csv.gz', retailLike), {
      columnMap: {
        InvoiceNo: 'order_id',
        StockCode: 'sku',
        Quantity: 'quantity',
        InvoiceDate: 'purchased_at',
        UnitPrice: 'unit_price',
        CustomerID: 'external_id',
      },
      dateFormat: 'dd/MM/yyyy HH:mm',
      mergeLines: true,
    });
    expect(report).toMatchObject({ status: 'committed', rowsRead: 3, inserted: 2, merged: 1, rejected: 0 });
    const { rows } = await database.pool.query(`SELECT order_id, quantity, unit_price, purchased_at FROM purchases ORDER BY order_id`);
    expect(rows).toEqual([
      { order_id: '900001', quantity: 6, unit_price: 1.5, purchased_at: new Date('2025-05-03T08:26:00Z') },
      { order_id: '900002', quantity: 1, unit_price: 20, purchased_at: new Date('2025-05-04T10:00:00Z') },
    ]);
  });

  it('reads ids written as floats ("17850.0") as the integer id', async () => {
    await importFile(database, 'contacts', files.write('float-contacts.csv', csv('external_id,created_at', '17850,2024-01-01')));
    const report = await importFile(
      database,
      'purchases',
      files.write('float.csv', csv('order_id,external_id,sku,quantity,unit_price,purchased_at', 'F1,17850.0,SKU-2,1,3.00,2025-01-01')),
    );
    expect(report).toMatchObject({ status: 'committed', inserted: 1 });
  });

  it('appends consent events to the ledger, and a second import of the same file adds nothing', async () => {
    const consents = csv(
      'external_id,purpose,channel,status,captured_at,source,method,notice_version,evidence_ref,expires_at',
      'C1,profiling,,granted,2024-01-02T10:00:00Z,web_form,explicit_checkbox,privacy-v3,ev-01,',
      'C1,direct_marketing,sms,granted,2024-01-02T10:00:00Z,web_form,double_opt_in,privacy-v3,ev-02,2027-01-01',
      'C2,profiling,,granted,2017-03-01,,pre_ticked,,,',
      'C1,profiling,,withdrawn,2025-02-01T08:00:00Z,preference_centre,explicit_checkbox,privacy-v3,ev-03,',
    );
    const path = files.write('consents.csv', consents);
    expect(await importFile(database, 'consents', path)).toMatchObject({ status: 'committed', inserted: 4 });
    expect(await importFile(database, 'consents', path)).toMatchObject({ status: 'committed', inserted: 0, unchanged: 4 });
    const { rows } = await database.pool.query(
      `SELECT purpose, channel, status, source, method FROM consent_events e JOIN contacts c ON c.id = e.contact_id
       WHERE c.external_id = 'C2'`,
    );
    expect(rows).toEqual([{ purpose: 'profiling', channel: null, status: 'granted', source: null, method: 'pre_ticked' }]);
  });

  it('with --skip-invalid imports the good rows and writes the rejects, with their line and reason, to a file', async () => {
    const mixed = csv(
      'order_id,external_id,sku,quantity,unit_price,purchased_at',
      'S1,C1,SKU-1,1,5.00,2025-03-01',
      'S2,C1,SKU-1,-1,5.00,2025-03-01',
      'S3,NOBODY,SKU-1,1,5.00,2025-03-01',
      'S4,C2,SKU-2,2,7.00,2025-03-02',
    );
    const rejectsFile = `${files.dir}/rejects.csv`;
    const report = await importFile(database, 'purchases', files.write('mixed.csv', mixed), { skipInvalid: true, rejectsFile });
    expect(report).toMatchObject({ status: 'committed', inserted: 2, rejected: 2, rejectsFile });
    const written = readFileSync(rejectsFile, 'utf8').trim().split('\n');
    expect(written[0]).toBe('line,reason,order_id,external_id,sku,quantity,unit_price,purchased_at');
    expect(written.slice(1).sort()).toEqual([
      '3,quantity: -1 must be positive (a cancellation or a return is not a purchase),S2,C1,SKU-1,-1,5.00,2025-03-01',
      '4,"external_id: no contact has external_id ""NOBODY"" (import contacts first)",S3,NOBODY,SKU-1,1,5.00,2025-03-01',
    ]);
  });
});
