import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ConsentEventInput,
  InvalidConsentEventsError,
  MAX_CONSENT_EVENTS,
  recordConsents,
} from '../../src/consent/consent-recording.service.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { erase } from '../../src/rights/rights.service.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { TEST_TOMBSTONE_KEYS } from '../helpers/tombstone-keys.ts';
import { importFile, NOW } from '../imports/import.fixtures.ts';
import { contactIdOf, NEIGHBOUR, PEOPLE, SUBJECT, seedPeople, THIRD } from '../rights/rights.fixtures.ts';

let database: DatabaseHandle;
const OPTIONS = { actor: 'apikey:1:test', now: NOW, requestId: 'req-1', tombstoneKeys: TEST_TOMBSTONE_KEYS };

beforeAll(async () => {
  database = await createTestDatabase();
  await seedPeople(database);
});
afterAll(() => database?.close());

async function count(table: string): Promise<number> {
  return (await database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)).rows[0]!.n;
}

async function refused(events: ConsentEventInput[]): Promise<InvalidConsentEventsError> {
  const before = { events: await count('consent_events'), audit: await count('audit_log') };
  const error = await recordConsents(database.db, events, OPTIONS).then(
    () => {
      throw new Error('the events were accepted');
    },
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(InvalidConsentEventsError);
  expect({ events: await count('consent_events'), audit: await count('audit_log') }).toEqual(before);
  return error as InvalidConsentEventsError;
}

const SMS_WITHDRAWN: ConsentEventInput = {
  externalId: NEIGHBOUR.ref,
  purpose: 'direct_marketing',
  channel: 'sms',
  status: 'withdrawn',
  capturedAt: '2026-05-01T08:00:00+02:00',
  source: 'sms:STOP',
  method: 'explicit_checkbox',
};

describe('recordConsents', () => {
  it('records events in the ledger, the consent state follows, one audit line with counts and no reference', async () => {
    const result = await recordConsents(
      database.db,
      [
        SMS_WITHDRAWN,
        {
          externalId: THIRD.ref,
          purpose: 'profiling',
          status: 'granted',
          capturedAt: new Date('2026-05-02T00:00:00Z'),
          source: 'web',
          method: 'double_opt_in',
        },
      ],
      OPTIONS,
    );
    expect(result).toEqual({ recorded: 2, alreadyRecorded: 0, eventIds: [expect.any(Number), expect.any(Number)] });

    const { rows } = await database.pool.query(
      `SELECT s.event_id, s.status, s.counts, s.captured_at FROM consent_state s
       WHERE (s.contact_id, s.purpose, s.channel_key) IN (($1::bigint, 'direct_marketing', 'sms'), ($2::bigint, 'profiling', ''))
       ORDER BY s.event_id`,
      [await contactIdOf(database, NEIGHBOUR.ref), await contactIdOf(database, THIRD.ref)],
    );
    expect(rows).toEqual([
      { event_id: result.eventIds[0], status: 'withdrawn', counts: false, captured_at: new Date('2026-05-01T06:00:00Z') },
      { event_id: result.eventIds[1], status: 'granted', counts: true, captured_at: new Date('2026-05-02T00:00:00Z') },
    ]);

    const audit = await database.pool.query(
      `SELECT at, actor, request_id, subject_id, details FROM audit_log WHERE action = 'consents.recorded'`,
    );
    expect(audit.rows).toEqual([
      {
        at: NOW,
        actor: 'apikey:1:test',
        request_id: 'req-1',
        subject_id: null,
        details: {
          events: 2,
          recorded: 2,
          alreadyRecorded: 0,
          byPurpose: { 'direct_marketing/sms': 1, profiling: 1 },
          byStatus: { withdrawn: 1, granted: 1 },
        },
      },
    ]);
  });

  it('an event already in the ledger is not written again: its id is given back', async () => {
    const first = await recordConsents(database.db, [SMS_WITHDRAWN], OPTIONS);
    expect(first.recorded).toBe(0);
    const again = await recordConsents(
      database.db,
      [{ ...SMS_WITHDRAWN, externalId: ` ${NEIGHBOUR.ref} `, noticeVersion: 'other' }],
      OPTIONS,
    );
    expect(again).toEqual({ recorded: 0, alreadyRecorded: 1, eventIds: first.eventIds });
    // another status at the same instant is another event, as in the import
    const other = await recordConsents(database.db, [{ ...SMS_WITHDRAWN, status: 'refused' }], OPTIONS);
    expect(other.recorded).toBe(1);
  });

  it('lists every problem of every event, in order, and writes nothing', async () => {
    const error = await refused([
      { ...SMS_WITHDRAWN, capturedAt: '2026-05-03T00:00:00Z' },
      { externalId: '', purpose: 'direct_marketing', status: 'maybe', capturedAt: '2026-13-01', method: 'telepathic', expiresAt: 'never' },
      { ...SMS_WITHDRAWN, externalId: 'RGT-0000', capturedAt: '2026-05-04T00:00:00Z' },
      { ...SMS_WITHDRAWN, capturedAt: '2026-05-03T02:00:00+02:00' },
      {
        ...SMS_WITHDRAWN,
        purpose: 'profiling',
        capturedAt: '2026-07-01T00:00:00Z',
        expiresAt: '2026-01-01T00:00:00Z',
        evidenceRef: 'e'.repeat(501),
      },
    ]);
    expect(error.problems.map(({ index, field }) => `${index}.${field}`)).toEqual([
      '1.externalId',
      '1.channel',
      '1.status',
      '1.capturedAt',
      '1.method',
      '1.expiresAt',
      '2.externalId',
      '3.capturedAt',
      '4.channel',
      '4.capturedAt',
      '4.evidenceRef',
      '4.expiresAt',
    ]);
    const problemOf = (index: number, field: string) => error.problems.find((p) => p.index === index && p.field === field)?.problem;
    expect(problemOf(1, 'externalId')).toBe('is empty');
    expect(problemOf(1, 'channel')).toBe('a direct_marketing consent needs a channel (one of email, phone, postal, push, sms)');
    expect(problemOf(1, 'status')).toBe('unknown status "maybe" (expected granted, withdrawn, refused)');
    expect(problemOf(1, 'capturedAt')).toBe('"2026-13-01" is not a real date');
    expect(problemOf(2, 'externalId')).toBe('no contact has this external id (import the contact first)');
    expect(problemOf(3, 'capturedAt')).toMatch(/same instant as event 0 of this request/);
    expect(problemOf(4, 'channel')).toBe('a profiling consent takes no channel, found "sms"');
    expect(problemOf(4, 'capturedAt')).toBe('2026-07-01T00:00:00.000Z is in the future');
    expect(problemOf(4, 'evidenceRef')).toBe('is longer than 500 characters');
    expect(JSON.stringify(error.problems)).not.toContain('RGT-0000');
  });

  it('refuses an empty request and one over the limit', async () => {
    expect((await refused([])).problems).toEqual([{ index: null, field: 'consents', problem: 'holds no event' }]);
    const tooMany = await refused(Array.from({ length: MAX_CONSENT_EVENTS + 1 }, () => SMS_WITHDRAWN));
    expect(tooMany.problems).toEqual([
      { index: null, field: 'consents', problem: `holds 10001 events: at most ${MAX_CONSENT_EVENTS} per request` },
    ]);
  });

  it(`records ${MAX_CONSENT_EVENTS} events in one go`, async () => {
    const events = Array.from(
      { length: MAX_CONSENT_EVENTS },
      (_, i): ConsentEventInput => ({
        externalId: PEOPLE[i % PEOPLE.length]!.ref,
        purpose: 'direct_marketing',
        channel: 'email',
        status: i % 2 === 0 ? 'granted' : 'withdrawn',
        capturedAt: new Date(Date.UTC(2025, 6, 1) + i * 60_000),
        source: 'batch',
        method: 'double_opt_in',
      }),
    );
    const before = await count('consent_events');
    const result = await recordConsents(database.db, events, OPTIONS);
    expect(result.recorded).toBe(MAX_CONSENT_EVENTS);
    expect(new Set(result.eventIds).size).toBe(MAX_CONSENT_EVENTS);
    expect(await count('consent_events')).toBe(before + MAX_CONSENT_EVENTS);
    // the latest event of each person is the one in force
    const last = events.length - 1;
    const { rows } = await database.pool.query<{ event_id: number }>(
      `SELECT event_id FROM consent_state WHERE contact_id = $1 AND purpose = 'direct_marketing' AND channel_key = 'email'`,
      [await contactIdOf(database, PEOPLE[last % PEOPLE.length]!.ref)],
    );
    expect(rows[0]!.event_id).toBe(result.eventIds[last]);
  });

  it("runs in the caller's transaction: rolled back with it", async () => {
    const before = await count('consent_events');
    await expect(
      database.db.transaction().execute(async (trx) => {
        await recordConsents(trx, [{ ...SMS_WITHDRAWN, capturedAt: '2026-05-20T00:00:00Z' }], OPTIONS);
        throw new Error('the caller fails later');
      }),
    ).rejects.toThrow('the caller fails later');
    expect(await count('consent_events')).toBe(before);
  });

  it('refuses events for an erased contact', async () => {
    await erase(database.db, SUBJECT.ref, 'cli', NOW, TEST_TOMBSTONE_KEYS);
    const error = await refused([{ ...SMS_WITHDRAWN, externalId: SUBJECT.ref }]);
    expect(error.problems).toEqual([
      { index: 0, field: 'externalId', problem: 'names a contact erased at their request: nothing is recorded about them any more' },
    ]);
  });
});

describe('the same rules as the CSV import', () => {
  // each case is one CSV line and one event; the import names the first field at fault, which must be ours too
  const cases: Array<Record<string, string>> = [
    { external_id: THIRD.ref, purpose: 'telepathy', status: 'granted', captured_at: '2026-01-01T00:00:00Z' },
    { external_id: THIRD.ref, purpose: 'direct_marketing', status: 'granted', captured_at: '2026-01-01T00:00:00Z' },
    { external_id: THIRD.ref, purpose: 'profiling', channel: 'sms', status: 'granted', captured_at: '2026-01-01T00:00:00Z' },
    { external_id: THIRD.ref, purpose: 'direct_marketing', channel: 'pigeon', status: 'granted', captured_at: '2026-01-01T00:00:00Z' },
    { external_id: THIRD.ref, purpose: 'profiling', status: 'objected', captured_at: '2026-01-01T00:00:00Z' },
    { external_id: THIRD.ref, purpose: 'profiling', status: 'granted', captured_at: '2026-06-01T12:00:01Z' },
    { external_id: THIRD.ref, purpose: 'profiling', status: 'granted', captured_at: '31/12/2025' },
    { external_id: THIRD.ref, purpose: 'profiling', status: 'granted', captured_at: '2026-01-01T00:00:00Z', method: 'telepathic' },
    { external_id: THIRD.ref, purpose: 'profiling', status: 'granted', captured_at: '2026-01-01T00:00:00Z', expires_at: '2025-01-01' },
    { external_id: THIRD.ref, purpose: 'profiling', status: 'granted', captured_at: '2026-01-01T00:00:00Z', source: 's'.repeat(201) },
    {
      external_id: THIRD.ref,
      purpose: 'profiling',
      status: 'granted',
      captured_at: '2026-01-01T00:00:00Z',
      notice_version: 'n'.repeat(101),
    },
    { external_id: THIRD.ref, purpose: 'profiling', status: 'granted', captured_at: '2026-01-01T00:00:00Z', evidence_ref: 'e'.repeat(501) },
    { external_id: '  ', purpose: 'profiling', status: 'granted', captured_at: '2026-01-01T00:00:00Z' },
    { external_id: 'RGT-0000', purpose: 'profiling', status: 'granted', captured_at: '2026-01-01T00:00:00Z' },
    // a valid event, then the same consent at the same instant
    { external_id: THIRD.ref, purpose: 'direct_marketing', channel: 'push', status: 'granted', captured_at: '2026-01-02T00:00:00Z' },
    {
      external_id: ` ${THIRD.ref} `,
      purpose: 'direct_marketing',
      channel: 'push',
      status: 'withdrawn',
      captured_at: '2026-01-02T01:00:00+01:00',
    },
  ];
  const COLUMNS = [
    'external_id',
    'purpose',
    'channel',
    'status',
    'captured_at',
    'source',
    'method',
    'notice_version',
    'evidence_ref',
    'expires_at',
  ];
  const FIELD: Record<string, string> = {
    external_id: 'externalId',
    captured_at: 'capturedAt',
    notice_version: 'noticeVersion',
    evidence_ref: 'evidenceRef',
    expires_at: 'expiresAt',
    'external_id+purpose+channel+captured_at': 'capturedAt',
  };

  it('refuses the same events, naming the same field first', async () => {
    const file = tempFolder().write(
      'consents.csv',
      csv(COLUMNS.join(','), ...cases.map((row) => COLUMNS.map((column) => row[column] ?? '').join(','))),
    );
    const report = await importFile(database, 'consents', file);
    expect(report.status).toBe('rejected');
    const importFields = new Map(report.rejects.map((reject) => [reject.line - 2, FIELD[reject.field] ?? reject.field]));

    const error = await refused(
      cases.map((row) => ({
        externalId: row.external_id!,
        purpose: row.purpose!,
        channel: row.channel,
        status: row.status!,
        capturedAt: row.captured_at!,
        source: row.source,
        method: row.method,
        noticeVersion: row.notice_version,
        evidenceRef: row.evidence_ref,
        expiresAt: row.expires_at,
      })),
    );
    const ourFields = new Map<number, string>();
    for (const problem of error.problems) if (!ourFields.has(problem.index!)) ourFields.set(problem.index!, problem.field);
    expect(ourFields).toEqual(importFields);
    expect(importFields.size).toBe(cases.length - 1);
  });
});
