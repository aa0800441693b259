import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/clock.ts';
import { NOW } from '../imports/import.fixtures.ts';
import {
  contactIdOf,
  findAnywhere,
  NEIGHBOUR,
  personalValues,
  SUBJECT,
  seedExport,
  seedLiveScores,
  seedPeople,
  THIRD,
} from '../rights/rights.fixtures.ts';
import { type ApiHarness, bodyOf, createApiHarness, jsonBody } from './api.fixtures.ts';

let api: ApiHarness;
let dpoActor: string;

beforeAll(async () => {
  api = await createApiHarness({ clock: fixedClock(NOW) });
  await seedPeople(api.database);
  const ids = [await contactIdOf(api.database, SUBJECT.ref), await contactIdOf(api.database, NEIGHBOUR.ref)];
  const scores = await seedLiveScores(api.database, ids);
  await seedExport(api.database, scores, [SUBJECT, NEIGHBOUR]);
  const { rows } = await api.database.pool.query<{ id: number }>(`SELECT id FROM api_keys WHERE name = 'test dpo'`);
  dpoActor = `apikey:${rows[0]!.id}:test dpo`;
});
afterAll(() => api?.close());

async function query<T>(text: string, values: unknown[] = []): Promise<T[]> {
  return (await api.database.pool.query(text, values)).rows as T[];
}

async function stateOf(ref: string, purpose: string, channel = '') {
  const [row] = await query<{ event_id: number; status: string; counts: boolean }>(
    `SELECT s.event_id, s.status, s.counts FROM consent_state s JOIN contacts c ON c.id = s.contact_id
     WHERE c.external_id = $1 AND s.purpose = $2 AND s.channel_key = $3`,
    [ref, purpose, channel],
  );
  return row;
}

async function lastAudit(action: string) {
  const [row] = await query<{ actor: string; subject_id: string | null; request_id: string | null; details: Record<string, unknown> }>(
    'SELECT actor, subject_id, request_id, details FROM audit_log WHERE action = $1 ORDER BY id DESC LIMIT 1',
    [action],
  );
  return row;
}

describe('POST /v1/consents', () => {
  it('records one event: 201 with its id, the consent state follows at once, one audit line with counts only', async () => {
    expect((await stateOf(THIRD.ref, 'direct_marketing', 'sms'))?.counts).toBe(true);
    const response = await api.call(
      'dpo',
      '/v1/consents',
      jsonBody('POST', {
        externalId: THIRD.ref,
        purpose: 'direct_marketing',
        channel: 'sms',
        status: 'withdrawn',
        capturedAt: '2026-05-30T09:00:00+02:00',
        source: 'web:preferences',
        method: 'explicit_checkbox',
      }),
    );
    expect(response.status).toBe(201);
    const body = await bodyOf(response);
    expect(body).toEqual({ recorded: 1, alreadyRecorded: 0, eventIds: [expect.any(Number)] });

    expect(await stateOf(THIRD.ref, 'direct_marketing', 'sms')).toEqual({ event_id: body.eventIds[0], status: 'withdrawn', counts: false });
    const [event] = await query<{ captured_at: Date; recorded_at: Date; import_id: number | null }>(
      'SELECT captured_at, recorded_at, import_id FROM consent_events WHERE id = $1',
      [body.eventIds[0]],
    );
    expect(event!.captured_at.toISOString()).toBe('2026-05-30T07:00:00.000Z');
    expect(event!.recorded_at.toISOString()).toBe(NOW.toISOString());
    expect(event!.import_id).toBeNull();

    const audit = await lastAudit('consents.recorded');
    expect(audit).toMatchObject({
      actor: dpoActor,
      request_id: response.headers.get('x-request-id'),
      details: { events: 1, recorded: 1, alreadyRecorded: 0, byPurpose: { 'direct_marketing/sms': 1 }, byStatus: { withdrawn: 1 } },
    });
    expect(JSON.stringify(audit)).not.toContain(THIRD.ref);
  });

  it('records a batch in order, and a retried batch adds nothing and returns the same ids', async () => {
    const batch = {
      consents: [
        {
          externalId: NEIGHBOUR.ref,
          purpose: 'direct_marketing',
          channel: 'phone',
          status: 'granted',
          capturedAt: '2026-05-20T10:00:00Z',
          source: 'call-centre',
          method: 'recorded_verbal',
          noticeVersion: 'notice-v4',
          evidenceRef: 'rec-5521',
          expiresAt: '2028-05-20T10:00:00Z',
        },
        {
          externalId: THIRD.ref,
          purpose: 'profiling',
          status: 'refused',
          capturedAt: '2026-05-21T10:00:00Z',
          source: 'web',
          method: 'explicit_checkbox',
        },
        // kept for the audit, never counts: a pre-ticked box
        {
          externalId: ` ${THIRD.ref} `,
          purpose: 'direct_marketing',
          channel: 'email',
          status: 'granted',
          capturedAt: '2026-05-22T10:00:00Z',
          source: 'web',
          method: 'pre_ticked',
        },
      ],
    };
    const before = (await query<{ n: number }>('SELECT count(*)::int AS n FROM consent_events'))[0]!.n;
    const first = await api.call('dpo', '/v1/consents', jsonBody('POST', batch));
    expect(first.status).toBe(201);
    const recorded = await bodyOf(first);
    expect(recorded).toMatchObject({ recorded: 3, alreadyRecorded: 0 });
    expect(recorded.eventIds).toHaveLength(3);
    expect([...recorded.eventIds].sort((a: number, b: number) => a - b)).toEqual(recorded.eventIds);

    expect(await stateOf(NEIGHBOUR.ref, 'direct_marketing', 'phone')).toEqual({
      event_id: recorded.eventIds[0],
      status: 'granted',
      counts: true,
    });
    expect(await stateOf(THIRD.ref, 'profiling')).toEqual({ event_id: recorded.eventIds[1], status: 'refused', counts: false });
    expect(await stateOf(THIRD.ref, 'direct_marketing', 'email')).toEqual({
      event_id: recorded.eventIds[2],
      status: 'granted',
      counts: false,
    });
    const [proof] = await query<{ notice_version: string; evidence_ref: string; expires_at: Date }>(
      'SELECT notice_version, evidence_ref, expires_at FROM consent_events WHERE id = $1',
      [recorded.eventIds[0]],
    );
    expect(proof).toEqual({ notice_version: 'notice-v4', evidence_ref: 'rec-5521', expires_at: new Date('2028-05-20T10:00:00Z') });

    const retry = await api.call('dpo', '/v1/consents', jsonBody('POST', batch));
    expect(retry.status).toBe(201);
    expect(await bodyOf(retry)).toEqual({ recorded: 0, alreadyRecorded: 3, eventIds: recorded.eventIds });
    expect((await query<{ n: number }>('SELECT count(*)::int AS n FROM consent_events'))[0]!.n).toBe(before + 3);
    expect((await lastAudit('consents.recorded'))?.details).toMatchObject({ events: 3, recorded: 0, alreadyRecorded: 3 });
  });
});

describe('GET /v1/contacts/{ref}/export', () => {
  it('returns the access report as JSON, not cached, audited as an access request', async () => {
    const response = await api.call('dpo', `/v1/contacts/${SUBJECT.ref}/export`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('application/json');
    expect(response.headers.get('cache-control')).toBe('no-store');
    const report = await bodyOf(response);
    const contactId = await contactIdOf(api.database, SUBJECT.ref);
    expect(report.subject).toEqual({ contactId, externalId: SUBJECT.ref, createdAt: '2024-01-15T00:00:00.000Z' });
    expect(report.identity).toEqual({
      email: SUBJECT.email,
      phone: SUBJECT.phone,
      firstName: SUBJECT.firstName,
      lastName: SUBJECT.lastName,
      country: 'FR',
    });
    expect(report.consents.events).toHaveLength(3);
    expect(report.purchases).toHaveLength(2);
    expect(report.scores).toHaveLength(1);
    expect(report.scores[0].reasons.length).toBeGreaterThan(0);
    expect(report.exports).toHaveLength(1);
    expect(await lastAudit('rights.access')).toMatchObject({ actor: dpoActor, subject_id: String(contactId) });
  });

  it('is audited as portability when asked so', async () => {
    const response = await api.call('dpo', `/v1/contacts/${NEIGHBOUR.ref}/export?right=portability`);
    expect(response.status).toBe(200);
    expect((await bodyOf(response)).subject.externalId).toBe(NEIGHBOUR.ref);
    expect(await lastAudit('rights.portability')).toMatchObject({
      actor: dpoActor,
      subject_id: String(await contactIdOf(api.database, NEIGHBOUR.ref)),
    });
  });
});

describe('PATCH /v1/contacts/{ref}', () => {
  it('rectifies with a JSON merge patch: values normalised, null clears, unchanged values not reported', async () => {
    const contactId = await contactIdOf(api.database, NEIGHBOUR.ref);
    const response = await api.call('dpo', `/v1/contacts/${NEIGHBOUR.ref}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify({
        email: ' Anatole.Brisebarre@Example.ORG ',
        firstName: 'Anatole-Marie',
        lastName: NEIGHBOUR.lastName,
        country: null,
      }),
    });
    expect(response.status).toBe(200);
    expect(await bodyOf(response)).toEqual({ contactId, personId: contactId, changed: ['email', 'firstName', 'country'] });
    const [row] = await query('SELECT email, first_name, last_name, country FROM contact_personal_data WHERE contact_id = $1', [contactId]);
    expect(row).toEqual({
      email: 'anatole.brisebarre@example.org',
      first_name: 'Anatole-Marie',
      last_name: NEIGHBOUR.lastName,
      country: null,
    });
    expect((await lastAudit('rights.rectification'))?.details).toEqual({
      contactId,
      records: [contactId],
      fields: ['email', 'first_name', 'country'],
    });
  });

  it('accepts application/json and reads a national phone number with the default country', async () => {
    const response = await api.call('dpo', `/v1/contacts/${NEIGHBOUR.ref}`, jsonBody('PATCH', { phone: '06 39 98 73 99' }));
    expect(response.status).toBe(200);
    expect((await bodyOf(response)).changed).toEqual(['phone']);
    const [row] = await query<{ phone: string }>('SELECT phone FROM contact_personal_data WHERE contact_id = $1', [
      await contactIdOf(api.database, NEIGHBOUR.ref),
    ]);
    expect(row!.phone).toBe('+33639987399');
  });
});

describe('POST /v1/contacts/{ref}/objections', () => {
  it('an objection to profiling is a ledger event and deletes the scores at once', async () => {
    const contactId = await contactIdOf(api.database, SUBJECT.ref);
    const scoresBefore = await query('SELECT 1 FROM scores WHERE contact_id = $1', [contactId]);
    expect(scoresBefore.length).toBeGreaterThan(0);
    const response = await api.call('dpo', `/v1/contacts/${SUBJECT.ref}/objections`, jsonBody('POST', { purpose: 'profiling' }));
    expect(response.status).toBe(201);
    const result = await bodyOf(response);
    expect(result).toEqual({
      contactId,
      personId: contactId,
      eventId: expect.any(Number),
      purpose: 'profiling',
      channel: null,
      capturedAt: NOW.toISOString(),
      scoresDeleted: scoresBefore.length,
    });
    const [event] = await query('SELECT status, purpose, channel, source FROM consent_events WHERE id = $1', [result.eventId]);
    expect(event).toEqual({ status: 'objected', purpose: 'profiling', channel: null, source: 'data_subject_request' });
    expect(await stateOf(SUBJECT.ref, 'profiling')).toEqual({ event_id: result.eventId, status: 'objected', counts: false });
    expect(await query('SELECT 1 FROM scores WHERE contact_id = $1', [contactId])).toEqual([]);
  });

  it('an objection to direct marketing on one channel', async () => {
    const response = await api.call(
      'dpo',
      `/v1/contacts/${NEIGHBOUR.ref}/objections`,
      jsonBody('POST', { purpose: 'direct_marketing', channel: 'sms' }),
    );
    expect(response.status).toBe(201);
    const result = await bodyOf(response);
    expect(result).toMatchObject({ purpose: 'direct_marketing', channel: 'sms', scoresDeleted: 0 });
    expect(await stateOf(NEIGHBOUR.ref, 'direct_marketing', 'sms')).toEqual({
      event_id: result.eventId,
      status: 'objected',
      counts: false,
    });
  });
});

describe('DELETE /v1/contacts/{ref}', () => {
  it('erases the person and returns the receipt; nothing personal is left anywhere, nor in the logs', async () => {
    const contactId = await contactIdOf(api.database, SUBJECT.ref);
    const response = await api.call('dpo', `/v1/contacts/${SUBJECT.ref}`, { method: 'DELETE' });
    expect(response.status).toBe(200);
    const receipt = await bodyOf(response);
    expect(receipt).toEqual({
      contactId,
      personId: contactId,
      records: [contactId],
      erasedAt: NOW.toISOString(),
      reason: 'data_subject_request',
      deleted: { contact_personal_data: 1, purchases: 2, scores: 0, contact_pressure: 1 },
      // every event's free-text proof is emptied (the objection's too)
      scrubbed: { consent_events: 4 },
      manifestsKept: 1,
      consentEventsKept: 4,
      tombstoneHashes: ['external_id'],
    });
    const [contact] = await query<{ external_id: string | null; erased_at: Date | null }>(
      'SELECT external_id, erased_at FROM contacts WHERE id = $1',
      [contactId],
    );
    expect(contact).toEqual({ external_id: null, erased_at: NOW });
    expect(await query('SELECT 1 FROM contact_personal_data WHERE contact_id = $1', [contactId])).toEqual([]);
    expect(await query('SELECT 1 FROM purchases WHERE contact_id = $1', [contactId])).toEqual([]);
    expect(await findAnywhere(api.database, personalValues(SUBJECT))).toEqual([]);
    expect(await lastAudit('rights.erasure')).toMatchObject({ actor: dpoActor, subject_id: String(contactId) });

    // the request log names the route pattern, never the reference
    const logs = api.logLines.join('\n');
    expect(logs).toContain('/v1/contacts/:ref');
    for (const value of [SUBJECT.ref, NEIGHBOUR.ref, THIRD.ref]) expect(logs).not.toContain(value);
  });
});
