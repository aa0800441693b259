import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONSENT_POLICY, DEFAULT_TARGETING_POLICY } from '../../src/config.ts';
import { sha256Hex } from '../../src/contacts/identity.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { refreshPersonConsentState } from '../../src/identities/resolution.repository.ts';
import { exportManifest, verifyExport } from '../../src/targeting/export.service.ts';
import { buildTargetList, type TargetList } from '../../src/targeting/target-list.service.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { SCORED_SKU, type ScoredBase, seedScoredBase } from '../targeting/targeting.fixtures.ts';

/*
 * A list member is a person; the contact detail and the external id a list and its manifest
 * show are those of the record whose channel consent counted for the member (issue 19).
 * Person 1 (rank 1): record B (same email in upper case, another external id) granted email
 * later than the primary record: B's detail is shown. Person 2 (rank 2): record C granted email
 * before the primary record did: the primary record's detail is shown.
 */

const NOW = new Date('2026-11-20T09:00:00Z');
const DAY = 86_400_000;
const POLICIES = { consent: DEFAULT_CONSENT_POLICY, targeting: { ...DEFAULT_TARGETING_POLICY, pressureMaxLists: 100 } };

let database: DatabaseHandle;
let base: ScoredBase;
let recordB: number;
let recordC: number;
let bEmailEvent: number;
let list: TargetList;

async function addRecord(externalId: string, email: string, emailGrantedAt: Date): Promise<{ id: number; event: number }> {
  const { db } = database;
  const row = await db
    .insertInto('contacts')
    .values({ external_id: externalId, created_at: new Date(NOW.getTime() - 100 * DAY) })
    .returning('id')
    .executeTakeFirstOrThrow();
  const id = Number(row.id);
  await db
    .insertInto('contact_personal_data')
    .values({ contact_id: id, email, email_hash: sha256Hex(email.toLowerCase()), country: 'FR' })
    .execute();
  const event = await db
    .insertInto('consent_events')
    .values({
      contact_id: id,
      purpose: 'direct_marketing',
      channel: 'email',
      status: 'granted',
      captured_at: emailGrantedAt,
      source: 'crm:newsletter',
      method: 'double_opt_in',
      notice_version: 'privacy-v3',
      evidence_ref: null,
      expires_at: null,
      import_id: null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return { id, event: Number(event.id) };
}

beforeAll(async () => {
  database = await createTestDatabase();
  // the base's consents are captured 60 days before NOW
  base = await seedScoredBase(database, 6, NOW);
  const [first, second] = base.people as [ScoredBase['people'][number], ScoredBase['people'][number]];
  const b = await addRecord('CRM-88001', first.email.toUpperCase(), new Date(NOW.getTime() - 10 * DAY));
  const c = await addRecord('CRM-88002', second.email.toUpperCase(), new Date(NOW.getTime() - 90 * DAY));
  recordB = b.id;
  recordC = c.id;
  bEmailEvent = b.event;
  await sql`UPDATE contacts SET person_id = ${first.id} WHERE id = ${recordB}`.execute(database.db);
  await sql`UPDATE contacts SET person_id = ${second.id} WHERE id = ${recordC}`.execute(database.db);
  await refreshPersonConsentState(database.db, [first.id, second.id, recordB, recordC]);
  list = await buildTargetList(
    database.db,
    { sku: SCORED_SKU, channel: 'email', size: { top: 10 }, holdoutPercent: 0, actor: 'test', apiKeyId: null },
    POLICIES,
    NOW,
  );
});
afterAll(() => database?.close());

describe('a list member with several records', () => {
  it('is listed once, with the contact detail and external id of the record whose email consent counts', () => {
    const [first, second] = base.people as [ScoredBase['people'][number], ScoredBase['people'][number]];
    expect(list.members.map((member) => member.externalId)).toEqual(['CRM-88001', ...base.people.slice(1).map((p) => p.ref)]);
    expect(list.members[0]).toMatchObject({ externalId: 'CRM-88001', contact: first.email.toUpperCase(), rank: 1 });
    expect(list.members[0]?.consentEventIds[1]).toBe(bEmailEvent);
    // record C's grant is older than the primary record's: the primary record's detail
    expect(list.members[1]).toMatchObject({ externalId: second.ref, contact: second.email, rank: 2 });
  });

  it('the manifest keeps the person, and reads the detail of the same record back; its hashes verify', async () => {
    const manifest = await exportManifest(database.db, list.exportId);
    const [first, second] = base.people as [ScoredBase['people'][number], ScoredBase['people'][number]];
    expect(manifest.members.map((member) => member.contactId)).toEqual(base.people.map((p) => p.id));
    expect(manifest.members.map((member) => member.contactId)).not.toContain(recordB);
    expect(manifest.members.map((member) => member.contactId)).not.toContain(recordC);
    expect(manifest.members[0]).toMatchObject({ contactId: first.id, externalId: 'CRM-88001', contactValue: first.email.toUpperCase() });
    expect(manifest.members[1]).toMatchObject({ contactId: second.id, externalId: second.ref, contactValue: second.email });
    const verification = await verifyExport(database.db, list.exportId);
    expect(verification).toMatchObject({ valid: true, alteredPositions: [], erasedMembers: 0 });
  });
});
