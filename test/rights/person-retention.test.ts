import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { refreshPersonConsentState } from '../../src/identities/resolution.repository.ts';
import { findInactiveProspects, purgeInactive } from '../../src/retention/retention.service.ts';
import { parseRetentionPeriod, periodBefore } from '../../src/retention/retention-period.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { TEST_TOMBSTONE_KEYS } from '../helpers/tombstone-keys.ts';
import { importFile, NOW } from '../imports/import.fixtures.ts';
import { contactIdOf, findAnywhere } from './rights.fixtures.ts';

// Issue 19: retention erases a prospect, and a prospect is a person: a purchase, a consent or a
// record created since, under any of their records, keeps every record of theirs; an inactive
// person is erased whole.

let database: DatabaseHandle;
const files = tempFolder();
const THREE_YEARS_AGO = periodBefore(NOW, parseRetentionPeriod('3y'));

// [person, record]: each record has its own email and phone, linked into persons by the test
const RECORDS = [
  // the second record bought: the person is a customer
  { person: 'X', ref: 'X-1', created: '2020-01-05', consentAt: null, purchaseAt: null },
  { person: 'X', ref: 'X-2', created: '2020-02-05', consentAt: null, purchaseAt: '2021-03-03' },
  // the second record consented lately: the person is active
  { person: 'Y', ref: 'Y-1', created: '2020-01-06', consentAt: null, purchaseAt: null },
  { person: 'Y', ref: 'Y-2', created: '2020-02-06', consentAt: '2025-11-20', purchaseAt: null },
  // a second record arrived lately: the person came back
  { person: 'W', ref: 'W-1', created: '2020-01-07', consentAt: null, purchaseAt: null },
  { person: 'W', ref: 'W-2', created: '2025-12-01', consentAt: null, purchaseAt: null },
  // both records silent: an inactive prospect, erased whole
  { person: 'Z', ref: 'Z-1', created: '2020-01-08', consentAt: '2021-02-01', purchaseAt: null },
  { person: 'Z', ref: 'Z-2', created: '2020-02-08', consentAt: null, purchaseAt: null },
];
const emailOf = (ref: string) => `${ref.toLowerCase()}.retention@example.com`;
const ids: Record<string, number> = {};

beforeAll(async () => {
  database = await createTestDatabase();
  const imports: Array<[Parameters<typeof importFile>[1], string]> = [
    ['products', csv('sku,name,category', 'SKU-1,Garden hose,garden')],
    [
      'contacts',
      csv(
        'external_id,email,phone,first_name,last_name,created_at',
        ...RECORDS.map((r, i) => `${r.ref},${emailOf(r.ref)},06 39 98 40 0${i},Name${r.person},Family${r.person},${r.created}`),
      ),
    ],
    [
      'consents',
      csv(
        'external_id,purpose,channel,status,captured_at,source,method,evidence_ref',
        ...RECORDS.filter((r) => r.consentAt).map(
          (r) => `${r.ref},profiling,,granted,${r.consentAt},web:signup,explicit_checkbox,ev-${r.ref}`,
        ),
      ),
    ],
    [
      'purchases',
      csv(
        'order_id,external_id,sku,quantity,unit_price,purchased_at',
        ...RECORDS.filter((r) => r.purchaseAt).map((r) => `O-${r.ref},${r.ref},SKU-1,1,10.00,${r.purchaseAt}`),
      ),
    ],
  ];
  for (const [kind, content] of imports) {
    const report = await importFile(database, kind, files.write(`${kind}.csv`, content));
    expect(report.status).toBe('committed');
  }
  for (const record of RECORDS) ids[record.ref] = await contactIdOf(database, record.ref);
  for (const person of ['X', 'Y', 'W', 'Z']) {
    const first = ids[`${person}-1`]!;
    await database.pool.query('UPDATE contacts SET person_id = $1 WHERE id IN ($1, $2)', [first, ids[`${person}-2`]]);
    await refreshPersonConsentState(database.db, [first]);
  }
});
afterAll(() => database.close());

describe('retention of persons', () => {
  it('finds the person whose every record is silent, once, and none whose other record bought, consented or arrived since', async () => {
    const found = await findInactiveProspects(database.db, THREE_YEARS_AGO);
    expect(found).toEqual([
      { contactId: ids['Z-1'], createdAt: new Date('2020-01-08T00:00:00Z'), lastActivityAt: new Date('2021-02-01T00:00:00Z') },
    ]);
  });

  it('erases every record of the inactive person, with one receipt listing both, and keeps the others whole', async () => {
    const report = await purgeInactive(database.db, {
      inactiveSince: THREE_YEARS_AGO,
      actor: 'scheduler',
      now: NOW,
      apply: true,
      tombstoneKeys: TEST_TOMBSTONE_KEYS,
    });
    expect(report).toMatchObject({ found: 1, erased: 1, skipped: 0 });
    expect(report.receipts).toEqual([
      expect.objectContaining({
        contactId: ids['Z-1'],
        personId: ids['Z-1'],
        records: [ids['Z-1'], ids['Z-2']],
        reason: 'retention',
        deleted: expect.objectContaining({ contact_personal_data: 2, purchases: 0 }),
        consentEventsKept: 1,
      }),
    ]);
    const { rows } = await database.pool.query<{ external_id: string | null }>('SELECT external_id FROM contacts ORDER BY id');
    expect(rows.map((row) => row.external_id)).toEqual(['X-1', 'X-2', 'Y-1', 'Y-2', 'W-1', 'W-2', null, null]);
    expect(await findAnywhere(database, [emailOf('Z-1'), emailOf('Z-2'), 'Z-1', 'Z-2'])).toEqual([]);
    expect(await findAnywhere(database, [emailOf('X-1'), emailOf('Y-1'), emailOf('W-1')])).toHaveLength(3);
    const tombstones = await database.pool.query('SELECT count(*)::int AS n FROM erasure_tombstones');
    expect(tombstones.rows[0]).toEqual({ n: 2 });
  });
});
