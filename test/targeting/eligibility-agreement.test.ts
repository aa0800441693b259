import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consentAudit } from '../../src/audit/consent-audit.service.ts';
import { DEFAULT_CONSENT_POLICY } from '../../src/config.ts';
import { channelFunnel, reachabilityChecks, reachableContacts } from '../../src/consent/eligibility.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { importOppositionList } from '../../src/opposition/opposition.import.ts';
import { accessReport, erase, object } from '../../src/rights/rights.service.ts';
import { buildTargetList } from '../../src/targeting/target-list.service.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { captureLogger } from '../helpers/silent-logger.ts';
import { TEST_TOMBSTONE_KEYS } from '../helpers/tombstone-keys.ts';
import { SCORED_SKU, type ScoredBase, seedScoredBase } from './targeting.fixtures.ts';

/*
 * A target list checks eligibility row by row while it walks the scores (reachabilityChecks);
 * the funnel and audits use the set-based reachableContacts. Both must say the same, person
 * by person, over a base where every rule bites somewhere. So must the access report and the
 * consent audit, which say whether a channel consent counts now: an objection captured at the
 * same instant as a channel grant stands against it in every one of them.
 */

const NOW = new Date('2026-11-20T09:00:00Z');
const EARLIER = new Date(NOW.getTime() - 86_400_000);
const files = tempFolder();

describe('row-by-row and set-based eligibility agree', () => {
  let database: DatabaseHandle;
  let base: ScoredBase;
  beforeAll(async () => {
    database = await createTestDatabase();
    base = await seedScoredBase(database, 80, new Date(NOW.getTime() - 30 * 86_400_000));
    const { db } = database;
    const event = (
      contactId: number,
      purpose: string,
      channel: string | null,
      status: 'granted' | 'withdrawn',
      extra: Record<string, unknown> = {},
    ) => ({
      contact_id: contactId,
      purpose,
      channel,
      status,
      captured_at: EARLIER,
      source: 'web:preferences',
      method: purpose === 'profiling' ? 'explicit_checkbox' : 'double_opt_in',
      notice_version: 'privacy-v3',
      evidence_ref: null,
      expires_at: null,
      import_id: null,
      ...extra,
    });
    const person = (i: number) => base.people[i]!;
    await db
      .insertInto('consent_events')
      .values([
        event(person(1).id, 'direct_marketing', 'email', 'withdrawn'),
        event(person(4).id, 'profiling', null, 'withdrawn'),
        event(person(19).id, 'direct_marketing', 'email', 'granted'),
        // granted again, but only until yesterday: expired now
        { ...event(person(7).id, 'direct_marketing', 'email', 'granted'), expires_at: new Date(NOW.getTime() - 3_600_000) },
        // granted without proof of means: never counts
        { ...event(person(9).id, 'direct_marketing', 'email', 'granted'), captured_at: new Date(EARLIER.getTime() + 1), source: '' },
      ])
      .execute();
    await object(db, person(11).ref, { purpose: 'direct_marketing' }, 'test', EARLIER);
    await object(db, person(13).ref, { purpose: 'direct_marketing', channel: 'email' }, 'test', EARLIER);
    await erase(db, person(15).ref, 'test', EARLIER, TEST_TOMBSTONE_KEYS);
    await db.deleteFrom('contact_personal_data').where('contact_id', '=', person(17).id).execute();
    // objected long ago, then granted email again afterwards: the new grant counts
    await object(db, person(19).ref, { purpose: 'direct_marketing' }, 'test', new Date(EARLIER.getTime() - 86_400_000));
    // an all-channel objection at the very instant of the email grant, recorded after it (25) or before it (27):
    // the objection wins; one a millisecond before the grant (29) does not stand against it
    const tieGrant = (i: number) =>
      db
        .insertInto('consent_events')
        .values(event(person(i).id, 'direct_marketing', 'email', 'granted'))
        .execute();
    await tieGrant(25);
    await object(db, person(25).ref, { purpose: 'direct_marketing' }, 'test', EARLIER);
    await object(db, person(27).ref, { purpose: 'direct_marketing' }, 'test', EARLIER);
    await tieGrant(27);
    await object(db, person(29).ref, { purpose: 'direct_marketing' }, 'test', new Date(EARLIER.getTime() - 1));
    await tieGrant(29);
    await importOppositionList(
      { database, logger: captureLogger().logger, now: EARLIER, defaultPhoneCountry: 'FR' },
      {
        name: 'suppression',
        channel: 'email',
        listDate: EARLIER,
        file: files.write('s.csv', csv('value', person(21).email, person(23).email)),
      },
    );
  });
  afterAll(() => database?.close());

  it('keeps exactly the reachable scored people, in rank order', async () => {
    const list = await buildTargetList(
      database.db,
      { sku: SCORED_SKU, channel: 'email', size: { top: 1000 }, holdoutPercent: 0, actor: 'test', apiKeyId: null },
      {
        consent: DEFAULT_CONSENT_POLICY,
        targeting: { pressureMaxLists: 100, pressureWindowDays: 7, maxMembers: 1000, deliveryTimeoutSeconds: 900 },
      },
      NOW,
    );
    const { rows } = await sql<{ contact_id: number }>`
      SELECT r.contact_id FROM ${reachableContacts('email', 'email', NOW)} r
      JOIN scores s ON s.contact_id = r.contact_id AND s.score_set_id = ${base.scoreSetId}
      ORDER BY s.rank`.execute(database.db);
    const expected = rows.map((row) => Number(row.contact_id));
    const idOfRank = new Map(base.people.map((p) => [p.rank, p.id]));
    expect(list.members.map((member) => idOfRank.get(member.rank))).toEqual(expected);
    // every rule above removed someone, and persons 19 and 29 are back
    const excluded = [1, 4, 7, 9, 11, 13, 15, 17, 21, 23, 25, 27].map((i) => base.people[i]!.id);
    for (const id of excluded) expect(expected).not.toContain(id);
    expect(expected).toContain(base.people[19]!.id);
    expect(expected).toContain(base.people[29]!.id);
    // the scores of the erased person and of the one who withdrew profiling went with those changes
    expect(list.funnel).toMatchObject({ scored: 80, examined: 78, returned: expected.length });
  });

  it('the funnel, the access report and the consent audit say what the gate says, ties included', async () => {
    const { db } = database;
    const { rows: reachable } = await sql<{
      n: number;
    }>`SELECT count(*)::int AS n FROM ${reachableContacts('email', 'email', NOW)} r`.execute(db);
    const funnel = await channelFunnel(db, 'email', NOW, DEFAULT_CONSENT_POLICY);
    expect(funnel.blocked).toBeNull();
    expect(funnel.notObjected).toBe(reachable[0]!.n);

    // the row-by-row gate, person by person: does the email consent count, and does an objection stand against it
    const checks = reachabilityChecks(sql`c.id`, 'email', 'email', NOW);
    const { rows: gate } = await sql<{ id: number; channel_event_id: number | null; objected: boolean }>`
      SELECT c.id, ${checks.columns} FROM contacts c ${checks.joins} WHERE c.erased_at IS NULL ORDER BY c.id`.execute(db);
    const emailCountsAtGate = new Map(gate.map((row) => [Number(row.id), row.channel_event_id !== null && !row.objected]));
    for (const i of [25, 27]) expect(emailCountsAtGate.get(base.people[i]!.id), `person ${i}`).toBe(false);
    expect(emailCountsAtGate.get(base.people[29]!.id)).toBe(true);

    const emailValidInReport = new Map<number, boolean>();
    for (const person of base.people.filter((p) => emailCountsAtGate.has(p.id))) {
      const report = await accessReport(db, person.ref, 'test', NOW);
      const email = report.consents.status.find((state) => state.purpose === 'direct_marketing' && state.channel === 'email');
      emailValidInReport.set(person.id, email?.validNow ?? false);
    }
    expect.soft(emailValidInReport, 'access report: email validNow per person').toEqual(emailCountsAtGate);

    const audit = await consentAudit(db, NOW);
    const emailAudit = audit.state.find((row) => row.purpose === 'direct_marketing' && row.channel === 'email')!;
    expect.soft(emailAudit.counting, 'consent audit: email consents counting').toBe([...emailCountsAtGate.values()].filter(Boolean).length);
  });
});
