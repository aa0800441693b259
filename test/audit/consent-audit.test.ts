import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatConsentAudit } from '../../src/audit/consent-audit.format.ts';
import { type ConsentAuditReport, consentAudit, recordConsentAudit, type StateCount } from '../../src/audit/consent-audit.service.ts';
import { countingConsents, profileableContacts, reachableContacts } from '../../src/consent/eligibility.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { loadAuditBase, NOW } from './consent-audit.fixtures.ts';

let database: DatabaseHandle;
let report: ConsentAuditReport;

beforeAll(async () => {
  database = await createTestDatabase();
  await loadAuditBase(database);
  report = await consentAudit(database.db, NOW);
});
afterAll(() => database.close());

function state(
  purpose: string,
  channel: string | null,
  contacts: number,
  counting: number,
  notCounting: Partial<StateCount['notCounting']>,
): StateCount {
  const zero = { withdrawn: 0, refused: 0, objected: 0, noProofOfMeans: 0, invalidMethod: 0, expired: 0 };
  return { purpose, channel, contacts, counting, notCounting: { ...zero, ...notCounting }, noEvent: 13 - contacts };
}

describe('consent audit', () => {
  it('counts contacts, erased ones apart', () => {
    expect(report.at).toBe(NOW.toISOString());
    expect(report.contacts).toEqual({ total: 14, erased: 1 });
  });

  it('counts every ledger event by purpose, channel, status and method (erased contacts included: it is the ledger)', () => {
    expect(report.events).toEqual({
      total: 26,
      byPurpose: [
        { value: 'direct_marketing', events: 9 },
        { value: 'profiling', events: 17 },
      ],
      byChannel: [
        { value: null, events: 18 },
        { value: 'email', events: 4 },
        { value: 'phone', events: 1 },
        { value: 'sms', events: 3 },
      ],
      byStatus: [
        { value: 'granted', events: 22 },
        { value: 'objected', events: 1 },
        { value: 'refused', events: 1 },
        { value: 'withdrawn', events: 2 },
      ],
      byMethod: [
        { value: null, explicit: null, events: 5 },
        { value: 'bundled', explicit: false, events: 1 },
        { value: 'double_opt_in', explicit: true, events: 3 },
        { value: 'explicit_checkbox', explicit: true, events: 12 },
        { value: 'implied', explicit: false, events: 1 },
        { value: 'pre_ticked', explicit: false, events: 1 },
        { value: 'recorded_verbal', explicit: true, events: 1 },
        { value: 'signed_form', explicit: true, events: 2 },
      ],
    });
  });

  it('classifies the current consent of each live contact × purpose × channel, with one reason each', () => {
    expect(report.state).toEqual([
      state('direct_marketing', null, 1, 0, { objected: 1 }),
      state('direct_marketing', 'email', 4, 1, { objected: 1, noProofOfMeans: 1, invalidMethod: 1 }),
      state('direct_marketing', 'phone', 1, 1, {}),
      state('direct_marketing', 'postal', 0, 0, {}),
      state('direct_marketing', 'push', 0, 0, {}),
      state('direct_marketing', 'sms', 3, 3, {}),
      state('profiling', null, 12, 5, { withdrawn: 1, refused: 1, noProofOfMeans: 3, invalidMethod: 1, expired: 1 }),
    ]);
    for (const row of report.state) {
      const reasons = Object.values(row.notCounting).reduce((sum, count) => sum + count, 0);
      expect(row.counting + reasons, `${row.purpose}/${row.channel}`).toBe(row.contacts);
    }
  });

  it('agrees with the consent gate: counting = what the gate lets through, less grants objected to since', async () => {
    const profiling = report.state.find((row) => row.purpose === 'profiling')!;
    expect((await profileableContacts(database.db, NOW, true)).length).toBe(profiling.counting);
    for (const channel of ['email', 'sms', 'phone']) {
      const { rows } = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM ${countingConsents('direct_marketing', channel, NOW, true)} m`.execute(database.db);
      const row = report.state.find((s) => s.channel === channel)!;
      expect(rows[0]!.n, channel).toBe(row.counting + row.notCounting.objected);
    }
  });

  it('lists the latest grants without proof of means, to ask again, flagging those from before 25 May 2018', () => {
    expect(report.withoutProof).toEqual({
      total: 4,
      people: 3,
      beforeGdpr: 3,
      contacts: [
        {
          externalId: 'A03',
          purpose: 'direct_marketing',
          channel: 'email',
          capturedAt: '2017-03-01T00:00:00.000Z',
          expiresAt: null,
          source: null,
          method: null,
          beforeGdpr: true,
        },
        {
          externalId: 'A03',
          purpose: 'profiling',
          channel: null,
          capturedAt: '2017-03-01T00:00:00.000Z',
          expiresAt: null,
          source: null,
          method: 'explicit_checkbox',
          beforeGdpr: true,
        },
        {
          externalId: 'A04',
          purpose: 'profiling',
          channel: null,
          capturedAt: '2019-06-01T00:00:00.000Z',
          expiresAt: '2026-06-05T00:00:00.000Z',
          source: 'web_form',
          method: null,
          beforeGdpr: false,
        },
        {
          externalId: 'A06',
          purpose: 'profiling',
          channel: null,
          capturedAt: '2018-05-24T23:00:00.000Z',
          expiresAt: null,
          source: null,
          method: 'implied',
          beforeGdpr: true,
        },
      ],
    });
    const noProof = report.state.reduce((sum, row) => sum + row.notCounting.noProofOfMeans, 0);
    expect(report.withoutProof.total).toBe(noProof);
  });

  it('lists the latest grants by a pre-ticked, implied or bundled method', () => {
    expect(report.nonExplicit).toEqual({
      total: 3,
      people: 2,
      byMethod: { bundled: 1, pre_ticked: 1, implied: 1 },
      contacts: [
        {
          externalId: 'A05',
          purpose: 'direct_marketing',
          channel: 'email',
          capturedAt: '2025-01-05T00:00:00.000Z',
          expiresAt: null,
          source: 'checkout',
          method: 'bundled',
        },
        {
          externalId: 'A05',
          purpose: 'profiling',
          channel: null,
          capturedAt: '2025-01-05T00:00:00.000Z',
          expiresAt: '2026-06-10T00:00:00.000Z',
          source: 'checkout',
          method: 'pre_ticked',
        },
        {
          externalId: 'A06',
          purpose: 'profiling',
          channel: null,
          capturedAt: '2018-05-24T23:00:00.000Z',
          expiresAt: null,
          source: null,
          method: 'implied',
        },
      ],
    });
  });

  it('lists the counting consents expiring within 30 days, the bound included, soonest first', () => {
    expect(report.expiring).toEqual({
      withinDays: 30,
      total: 3,
      people: 3,
      contacts: [
        {
          externalId: 'A01',
          purpose: 'direct_marketing',
          channel: 'email',
          capturedAt: '2024-01-10T00:00:00.000Z',
          expiresAt: '2026-06-15T00:00:00.000Z',
          source: 'web_form',
          method: 'double_opt_in',
        },
        {
          externalId: 'A02',
          purpose: 'profiling',
          channel: null,
          capturedAt: '2024-02-01T00:00:00.000Z',
          expiresAt: '2026-06-20T00:00:00.000Z',
          source: 'mobile_app',
          method: 'explicit_checkbox',
        },
        {
          externalId: 'A11',
          purpose: 'direct_marketing',
          channel: 'sms',
          capturedAt: '2025-06-01T00:00:00.000Z',
          expiresAt: '2026-07-01T12:00:00.000Z',
          source: 'web_form',
          method: 'explicit_checkbox',
        },
      ],
    });
  });

  it('takes the expiry window as an option', async () => {
    const ids = (r: ConsentAuditReport) => r.expiring.contacts.map((c) => `${c.externalId}/${c.channel ?? '-'}`);
    expect(ids(await consentAudit(database.db, NOW, { expiringWithinDays: 29 }))).toEqual(['A01/email', 'A02/-']);
    expect(ids(await consentAudit(database.db, NOW, { expiringWithinDays: 90 }))).toEqual(['A01/email', 'A02/-', 'A11/sms', 'A09/phone']);
    await expect(consentAudit(database.db, NOW, { expiringWithinDays: -1 })).rejects.toThrow(/whole number of days/);
    await expect(consentAudit(database.db, NOW, { expiringWithinDays: 1.5 })).rejects.toThrow(/whole number of days/);
  });

  it('is JSON-serialisable as it is', () => {
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
  });

  it('summarises every count and the first lines of each list, with their totals', () => {
    const text = formatConsentAudit(report, 2);
    expect(text).toMatch(/contacts: 14 \(1 erased\)/);
    expect(text).toMatch(/ledger: 26 consent events/);
    expect(text).toMatch(/by method {3}\(no method\) 5 · bundled \(never valid\) 1/);
    expect(text).toMatch(/profiling\s+-\s+12\s+5\s+1\s+1\s+0\s+3\s+1\s+1\s+1\n/);
    expect(text).toMatch(
      /without proof of means, to ask again \(3 collected before 2018-05-25\): 4 consents of 3 contacts\n\s+A03\s+direct_marketing\s+email/,
    );
    expect(text).toMatch(/… and 2 more: --json or --out FILE gives the full list/);
    expect(text).toMatch(/non-explicit method, never consent \(bundled 1, pre_ticked 1, implied 1\): 3 consents of 2 contacts/);
    expect(text).toMatch(/expiring within 30 days: 3 consents of 3 contacts\n\s+A01\s+direct_marketing\s+email\s+expires 2026-06-15/);
    expect(text).not.toMatch(/A14/);
  });

  it('records that an audit was produced, with totals only and no personal data', async () => {
    const id = await recordConsentAudit(database.db, report, 'cli:dpo', 'file');
    const row = await database.db.selectFrom('audit_log').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ at: NOW, actor: 'cli:dpo', action: 'audit.consents', subject_type: null, subject_id: null });
    expect(row.details).toEqual({
      at: NOW.toISOString(),
      output: 'file',
      expiringWithinDays: 30,
      withoutProof: 4,
      nonExplicit: 3,
      expiring: 3,
      persons: 13,
      personsWhoseRecordsDisagree: 0,
    });
    expect(JSON.stringify(row.details)).not.toMatch(/A\d\d/);
  });

  it('reflects a new ledger event at once: a withdrawal removes the grant from the lists', async () => {
    await database.pool.query(
      `INSERT INTO consent_events (contact_id, purpose, channel, status, captured_at, source)
       SELECT id, 'profiling', NULL, 'withdrawn', $1, 'web_form' FROM contacts WHERE external_id = 'A02'`,
      [new Date(NOW.getTime() - 60_000)],
    );
    const after = await consentAudit(database.db, NOW);
    expect(after.expiring.contacts.map((c) => c.externalId)).toEqual(['A01', 'A11']);
    expect(after.state.find((row) => row.purpose === 'profiling')).toMatchObject({ counting: 4, notCounting: { withdrawn: 2 } });
    expect(after.events.total).toBe(27);
  });

  it('counts a grant objected to at its very instant as objected, as the gate does', async () => {
    // A11's SMS grant was captured at 2025-06-01T00:00:00Z; an objection to every channel at that same instant wins
    await database.pool.query(
      `INSERT INTO consent_events (contact_id, purpose, channel, status, captured_at, source)
       SELECT id, 'direct_marketing', NULL, 'objected', '2025-06-01T00:00:00Z', 'dpo_request' FROM contacts WHERE external_id = 'A11'`,
    );
    const after = await consentAudit(database.db, NOW);
    const sms = after.state.find((row) => row.channel === 'sms')!;
    expect(sms).toMatchObject({ contacts: 3, counting: 2, notCounting: { objected: 1 } });
    expect(after.expiring.contacts.map((c) => c.externalId)).toEqual(['A01']);
    const { rows } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM ${reachableContacts('sms', 'mobile', NOW)} r
      JOIN contacts c ON c.id = r.contact_id WHERE c.external_id = 'A11'`.execute(database.db);
    expect(rows[0]!.n).toBe(0);
  });
});
