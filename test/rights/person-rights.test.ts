import { execFileSync } from 'node:child_process';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reachableContacts } from '../../src/consent/eligibility.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { refreshPersonConsentState } from '../../src/identities/resolution.repository.ts';
import { bundleTables } from '../../src/rights/portability.ts';
import { SubjectNotFoundError } from '../../src/rights/rights.errors.ts';
import { accessReport, erase, object, rectify } from '../../src/rights/rights.service.ts';
import { tombstoneHash } from '../../src/rights/tombstone-keys.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { databaseUrlFor } from '../helpers/postgres.ts';
import { TEST_TOMBSTONE_KEYS } from '../helpers/tombstone-keys.ts';
import { importFile, NOW } from '../imports/import.fixtures.ts';
import { recordManifest } from '../targeting/manifest.fixtures.ts';
import { contactIdOf, findAnywhere, type Person, seedLiveScores } from './rights.fixtures.ts';

// Issue 19: a rights request names one record and acts on the person. Records A and B are one
// person (the same email, written in two cases, from two sources); C is someone else.

const A: Person = {
  ref: 'PRS-A1',
  email: 'leocadie.fontanarosa@example.com',
  phoneRaw: '06 39 98 61 01',
  phone: '+33639986101',
  firstName: 'Léocadie',
  lastName: 'Fontanarosa',
};
/** the same person as A, from the loyalty programme: same email in capitals, another phone */
const B: Person = { ...A, ref: 'PRS-B2', phoneRaw: '06 39 98 61 02', phone: '+33639986102' };
const C: Person = {
  ref: 'PRS-C3',
  email: 'barthelemy.quintard@example.com',
  phoneRaw: '06 39 98 61 03',
  phone: '+33639986103',
  firstName: 'Barthélemy',
  lastName: 'Quintard',
};

/** What must not outlive the erasure of A and B: their identifiers in clear, and names. */
const IDENTIFIERS = [A.ref, B.ref, A.email, A.phone, B.phone, A.phone.slice(3), B.phone.slice(3), A.firstName, A.lastName];

let database: DatabaseHandle;
const ids: Record<string, number> = {};
let personId: number;
let exportId: string;
const files = tempFolder();
const header = 'external_id,email,phone,first_name,last_name,country,created_at';

async function importOrFail(kind: Parameters<typeof importFile>[1], name: string, ...lines: string[]): Promise<void> {
  const report = await importFile(database, kind, files.write(name, csv(...lines)));
  if (report.status !== 'committed') throw new Error(`fixture ${kind} refused: ${JSON.stringify(report.rejects)}`);
}

/**
 * Makes A and B one person whatever the importer did (it links them on their shared email once
 * identity resolution runs in it): the contract's test helper, the consent state rebuilt from
 * the ledger over both records.
 */
async function linkAsOnePerson(primary: number, other: number): Promise<void> {
  await database.pool.query('UPDATE contacts SET person_id = $1 WHERE id IN ($1, $2)', [primary, other]);
  await refreshPersonConsentState(database.db, [primary, other]);
}

async function reachableByEmail(): Promise<number[]> {
  const { rows } = await sql<{ contact_id: number }>`
    SELECT contact_id FROM ${reachableContacts('email', 'email', NOW)} r ORDER BY contact_id`.execute(database.db);
  return rows.map((row) => Number(row.contact_id));
}

async function auditOf(action: string) {
  const { rows } = await database.pool.query<{ subject_type: string; subject_id: string; details: Record<string, unknown> }>(
    'SELECT subject_type, subject_id, details FROM audit_log WHERE action = $1 ORDER BY id DESC LIMIT 1',
    [action],
  );
  return rows[0];
}

beforeAll(async () => {
  database = await createTestDatabase();
  await importOrFail('products', 'products.csv', 'sku,name,category', 'SKU-1,Garden hose,garden', 'SKU-2,"Pan, 28 cm",kitchen');
  await importOrFail(
    'contacts',
    'web-shop.csv',
    header,
    `${A.ref},${A.email},${A.phoneRaw},${A.firstName},${A.lastName},FR,2024-01-15`,
    `${C.ref},${C.email},${C.phoneRaw},${C.firstName},${C.lastName},FR,2024-01-15`,
  );
  await importOrFail('contacts', 'loyalty.csv', header, `${B.ref},${B.email.toUpperCase()},${B.phoneRaw},${B.firstName},,FR,2024-03-02`);
  for (const person of [A, B, C]) ids[person.ref] = await contactIdOf(database, person.ref);
  personId = Math.min(ids[A.ref]!, ids[B.ref]!);
  await linkAsOnePerson(personId, ids[B.ref]!);

  const consentHeader = 'external_id,purpose,channel,status,captured_at,source,method,notice_version,evidence_ref,expires_at';
  await importOrFail(
    'consents',
    'consents.csv',
    consentHeader,
    `${A.ref},profiling,,granted,2025-01-10T10:00:00Z,web:account-form,explicit_checkbox,notice-v3,proof-a-p,`,
    `${A.ref},direct_marketing,sms,granted,2025-01-10T10:00:00Z,web:account-form,double_opt_in,notice-v3,proof-a-s,`,
    // B's email grant is the later one: it decides for the person, and B's address is the one a list uses
    `${A.ref},direct_marketing,email,granted,2025-01-10T10:00:00Z,web:account-form,double_opt_in,notice-v3,proof-a-e,`,
    `${B.ref},direct_marketing,email,granted,2025-02-10T10:00:00Z,store:signup,double_opt_in,notice-v3,proof-b-e,`,
    `${C.ref},profiling,,granted,2025-01-10T10:00:00Z,web:account-form,explicit_checkbox,notice-v3,proof-c-p,`,
    `${C.ref},direct_marketing,email,granted,2025-01-10T10:00:00Z,web:account-form,double_opt_in,notice-v3,proof-c-e,`,
  );
  await importOrFail(
    'purchases',
    'purchases.csv',
    'order_id,external_id,sku,quantity,unit_price,purchased_at',
    `O-A,${A.ref},SKU-1,2,19.90,2025-03-01`,
    `O-B,${B.ref},SKU-2,1,34.50,2025-04-02`,
    `O-C,${C.ref},SKU-1,1,19.90,2025-04-03`,
  );
  const scores = await seedLiveScores(database, [personId, ids[C.ref]!]);
  exportId = await seedEmailList(scores);
});
afterAll(() => database.close());

/** An email list holding the person as lists record members: the person id, with the events that made them eligible. */
async function seedEmailList(scores: Awaited<ReturnType<typeof seedLiveScores>>): Promise<string> {
  const exported = await database.pool.query<{ id: string }>(
    `INSERT INTO target_exports (actor, model_id, model_version_id, score_set_id, channel, params, funnel, member_count, manifest_hash, created_at, delivery)
     VALUES ('marketer-key', $1, $2, $3, 'email', '{"top":10}', '{"contacts":2}', 1, 'manifest-hash', '2026-05-31T09:00:00Z', 'delivered') RETURNING id`,
    [scores.modelId, scores.modelVersionId, scores.scoreSetId],
  );
  const { rows } = await database.pool.query<{ event_id: number }>(
    `SELECT event_id FROM consent_state WHERE contact_id = $1 AND (purpose = 'profiling' OR channel_key = 'email')
     ORDER BY purpose = 'profiling' DESC`,
    [personId],
  );
  const exportIdValue = exported.rows[0]!.id;
  await recordManifest(
    database.db,
    exportIdValue,
    [
      {
        position: 1,
        contactId: personId,
        score: 0.7,
        rank: 1,
        percentile: 0.9,
        isHoldout: false,
        consentEventIds: rows.map((row) => Number(row.event_id)),
      },
    ],
    2,
  );
  return exportIdValue;
}

describe('access and portability act on the person', () => {
  it('a request naming A reports B too: records, identities, every ledger, purchases, the person-level state, scores, lists', async () => {
    const report = await accessReport(database.db, A.ref, 'cli', NOW);
    const a = ids[A.ref]!;
    const b = ids[B.ref]!;

    expect(report.subject).toMatchObject({ contactId: a, externalId: A.ref });
    expect(report.person.personId).toBe(personId);
    expect(report.person.records).toEqual([
      {
        contactId: a,
        externalId: A.ref,
        createdAt: '2024-01-15T00:00:00.000Z',
        identity: { email: A.email, phone: A.phone, firstName: A.firstName, lastName: A.lastName, country: 'FR' },
      },
      {
        contactId: b,
        externalId: B.ref,
        createdAt: '2024-03-02T00:00:00.000Z',
        identity: { email: B.email, phone: B.phone, firstName: B.firstName, lastName: null, country: 'FR' },
      },
    ]);
    expect(report.consents.events.map((event) => [event.contactId, event.evidenceRef])).toEqual([
      [a, 'proof-a-p'],
      [a, 'proof-a-s'],
      [a, 'proof-a-e'],
      [b, 'proof-b-e'],
    ]);
    expect(report.consents.status.map(({ purpose, channel, recordId, validNow }) => ({ purpose, channel, recordId, validNow }))).toEqual([
      { purpose: 'direct_marketing', channel: 'email', recordId: b, validNow: true },
      { purpose: 'direct_marketing', channel: 'sms', recordId: a, validNow: true },
      { purpose: 'profiling', channel: null, recordId: a, validNow: true },
    ]);
    expect(report.purchases.map((purchase) => [purchase.contactId, purchase.orderId])).toEqual([
      [a, 'O-A'],
      [b, 'O-B'],
    ]);
    expect(report.scores).toHaveLength(1);
    // the list reached the person at the address of the record whose email consent counted: B's
    expect(report.exports).toEqual([expect.objectContaining({ exportId, channel: 'email', position: 1, contactValue: B.email })]);
    // nothing of C
    expect(JSON.stringify(report)).not.toContain(C.email);

    expect(await auditOf('rights.access')).toEqual({
      subject_type: 'person',
      subject_id: String(personId),
      details: {
        contactId: a,
        records: [a, b],
        sections: { records: 2, consentEvents: 4, purchases: 2, scores: 1, exports: 1, oppositionLists: 0 },
      },
    });
  });

  it('a request naming B reports the same person; the portability bundle has one identity line per record', async () => {
    const fromA = await accessReport(database.db, A.ref, 'cli', NOW, 'portability');
    const fromB = await accessReport(database.db, B.ref, 'cli', NOW, 'portability');
    expect(fromB.subject.contactId).toBe(ids[B.ref]);
    expect(fromB.identity.phone).toBe(B.phone);
    expect({ ...fromB, subject: null, identity: null }).toEqual({ ...fromA, subject: null, identity: null });
    const identity = bundleTables(fromB).find((table) => table.file === 'identity.csv')!;
    expect(identity.rows.map((row) => row.externalId)).toEqual([A.ref, B.ref]);
    expect((await auditOf('rights.portability'))?.details).toMatchObject({ contactId: ids[B.ref], records: [ids[A.ref], ids[B.ref]] });
  });
});

describe('rectification and objection', () => {
  it('rectification changes the named record only, and says which', async () => {
    const result = await rectify(database.db, B.ref, { last_name: 'Fontanarosa-Brun' }, 'cli', NOW, { defaultPhoneCountry: 'FR' });
    expect(result).toEqual({ contactId: ids[B.ref], personId, changed: ['last_name'] });
    const { rows } = await database.pool.query(
      'SELECT contact_id, last_name FROM contact_personal_data WHERE contact_id = ANY($1) ORDER BY 1',
      [[ids[A.ref], ids[B.ref]]],
    );
    expect(rows).toEqual([
      { contact_id: ids[A.ref], last_name: A.lastName },
      { contact_id: ids[B.ref], last_name: 'Fontanarosa-Brun' },
    ]);
    expect(await auditOf('rights.rectification')).toEqual({
      subject_type: 'person',
      subject_id: String(personId),
      details: { contactId: ids[B.ref], records: [ids[A.ref], ids[B.ref]], fields: ['last_name'] },
    });
  });

  it('an objection recorded on B makes the person unreachable, although A’s grant is untouched', async () => {
    const before = await reachableByEmail();
    expect(before).toEqual([personId, ids[C.ref]!].sort((x, y) => x - y));

    const result = await object(database.db, B.ref, { purpose: 'direct_marketing' }, 'cli', NOW);
    expect(result).toMatchObject({ contactId: ids[B.ref], personId, channel: null, scoresDeleted: 0 });
    const { rows } = await database.pool.query('SELECT contact_id FROM consent_events WHERE id = $1', [result.eventId]);
    expect(rows).toEqual([{ contact_id: ids[B.ref] }]);

    expect(await reachableByEmail()).toEqual([ids[C.ref]]);
    // asked through A, the person's state says no direct marketing on any channel, decided by B's objection
    const report = await accessReport(database.db, A.ref, 'cli', NOW);
    const marketing = report.consents.status.filter((state) => state.purpose === 'direct_marketing');
    expect(marketing.map((state) => state.validNow)).toEqual([false, false, false]);
    expect(marketing.find((state) => state.channel === null)).toMatchObject({ status: 'objected', recordId: ids[B.ref] });
    expect((await auditOf('rights.objection'))?.details).toMatchObject({ contactId: ids[B.ref], records: [ids[A.ref], ids[B.ref]] });
  });
});

describe('erasure acts on every record of the person', () => {
  it('erasing via A erases B: personal data, purchases, scores, pressure, proofs; one tombstone per record; the receipt lists both', async () => {
    const a = ids[A.ref]!;
    const b = ids[B.ref]!;
    expect((await findAnywhere(database, IDENTIFIERS)).length).toBeGreaterThan(6);

    const receipt = await erase(database.db, A.ref, 'cli', NOW, TEST_TOMBSTONE_KEYS);

    expect(receipt).toEqual({
      contactId: a,
      personId,
      records: [a, b],
      erasedAt: NOW.toISOString(),
      reason: 'data_subject_request',
      deleted: { contact_personal_data: 2, purchases: 2, scores: 1, contact_pressure: expect.any(Number) },
      scrubbed: { consent_events: 5 },
      manifestsKept: 1,
      consentEventsKept: 5,
      tombstoneHashes: ['external_id'],
    });
    expect(receipt.deleted.contact_pressure).toBeGreaterThanOrEqual(1);
    expect(JSON.stringify(receipt)).not.toMatch(/PRS-|leocadie|\+336/i);
    expect(await findAnywhere(database, IDENTIFIERS)).toEqual([]);

    const contacts = await database.pool.query('SELECT id, external_id, erased_at FROM contacts WHERE id = ANY($1) ORDER BY id', [[a, b]]);
    expect(contacts.rows).toEqual([
      { id: a, external_id: null, erased_at: NOW },
      { id: b, external_id: null, erased_at: NOW },
    ]);
    for (const table of ['contact_personal_data', 'purchases', 'contact_pressure']) {
      const { rows } = await database.pool.query(`SELECT 1 FROM ${table} WHERE contact_id = ANY($1)`, [[a, b]]);
      expect(rows, table).toEqual([]);
    }
    const scores = await database.pool.query('SELECT contact_id FROM scores');
    expect(scores.rows).toEqual([{ contact_id: ids[C.ref] }]);
    const tombstones = await database.pool.query('SELECT external_id_key, receipt FROM erasure_tombstones ORDER BY id');
    expect(tombstones.rows.map((row) => row.external_id_key).sort()).toEqual(
      [tombstoneHash(TEST_TOMBSTONE_KEYS.current, A.ref), tombstoneHash(TEST_TOMBSTONE_KEYS.current, B.ref)].sort(),
    );
    expect(tombstones.rows.map((row) => row.receipt)).toEqual([receipt, receipt]);
    expect(await auditOf('rights.erasure')).toMatchObject({
      subject_type: 'person',
      subject_id: String(personId),
      details: { contactId: a, records: [a, b], receipt },
    });
    // C is untouched
    const left = await findAnywhere(database, [C.email, C.ref]);
    expect(left).toContain(`contact_personal_data.email: ${C.email}`);
    expect(left).toContain(`contacts.external_id: ${C.ref}`);
  });

  it.runIf(process.env.DATABASE_URL)('pg_dump --data-only holds none of their identifiers', async () => {
    const { rows } = await database.pool.query<{ name: string }>('SELECT current_database() AS name');
    const dump = execFileSync('pg_dump', ['--data-only', '--no-owner', databaseUrlFor(process.env.DATABASE_URL!, rows[0]!.name)], {
      encoding: 'utf8',
      maxBuffer: 256 * 2 ** 20,
    }).toLowerCase();
    // the dump does hold the people who are still there
    expect(dump).toContain(C.email);
    expect(dump).toContain(C.ref.toLowerCase());
    for (const value of IDENTIFIERS) expect(dump, value).not.toContain(value.toLowerCase());
  });

  it('refuses a later import of B’s external id (and A’s) with the erasure message; a request about B says it was erased', async () => {
    for (const ref of [B.ref, B.ref.toLowerCase(), A.ref]) {
      const again = await importFile(
        database,
        'contacts',
        files.write('again.csv', csv(header, `${ref},,,,,FR,2024-03-02`)),
        {},
        { tombstoneKeys: TEST_TOMBSTONE_KEYS },
      );
      expect(again.status).toBe('rejected');
      expect(again.rejects).toEqual([
        { line: 2, field: 'external_id', message: 'this person was erased on 2026-06-01 at their request and cannot be imported again' },
      ]);
    }
    await expect(accessReport(database.db, B.ref, 'cli', NOW, 'access', TEST_TOMBSTONE_KEYS)).rejects.toThrow(SubjectNotFoundError);
    await expect(accessReport(database.db, B.ref, 'cli', NOW, 'access', TEST_TOMBSTONE_KEYS)).rejects.toThrow(/was erased on 2026-06-01/);
    expect(await findAnywhere(database, IDENTIFIERS)).toEqual([]);
  });
});
