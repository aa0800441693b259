import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONSENT_POLICY, DEFAULT_TARGETING_POLICY } from '../../src/config.ts';
import { recordConsents } from '../../src/consent/consent-recording.service.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { DEFAULT_IDENTITY_POLICY, resolveIdentities } from '../../src/identities/resolution.repository.ts';
import { buildTargetList } from '../../src/targeting/target-list.service.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { SCORED_SKU, type ScoredBase, seedScoredBase } from '../targeting/targeting.fixtures.ts';

/*
 * Issue 19 acceptance: a person with two records, a grant on one and a withdrawal on the other
 * recorded later, is in no list for that channel; asked 1 ms after the withdrawal, with no job in
 * between. Both directions: the withdrawal on the person's first record, and on the other one.
 */

const NOW = new Date('2026-11-20T09:00:00Z');
const DAY = 86_400_000;
const POLICIES = { consent: DEFAULT_CONSENT_POLICY, targeting: { ...DEFAULT_TARGETING_POLICY, pressureMaxLists: 100 } };

let database: DatabaseHandle;
let base: ScoredBase;

/** A second record of `person` from another source (same email, other case), with an email grant older than the person's. */
async function secondRecord(person: ScoredBase['people'][number], externalId: string): Promise<void> {
  const client = await database.pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query<{ id: number }>(`INSERT INTO contacts (external_id, created_at) VALUES ($1, $2) RETURNING id`, [
      externalId,
      new Date(NOW.getTime() - 400 * DAY),
    ]);
    await client.query(
      `INSERT INTO contact_personal_data (contact_id, email, email_hash, country)
       SELECT $1, upper(email), email_hash, country FROM contact_personal_data WHERE contact_id = $2`,
      [rows[0]!.id, person.id],
    );
    await client.query(
      `INSERT INTO consent_events (contact_id, purpose, channel, status, captured_at, source, method, notice_version)
       VALUES ($1, 'direct_marketing', 'email', 'granted', $2, 'crm:newsletter', 'double_opt_in', 'privacy-v2')`,
      [rows[0]!.id, new Date(NOW.getTime() - 300 * DAY)],
    );
    const report = await resolveIdentities(client, [rows[0]!.id], DEFAULT_IDENTITY_POLICY);
    await client.query('COMMIT');
    expect(report.relinked).toEqual([expect.objectContaining({ externalId, toPerson: person.id })]);
  } finally {
    client.release();
  }
}

async function listedRefs(at: Date): Promise<string[]> {
  const list = await buildTargetList(
    database.db,
    { sku: SCORED_SKU, channel: 'email', size: { top: 100 }, holdoutPercent: 0, actor: 'test', apiKeyId: null },
    POLICIES,
    at,
  );
  return list.members.map((member) => member.externalId);
}

async function withdrawEmail(externalId: string, at: Date): Promise<void> {
  await recordConsents(
    database.db,
    [{ externalId, purpose: 'direct_marketing', channel: 'email', status: 'withdrawn', capturedAt: at, source: 'preference_centre' }],
    { actor: 'test', now: at },
  );
}

beforeAll(async () => {
  database = await createTestDatabase();
  base = await seedScoredBase(database, 6, NOW);
  await secondRecord(base.people[0]!, 'CRM-70001');
  await secondRecord(base.people[1]!, 'CRM-70002');
});
afterAll(() => database?.close());

describe('a withdrawal on one record of a person', () => {
  it('both persons are listed, once each, before any withdrawal', async () => {
    const refs = await listedRefs(NOW);
    expect(refs).toHaveLength(base.people.length);
    expect(refs).toContain(base.people[0]!.ref);
    expect(refs).toContain(base.people[1]!.ref);
    expect(refs).not.toContain('CRM-70001');
  });

  it('on the first record, while the other record holds an older grant: in no list 1 ms later', async () => {
    const at = new Date(NOW.getTime() + 1_000);
    await withdrawEmail(base.people[0]!.ref, at);
    const refs = await listedRefs(new Date(at.getTime() + 1));
    expect(refs).not.toContain(base.people[0]!.ref);
    expect(refs).not.toContain('CRM-70001');
    expect(refs).toContain(base.people[1]!.ref);
  });

  it('on the other record, while the first record holds an older grant: in no list 1 ms later', async () => {
    const at = new Date(NOW.getTime() + 2_000);
    await withdrawEmail('CRM-70002', at);
    const refs = await listedRefs(new Date(at.getTime() + 1));
    expect(refs).not.toContain(base.people[1]!.ref);
    expect(refs).not.toContain('CRM-70002');
    expect(refs).toHaveLength(base.people.length - 2);
  });
});
