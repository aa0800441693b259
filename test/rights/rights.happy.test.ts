import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONSENT_POLICY } from '../../src/config.ts';
import { channelFunnel, profileableContacts } from '../../src/consent/eligibility.ts';
import { sha256Hex } from '../../src/contacts/identity.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { SCRUBBED_SOURCE } from '../../src/rights/erasure.repository.ts';
import { bundleTables, csvCell, REPORT_FILE, writePortabilityBundle } from '../../src/rights/portability.ts';
import { SubjectNotFoundError } from '../../src/rights/rights.errors.ts';
import { accessReport, erase, object, rectify } from '../../src/rights/rights.service.ts';
import { tombstoneHash } from '../../src/rights/tombstone-keys.ts';
import { exportMembers } from '../../src/targeting/export.repository.ts';
import { verifyExport } from '../../src/targeting/export.service.ts';
import { csvRecords } from '../helpers/csv.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { TEST_TOMBSTONE_KEYS } from '../helpers/tombstone-keys.ts';
import { importFile, NOW } from '../imports/import.fixtures.ts';
import {
  contactIdOf,
  EVIDENCE_REF,
  findAnywhere,
  NEIGHBOUR,
  personalValues,
  type ScoreFixture,
  SUBJECT,
  seedExport,
  seedLiveScores,
  seedOppositionList,
  seedPeople,
  THIRD,
} from './rights.fixtures.ts';

let database: DatabaseHandle;
let scores: ScoreFixture;
let exportId: string;
const files = tempFolder();

beforeAll(async () => {
  database = await createTestDatabase();
  await seedPeople(database);
  const ids = [
    await contactIdOf(database, SUBJECT.ref),
    await contactIdOf(database, NEIGHBOUR.ref),
    await contactIdOf(database, THIRD.ref),
  ];
  scores = await seedLiveScores(database, ids);
  exportId = await seedExport(database, scores, [SUBJECT, NEIGHBOUR]);
  await seedOppositionList(database, SUBJECT.phone);
});
afterAll(() => database.close());

async function auditRows(contactId: number) {
  const { rows } = await database.pool.query<{ actor: string; action: string; details: Record<string, unknown> }>(
    `SELECT actor, action, details FROM audit_log WHERE subject_type = 'person' AND subject_id = $1 ORDER BY id`,
    [String(contactId)],
  );
  return rows;
}

describe('access and portability', () => {
  it('reports everything held: identity, consents with proofs and validity, purchases, scores with reasons, exports, lists', async () => {
    const contactId = await contactIdOf(database, SUBJECT.ref);
    const report = await accessReport(database.db, ` ${SUBJECT.ref} `, 'cli', NOW);

    expect(report.subject).toEqual({ contactId, externalId: SUBJECT.ref, createdAt: '2024-01-15T00:00:00.000Z' });
    expect(report.identity).toEqual({
      email: SUBJECT.email,
      phone: SUBJECT.phone,
      firstName: SUBJECT.firstName,
      lastName: SUBJECT.lastName,
      country: 'FR',
    });
    expect(report.consents.events).toHaveLength(3);
    expect(report.consents.events).toContainEqual(
      expect.objectContaining({
        purpose: 'profiling',
        channel: null,
        status: 'granted',
        capturedAt: '2025-01-10T10:00:00.000Z',
        source: 'web:account-form',
        method: 'explicit_checkbox',
        methodIsExplicit: true,
        noticeVersion: 'notice-v3',
        evidenceRef: `${EVIDENCE_REF}-0p`,
      }),
    );
    expect(report.consents.status.map(({ purpose, channel, validNow }) => ({ purpose, channel, validNow }))).toEqual([
      { purpose: 'direct_marketing', channel: 'email', validNow: true },
      { purpose: 'direct_marketing', channel: 'sms', validNow: true },
      { purpose: 'profiling', channel: null, validNow: true },
    ]);
    expect(report.purchases).toEqual([
      {
        contactId,
        orderId: 'O-1',
        sku: 'SKU-1',
        productName: 'Garden hose',
        category: 'garden',
        quantity: 2,
        unitPrice: 19.9,
        purchasedAt: '2025-03-01T00:00:00.000Z',
      },
      {
        contactId,
        orderId: 'O-2',
        sku: 'SKU-2',
        productName: 'Pan, 28 cm',
        category: 'kitchen',
        quantity: 1,
        unitPrice: 34.5,
        purchasedAt: '2025-04-02T00:00:00.000Z',
      },
    ]);
    expect(report.scores).toEqual([
      expect.objectContaining({
        modelId: scores.modelId,
        targetKind: 'product',
        targetKey: 'SKU-1',
        modelVersion: 1,
        algorithm: 'logistic_regression',
        features: ['recency_days', 'frequency_12m'],
        rank: 1,
        reasons: [
          { feature: 'recency_days', contribution: 0.31 },
          { feature: 'frequency_12m', contribution: 0.12 },
        ],
      }),
    ]);
    expect(report.exports).toEqual([
      expect.objectContaining({ exportId, channel: 'sms', position: 1, contactValue: SUBJECT.phone, isHoldout: false }),
    ]);
    // the events that made the person eligible for the SMS list: profiling, then the SMS grant
    expect(report.exports[0]!.consentEventIds).toEqual(
      ['profiling', 'sms'].map((kind) => report.consents.events.find((event) => (event.channel ?? event.purpose) === kind)!.eventId),
    );
    expect(report.oppositionLists).toEqual([
      { contactId, listName: 'own-suppression', channel: 'phone', listDate: '2026-05-20', matchedOn: 'phone' },
    ]);

    const audit = await auditRows(contactId);
    expect(audit).toEqual([
      {
        actor: 'cli',
        action: 'rights.access',
        details: {
          contactId,
          records: [contactId],
          sections: { records: 1, consentEvents: 3, purchases: 2, scores: 1, exports: 1, oppositionLists: 1 },
        },
      },
    ]);
  });

  it('writes a portability bundle whose CSV files parse and hold the same as the JSON report', async () => {
    const report = await accessReport(database.db, SUBJECT.ref, 'dpo-key', NOW, 'portability');
    const dir = join(files.dir, 'bundle');
    const paths = writePortabilityBundle(report, dir);
    expect(paths.map((path) => path.slice(dir.length + 1)).sort()).toEqual([
      REPORT_FILE,
      'consent-status.csv',
      'consents.csv',
      'exports.csv',
      'identity.csv',
      'opposition-lists.csv',
      'purchases.csv',
      'scores.csv',
    ]);
    expect(JSON.parse(readFileSync(join(dir, REPORT_FILE), 'utf8'))).toEqual(report);

    for (const table of bundleTables(report)) {
      const parsed = csvRecords(readFileSync(join(dir, table.file)));
      const expected = table.rows.map((row) => Object.fromEntries(table.columns.map((column) => [column, csvCell(row[column])])));
      expect(parsed, table.file).toEqual(expected);
    }
    const identity = csvRecords(readFileSync(join(dir, 'identity.csv')));
    expect(identity).toEqual([
      expect.objectContaining({ externalId: SUBJECT.ref, email: SUBJECT.email, phone: SUBJECT.phone, lastName: SUBJECT.lastName }),
    ]);
    const scoreLines = csvRecords(readFileSync(join(dir, 'scores.csv')));
    expect(JSON.parse(scoreLines[0]!.reasons!)).toEqual(report.scores[0]!.reasons);
    const purchases = csvRecords(readFileSync(join(dir, 'purchases.csv')));
    expect(purchases.map((line) => line.productName)).toEqual(['Garden hose', 'Pan, 28 cm']);

    const audit = await auditRows(report.subject.contactId);
    expect(audit.at(-1)).toMatchObject({ actor: 'dpo-key', action: 'rights.portability' });
  });
});

describe('rectification', () => {
  it('normalises and saves the new values, recomputes the hashes, and audits the names of the changed fields only', async () => {
    const contactId = await contactIdOf(database, THIRD.ref);
    const newEmail = 'Philomene.Gastinel-Roux@Example.com';
    const result = await rectify(
      database.db,
      THIRD.ref,
      { email: newEmail, phone: '06 39 98 73 99', first_name: ' Philomène-Anne ', last_name: THIRD.lastName },
      'cli',
      NOW,
      { defaultPhoneCountry: 'FR' },
    );
    expect(result).toEqual({ contactId, personId: contactId, changed: ['email', 'phone', 'first_name'] });

    const { rows } = await database.pool.query('SELECT * FROM contact_personal_data WHERE contact_id = $1', [contactId]);
    expect(rows[0]).toEqual({
      contact_id: contactId,
      email: 'philomene.gastinel-roux@example.com',
      phone: '+33639987399',
      first_name: 'Philomène-Anne',
      last_name: THIRD.lastName,
      country: 'FR',
      email_hash: sha256Hex('philomene.gastinel-roux@example.com'),
      phone_hash: sha256Hex('+33639987399'),
      phone_line_type: 'MOBILE',
    });
    const audit = await auditRows(contactId);
    expect(audit).toEqual([
      {
        actor: 'cli',
        action: 'rights.rectification',
        details: { contactId, records: [contactId], fields: ['email', 'phone', 'first_name'] },
      },
    ]);
  });

  it('clears a field given empty, and changes nothing when the values are those held', async () => {
    const contactId = await contactIdOf(database, THIRD.ref);
    expect(await rectify(database.db, THIRD.ref, { country: '' }, 'cli', NOW, { defaultPhoneCountry: 'FR' })).toEqual({
      contactId,
      personId: contactId,
      changed: ['country'],
    });
    expect(
      await rectify(database.db, THIRD.ref, { country: null, last_name: THIRD.lastName }, 'cli', NOW, { defaultPhoneCountry: 'FR' }),
    ).toEqual({
      contactId,
      personId: contactId,
      changed: [],
    });
    const { rows } = await database.pool.query('SELECT country FROM contact_personal_data WHERE contact_id = $1', [contactId]);
    expect(rows).toEqual([{ country: null }]);
  });
});

describe('objection', () => {
  it('to direct marketing without channel: removes the person from every channel at once, scores kept', async () => {
    const contactId = await contactIdOf(database, NEIGHBOUR.ref);
    const smsBefore = await channelFunnel(database.db, 'sms', NOW, DEFAULT_CONSENT_POLICY);
    const emailBefore = await channelFunnel(database.db, 'email', NOW, DEFAULT_CONSENT_POLICY);

    const result = await object(database.db, NEIGHBOUR.ref, { purpose: 'direct_marketing' }, 'cli', NOW);
    expect(result).toMatchObject({
      contactId,
      purpose: 'direct_marketing',
      channel: null,
      capturedAt: NOW.toISOString(),
      scoresDeleted: 0,
    });

    const smsAfter = await channelFunnel(database.db, 'sms', NOW, DEFAULT_CONSENT_POLICY);
    const emailAfter = await channelFunnel(database.db, 'email', NOW, DEFAULT_CONSENT_POLICY);
    expect(smsAfter.notObjected).toBe(smsBefore.notObjected - 1);
    expect(emailAfter.notObjected).toBe(emailBefore.notObjected - 1);
    expect(smsAfter.channelConsent).toBe(smsBefore.channelConsent);

    const { rows } = await database.pool.query(
      'SELECT purpose, channel, status, source, method, captured_at FROM consent_events WHERE id = $1',
      [result.eventId],
    );
    expect(rows).toEqual([
      { purpose: 'direct_marketing', channel: null, status: 'objected', source: 'data_subject_request', method: null, captured_at: NOW },
    ]);
    const report = await accessReport(database.db, NEIGHBOUR.ref, 'cli', NOW);
    expect(report.consents.status.filter((state) => state.purpose === 'direct_marketing').every((state) => !state.validNow)).toBe(true);
    expect(report.scores).toHaveLength(1);
  });

  it('to one channel: that channel only', async () => {
    const thirdId = await contactIdOf(database, THIRD.ref);
    const emailBefore = await channelFunnel(database.db, 'email', NOW, DEFAULT_CONSENT_POLICY);
    const smsBefore = await channelFunnel(database.db, 'sms', NOW, DEFAULT_CONSENT_POLICY);
    await object(database.db, THIRD.ref, { purpose: 'direct_marketing', channel: 'email' }, 'cli', NOW);
    expect((await channelFunnel(database.db, 'email', NOW, DEFAULT_CONSENT_POLICY)).channelConsent).toBe(emailBefore.channelConsent - 1);
    expect(await channelFunnel(database.db, 'sms', NOW, DEFAULT_CONSENT_POLICY)).toEqual(smsBefore);
    expect((await auditRows(thirdId)).at(-1)).toMatchObject({
      action: 'rights.objection',
      details: { purpose: 'direct_marketing', channel: 'email', scoresDeleted: 0 },
    });
  });

  it('to profiling: out of the profileable contacts and their scores deleted in the same transaction', async () => {
    const contactId = await contactIdOf(database, NEIGHBOUR.ref);
    expect((await profileableContacts(database.db, NOW, true)).map((row) => row.contactId)).toContain(contactId);

    const result = await object(database.db, NEIGHBOUR.ref, { purpose: 'profiling' }, 'cli', NOW);
    expect(result.scoresDeleted).toBe(1);
    expect((await profileableContacts(database.db, NOW, true)).map((row) => row.contactId)).not.toContain(contactId);
    expect((await profileableContacts(database.db, NOW, false)).map((row) => row.contactId)).not.toContain(contactId);
    const { rows } = await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM scores WHERE contact_id = $1', [contactId]);
    expect(rows[0]!.n).toBe(0);
    const others = await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM scores WHERE contact_id <> $1', [contactId]);
    expect(others.rows[0]!.n).toBe(2);
    expect((await auditRows(contactId)).at(-1)).toMatchObject({
      action: 'rights.objection',
      details: { purpose: 'profiling', channel: null, scoresDeleted: 1 },
    });
  });
});

describe('erasure', () => {
  it('leaves no personal data of the person in any column of any table, and returns a receipt', async () => {
    const contactId = await contactIdOf(database, SUBJECT.ref);
    const needles = personalValues(SUBJECT);
    // the scan finds the person before, so its silence afterwards means something
    expect((await findAnywhere(database, needles)).length).toBeGreaterThan(6);
    const manifestBefore = (await database.pool.query('SELECT * FROM target_export_manifests WHERE export_id = $1', [exportId])).rows[0];
    const profileableBefore = (await profileableContacts(database.db, NOW, true)).map((row) => row.contactId);
    const funnelsBefore = await Promise.all(
      ['email', 'sms'].map((channel) => channelFunnel(database.db, channel, NOW, DEFAULT_CONSENT_POLICY)),
    );

    const receipt = await erase(database.db, SUBJECT.ref, 'cli', NOW, TEST_TOMBSTONE_KEYS);
    // gone from the very next eligibility answers
    expect(profileableBefore).toContain(contactId);
    expect((await profileableContacts(database.db, NOW, true)).map((row) => row.contactId)).toEqual(
      profileableBefore.filter((id) => id !== contactId),
    );
    const funnelsAfter = await Promise.all(
      ['email', 'sms'].map((channel) => channelFunnel(database.db, channel, NOW, DEFAULT_CONSENT_POLICY)),
    );
    funnelsAfter.forEach((after, index) => {
      expect(after.contacts).toBe(funnelsBefore[index]!.contacts - 1);
      expect(after.profilingConsent).toBe(funnelsBefore[index]!.profilingConsent - 1);
    });
    expect(receipt).toEqual({
      contactId,
      personId: contactId,
      records: [contactId],
      erasedAt: NOW.toISOString(),
      reason: 'data_subject_request',
      deleted: { contact_personal_data: 1, purchases: 2, scores: 1, contact_pressure: 1 },
      scrubbed: { consent_events: 3 },
      manifestsKept: 1,
      consentEventsKept: 3,
      tombstoneHashes: ['external_id'],
    });
    expect(await findAnywhere(database, needles)).toEqual([]);
    // the other people are untouched
    expect(await findAnywhere(database, personalValues(NEIGHBOUR))).toContain(`contact_personal_data.email: ${NEIGHBOUR.email}`);

    const contact = await database.pool.query('SELECT external_id, erased_at FROM contacts WHERE id = $1', [contactId]);
    expect(contact.rows).toEqual([{ external_id: null, erased_at: NOW }]);
    const ledger = await database.pool.query(
      'SELECT purpose, channel, status, captured_at, source, method, notice_version, evidence_ref FROM consent_events WHERE contact_id = $1 ORDER BY id',
      [contactId],
    );
    expect(ledger.rows).toHaveLength(3);
    // the free-text proof is emptied; the event, its instant, purpose, channel, status and method stay
    expect(ledger.rows.every((row) => row.evidence_ref === null && row.notice_version === null && row.source === SCRUBBED_SOURCE)).toBe(
      true,
    );
    expect(ledger.rows.map((row) => [row.purpose, row.channel, row.status, row.method])).toEqual([
      ['profiling', null, 'granted', 'explicit_checkbox'],
      ['direct_marketing', 'sms', 'granted', 'double_opt_in'],
      ['direct_marketing', 'email', 'granted', 'double_opt_in'],
    ]);
    // the manifest is kept as it was, still verifies, and names the person no more
    const manifest = await database.pool.query('SELECT * FROM target_export_manifests WHERE export_id = $1', [exportId]);
    expect(manifest.rows).toEqual([manifestBefore]);
    expect(await verifyExport(database.db, exportId)).toMatchObject({ valid: true, alteredPositions: [], erasedMembers: 1 });
    const members = await exportMembers(database.db, exportId);
    expect(members[0]).toMatchObject({ contactId, externalId: null, contactValue: null, score: 0.7, rank: 1 });
    expect(members[1]).toMatchObject({ externalId: NEIGHBOUR.ref, contactValue: NEIGHBOUR.phone });
    const neighbourReport = await accessReport(database.db, NEIGHBOUR.ref, 'cli', NOW);
    expect(neighbourReport.exports).toEqual([expect.objectContaining({ exportId, position: 2, contactValue: NEIGHBOUR.phone })]);
    const read = JSON.stringify([members, neighbourReport]);
    expect(needles.filter((needle) => read.includes(needle))).toEqual([]);

    const tombstone = await database.pool.query(
      'SELECT external_id_key, key_id, legacy_external_id_sha256, erased_at, receipt FROM erasure_tombstones',
    );
    expect(tombstone.rows).toEqual([
      {
        external_id_key: tombstoneHash(TEST_TOMBSTONE_KEYS.current, SUBJECT.ref),
        key_id: TEST_TOMBSTONE_KEYS.current.id,
        legacy_external_id_sha256: null,
        erased_at: NOW,
        receipt,
      },
    ]);
    expect((await auditRows(contactId)).at(-1)).toMatchObject({ actor: 'cli', action: 'rights.erasure', details: { receipt } });
  });

  it('refuses a re-import of the erased person, by external id in any case, with a clear message', async () => {
    const header = 'external_id,email,phone,first_name,last_name,country,created_at';
    const keys = { tombstoneKeys: TEST_TOMBSTONE_KEYS };
    const again = await importFile(
      database,
      'contacts',
      files.write('again.csv', csv(header, `${SUBJECT.ref},,,,,FR,2024-01-15`)),
      {},
      keys,
    );
    expect(again.status).toBe('rejected');
    expect(again.rejects[0]!.message).toBe('this person was erased on 2026-06-01 at their request and cannot be imported again');
    const lower = await importFile(
      database,
      'contacts',
      files.write('lower.csv', csv(header, `${SUBJECT.ref.toLowerCase()},${SUBJECT.email},,,,FR,2024-01-15`)),
      {},
      keys,
    );
    expect(lower.status).toBe('rejected');
    expect(lower.rejects[0]!.message).toMatch(/was erased on 2026-06-01/);
    expect(await findAnywhere(database, personalValues(SUBJECT))).toEqual([]);
  });

  it('answers a later request about the erased person with a clear message', async () => {
    await expect(accessReport(database.db, SUBJECT.ref, 'cli', NOW, 'access', TEST_TOMBSTONE_KEYS)).rejects.toThrow(SubjectNotFoundError);
    await expect(accessReport(database.db, SUBJECT.ref.toLowerCase(), 'cli', NOW, 'access', TEST_TOMBSTONE_KEYS)).rejects.toThrow(
      'this contact was erased on 2026-06-01 at their request: nothing is held about them any more',
    );
  });
});
