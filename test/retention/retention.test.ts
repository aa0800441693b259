import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { findInactiveProspects, purgeInactive } from '../../src/retention/retention.service.ts';
import { InvalidPeriodError, parseRetentionPeriod, periodBefore } from '../../src/retention/retention-period.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { TEST_TOMBSTONE_KEYS } from '../helpers/tombstone-keys.ts';
import { importFile, NOW } from '../imports/import.fixtures.ts';
import { contactIdOf, findAnywhere, snapshotTables } from '../rights/rights.fixtures.ts';

let database: DatabaseHandle;
const files = tempFolder();
const THREE_YEARS_AGO = periodBefore(NOW, parseRetentionPeriod('3y'));

// who, created when, with which consent event and purchase: only the first two are inactive prospects
const BASE = [
  { ref: 'P-OLD', email: 'ondine.lacombe@example.com', created: '2021-01-05', consentAt: '2021-02-01', purchaseAt: null },
  { ref: 'P-SILENT', email: 'basile.fauconnet@example.com', created: '2020-06-30', consentAt: null, purchaseAt: null },
  { ref: 'C-OLD', email: 'clemence.arnoux@example.com', created: '2020-01-10', consentAt: null, purchaseAt: '2021-03-03' },
  { ref: 'P-RECENT', email: 'gaspard.vilmorin@example.com', created: '2020-02-02', consentAt: '2025-11-20', purchaseAt: null },
  { ref: 'P-NEW', email: 'lison.perrichon@example.com', created: '2024-02-01', consentAt: null, purchaseAt: null },
];

beforeAll(async () => {
  database = await createTestDatabase();
  const imports: Array<[Parameters<typeof importFile>[1], string]> = [
    ['products', csv('sku,name,category', 'SKU-1,Garden hose,garden')],
    ['contacts', csv('external_id,email,phone,created_at', ...BASE.map((p, i) => `${p.ref},${p.email},06 39 98 20 0${i},${p.created}`))],
    [
      'consents',
      csv(
        'external_id,purpose,channel,status,captured_at,source,method,evidence_ref',
        ...BASE.filter((p) => p.consentAt).map(
          (p) => `${p.ref},profiling,,granted,${p.consentAt},web:signup,explicit_checkbox,ev-${p.ref}`,
        ),
      ),
    ],
    [
      'purchases',
      csv(
        'order_id,external_id,sku,quantity,unit_price,purchased_at',
        ...BASE.filter((p) => p.purchaseAt).map((p) => `O-${p.ref},${p.ref},SKU-1,1,10.00,${p.purchaseAt}`),
      ),
    ],
  ];
  for (const [kind, content] of imports) {
    const report = await importFile(database, kind, files.write(`${kind}.csv`, content));
    expect(report.status).toBe('committed');
  }
});
afterAll(() => database.close());

describe('retention periods', () => {
  it('reads years, months and days, and counts them back by the calendar', () => {
    expect(parseRetentionPeriod('3y')).toEqual({ amount: 3, unit: 'y' });
    expect(parseRetentionPeriod(' 18m ')).toEqual({ amount: 18, unit: 'm' });
    expect(parseRetentionPeriod('90d')).toEqual({ amount: 90, unit: 'd' });
    expect(THREE_YEARS_AGO).toEqual(new Date('2023-06-01T12:00:00Z'));
    expect(periodBefore(new Date('2024-03-31T00:00:00Z'), { amount: 1, unit: 'm' })).toEqual(new Date('2024-02-29T00:00:00Z'));
    expect(periodBefore(new Date('2024-02-29T00:00:00Z'), { amount: 1, unit: 'y' })).toEqual(new Date('2023-02-28T00:00:00Z'));
    expect(periodBefore(NOW, { amount: 90, unit: 'd' })).toEqual(new Date('2026-03-03T12:00:00Z'));
  });

  it('counts months back to the same day, or the last day of a shorter month', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }),
        fc.integer({ min: 1, max: 1200 }),
        (now, months) => {
          const before = periodBefore(now, { amount: months, unit: 'm' });
          const monthsBack = (now.getUTCFullYear() - before.getUTCFullYear()) * 12 + now.getUTCMonth() - before.getUTCMonth();
          const lastDay = new Date(Date.UTC(before.getUTCFullYear(), before.getUTCMonth() + 1, 0)).getUTCDate();
          expect(monthsBack).toBe(months);
          expect(before.getUTCDate()).toBe(Math.min(now.getUTCDate(), lastDay));
          expect(before.toISOString().slice(10)).toBe(now.toISOString().slice(10)); // same time of day
        },
      ),
    );
  });

  it.each(['', '3', 'y', '3w', '3 y', '-1y', '0d', '1.5y', '101y', '1201m', 'three years'])('refuses %j with a clear message', (text) => {
    expect(() => parseRetentionPeriod(text)).toThrow(InvalidPeriodError);
    expect(() => parseRetentionPeriod(text)).toThrow(/expects a period such as 3y, 18m or 90d/);
  });
});

describe('purge of inactive prospects', () => {
  it('finds the prospects with no purchase and no consent activity since the cutoff', async () => {
    const found = await findInactiveProspects(database.db, THREE_YEARS_AGO);
    expect(found.map((row) => row.contactId)).toEqual([await contactIdOf(database, 'P-OLD'), await contactIdOf(database, 'P-SILENT')]);
    expect(found[0]!.lastActivityAt).toEqual(new Date('2021-02-01T00:00:00Z'));
    expect(found[1]!.lastActivityAt).toBeNull();
  });

  it('dry run: reports counts only and changes nothing', async () => {
    const before = await snapshotTables(database);
    const report = await purgeInactive(database.db, { inactiveSince: THREE_YEARS_AGO, actor: 'cli', now: NOW });
    expect(report).toEqual({
      inactiveSince: '2023-06-01T12:00:00.000Z',
      applied: false,
      found: 2,
      foundByCreationYear: { 2020: 1, 2021: 1 },
      erased: 0,
      skipped: 0,
      receipts: [],
    });
    expect(JSON.stringify(report)).not.toMatch(/@example\.com|P-OLD/);
    expect(await snapshotTables(database)).toEqual(before);
  });

  it('apply: erases exactly the inactive prospects, each with a receipt, and keeps customers and recently active prospects', async () => {
    const oldId = await contactIdOf(database, 'P-OLD');
    const silentId = await contactIdOf(database, 'P-SILENT');
    const report = await purgeInactive(database.db, {
      inactiveSince: THREE_YEARS_AGO,
      actor: 'scheduler',
      now: NOW,
      apply: true,
      tombstoneKeys: TEST_TOMBSTONE_KEYS,
    });
    expect(report).toMatchObject({ applied: true, found: 2, erased: 2, skipped: 0 });
    expect(report.receipts).toEqual([
      expect.objectContaining({
        contactId: oldId,
        reason: 'retention',
        deleted: { contact_personal_data: 1, purchases: 0, scores: 0, contact_pressure: 1 },
        scrubbed: { consent_events: 1 },
        manifestsKept: 0,
        consentEventsKept: 1,
      }),
      expect.objectContaining({ contactId: silentId, reason: 'retention', consentEventsKept: 0 }),
    ]);

    const { rows } = await database.pool.query<{ external_id: string | null; erased: boolean }>(
      'SELECT external_id, erased_at IS NOT NULL AS erased FROM contacts ORDER BY id',
    );
    expect(rows).toEqual([
      { external_id: null, erased: true },
      { external_id: null, erased: true },
      { external_id: 'C-OLD', erased: false },
      { external_id: 'P-RECENT', erased: false },
      { external_id: 'P-NEW', erased: false },
    ]);
    expect(await findAnywhere(database, ['P-OLD', 'P-SILENT', BASE[0]!.email, BASE[1]!.email, '+33639982000', '+33639982001'])).toEqual([]);
    expect(await findAnywhere(database, [BASE[2]!.email, BASE[3]!.email, BASE[4]!.email])).toHaveLength(3);

    const audit = await database.pool.query(`SELECT actor, action, subject_id, details FROM audit_log WHERE action LIKE 'r%' ORDER BY id`);
    expect(audit.rows.map((row) => [row.action, row.subject_id])).toEqual([
      ['rights.erasure', String(oldId)],
      ['rights.erasure', String(silentId)],
      ['retention.purge', null],
    ]);
    expect(audit.rows[2]).toMatchObject({
      actor: 'scheduler',
      details: { found: 2, erased: 2, inactiveSince: '2023-06-01T12:00:00.000Z' },
    });
  });

  it('a second run finds no one left', async () => {
    const report = await purgeInactive(database.db, {
      inactiveSince: THREE_YEARS_AGO,
      actor: 'cli',
      now: NOW,
      apply: true,
      tombstoneKeys: TEST_TOMBSTONE_KEYS,
    });
    expect(report).toMatchObject({ found: 0, erased: 0, receipts: [] });
  });
});
