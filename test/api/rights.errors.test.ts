import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import { MAX_CONSENT_EVENTS } from '../../src/consent/consent-recording.service.ts';
import { NOW } from '../imports/import.fixtures.ts';
import { NEIGHBOUR, SUBJECT, seedPeople, THIRD } from '../rights/rights.fixtures.ts';
import { type ApiHarness, bodyOf, createApiHarness, jsonBody } from './api.fixtures.ts';

let api: ApiHarness;

beforeAll(async () => {
  // a body large enough for a batch over the event limit, so that the limit (not the body size) refuses it
  api = await createApiHarness({ clock: fixedClock(NOW), config: { api: { ...loadConfig({}).api, bodyLimitBytes: 4 * 1024 * 1024 } } });
  await seedPeople(api.database);
});
afterAll(() => api?.close());

interface Problem {
  status: number;
  title: string;
  detail: string;
  requestId: string;
  errors?: Array<{ where: string; problem: string }>;
}

/** The response must be a problem of this status, as application/problem+json. */
async function problemOf(response: Response, status: number): Promise<Problem> {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toContain('application/problem+json');
  const problem = (await bodyOf(response)) as Problem;
  expect(problem.status).toBe(status);
  expect(problem.requestId).toBe(response.headers.get('x-request-id'));
  return problem;
}

const wheres = (problem: Problem) => (problem.errors ?? []).map((error) => error.where);

// every table a consent or rights request writes (api_keys is left out: authentication keeps the last use to the minute)
const WRITTEN_TABLES = [
  'contacts',
  'contact_personal_data',
  'purchases',
  'consent_events',
  'consent_state',
  'scores',
  'target_export_manifests',
  'contact_pressure',
  'erasure_tombstones',
  'audit_log',
];

/** One digest of every row of those tables: equal digests mean nothing was written (one query, unlike a full snapshot). */
async function fingerprint(): Promise<Record<string, string>> {
  const { rows } = await api.database.pool.query<{ table_name: string; digest: string }>(
    WRITTEN_TABLES.map(
      (table) => `SELECT '${table}' AS table_name, md5(coalesce(string_agg(t::text, ',' ORDER BY t::text), '')) AS digest FROM ${table} t`,
    ).join(' UNION ALL '),
  );
  return Object.fromEntries(rows.map((row) => [row.table_name, row.digest]));
}

/** Runs a request that must be refused, and checks that nothing was written. */
async function refusedWithoutWrites(request: () => Promise<Response>, status: number): Promise<Problem> {
  const before = await fingerprint();
  const problem = await problemOf(await request(), status);
  expect(await fingerprint()).toEqual(before);
  return problem;
}

async function consentEventCount(): Promise<number> {
  return (await api.database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM consent_events')).rows[0]!.n;
}

const GOOD = {
  externalId: THIRD.ref,
  purpose: 'direct_marketing',
  channel: 'sms',
  status: 'withdrawn',
  capturedAt: '2026-05-30T09:00:00+02:00',
};
const postConsents = (body: unknown) => api.call('dpo', '/v1/consents', jsonBody('POST', body));

describe('request shape, for every rights route', () => {
  it('malformed JSON is a 400 problem', async () => {
    const consents = await api.call('dpo', '/v1/consents', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"externalId": ',
    });
    expect((await problemOf(consents, 400)).detail).toMatch(/JSON/i);
    const patch = await api.call('dpo', `/v1/contacts/${THIRD.ref}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: '{nope',
    });
    await problemOf(patch, 400);
  });

  it('a body that is not JSON is a 415 problem', async () => {
    const form = await api.call('dpo', '/v1/consents', {
      method: 'POST',
      headers: { 'content-type': 'text/csv' },
      body: 'external_id,purpose\nX,profiling',
    });
    await problemOf(form, 415);
    // PATCH takes application/json and application/merge-patch+json, nothing else
    const patch = await api.call('dpo', `/v1/contacts/${THIRD.ref}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'firstName=Zoe',
    });
    await problemOf(patch, 415);
  });

  it('is for the dpo role only, with a key', async () => {
    for (const role of ['marketer', 'data_scientist', 'scheduler', 'admin'] as const) {
      await problemOf(await api.call(role, `/v1/contacts/${THIRD.ref}/export`), 403);
      await problemOf(await api.call(role, '/v1/consents', jsonBody('POST', GOOD)), 403);
    }
    await problemOf(await api.call(null, `/v1/contacts/${THIRD.ref}`, { method: 'DELETE' }), 401);
    const document = await bodyOf(await api.call(null, '/openapi.json'));
    expect(document.paths['/v1/consents'].post['x-roles']).toEqual(['dpo']);
    expect(document.paths['/v1/contacts/{ref}'].delete['x-roles']).toEqual(['dpo']);
    expect(Object.keys(document.paths['/v1/contacts/{ref}'].patch.requestBody.content)).toEqual([
      'application/json',
      'application/merge-patch+json',
    ]);
  });
});

describe('POST /v1/consents refused', () => {
  it.each<[string, Record<string, unknown>, string, RegExp]>([
    ['unknown purpose', { ...GOOD, purpose: 'telepathy', channel: undefined }, 'body.purpose', /unknown purpose "telepathy"/],
    ['unknown channel', { ...GOOD, channel: 'pigeon' }, 'body.channel', /unknown channel "pigeon"/],
    ['direct marketing without channel', { ...GOOD, channel: undefined }, 'body.channel', /a direct_marketing consent needs a channel/],
    ['profiling with a channel', { ...GOOD, purpose: 'profiling' }, 'body.channel', /takes no channel/],
    ['capturedAt in the future', { ...GOOD, capturedAt: '2026-06-01T14:00:01+02:00' }, 'body.capturedAt', /is in the future/],
    ['capturedAt without offset', { ...GOOD, capturedAt: '2026-05-30T09:00:00' }, 'body.capturedAt', /ISO 8601 date-time with an offset/],
    ['unknown method', { ...GOOD, method: 'telepathic' }, 'body.method', /unknown method "telepathic"/],
    ['unknown status', { ...GOOD, status: 'objected' }, 'body.status', /./],
    ['expiry before capture', { ...GOOD, expiresAt: '2026-05-01T00:00:00Z' }, 'body.expiresAt', /is not after capturedAt/],
    ['unknown field', { ...GOOD, expiresOn: '2027-01-01' }, 'body', /expiresOn/],
  ])('%s: 400 naming the field, nothing written', async (_case, event, where, problem) => {
    const refused = await refusedWithoutWrites(() => postConsents(event), 400);
    const error = refused.errors?.find((e) => e.where === where);
    expect(error, JSON.stringify(refused.errors)).toBeDefined();
    expect(error!.problem).toMatch(problem);
  });

  it('an unknown contact: 400 naming the event, without repeating the reference', async () => {
    const refused = await refusedWithoutWrites(() => postConsents({ consents: [GOOD, { ...GOOD, externalId: 'RGT-0000' }] }), 400);
    expect(refused.errors).toEqual([
      { where: 'body.consents[1].externalId', problem: 'no contact has this external id (import the contact first)' },
    ]);
    expect(JSON.stringify(refused)).not.toContain('RGT-0000');
  });

  it('a batch with one bad event writes nothing, and lists every problem of every event', async () => {
    const before = await consentEventCount();
    const refused = await refusedWithoutWrites(
      () =>
        postConsents({
          consents: [
            GOOD,
            { ...GOOD, externalId: NEIGHBOUR.ref, channel: 'pigeon' },
            { ...GOOD, externalId: SUBJECT.ref },
            { ...GOOD, externalId: SUBJECT.ref, purpose: 'profiling', capturedAt: '2027-01-01T00:00:00Z' },
            { ...GOOD },
          ],
        }),
      400,
    );
    expect(wheres(refused)).toEqual([
      'body.consents[1].channel',
      'body.consents[3].channel',
      'body.consents[3].capturedAt',
      'body.consents[4].capturedAt',
    ]);
    expect(refused.errors![3]!.problem).toMatch(/same instant as event 0/);
    expect(refused.detail).toMatch(/^nothing was recorded: body\.consents\[1\]\.channel: unknown channel/);
    expect(await consentEventCount()).toBe(before);
  });

  it('shape problems are named inside the batch too', async () => {
    const refused = await problemOf(await postConsents({ consents: [GOOD, { ...GOOD, status: 42, capturedAt: 'yesterday' }] }), 400);
    expect(wheres(refused)).toEqual(['body.consents[1].status', 'body.consents[1].capturedAt']);
  });

  it(`a batch over ${MAX_CONSENT_EVENTS} events, or an empty one, is refused`, async () => {
    const before = await consentEventCount();
    const tooMany = await problemOf(await postConsents({ consents: Array.from({ length: MAX_CONSENT_EVENTS + 1 }, () => GOOD) }), 400);
    expect(tooMany.errors).toEqual([{ where: 'body.consents', problem: expect.stringMatching(/10000/) }]);
    const empty = await problemOf(await postConsents({ consents: [] }), 400);
    expect(wheres(empty)).toEqual(['body.consents']);
    expect(await consentEventCount()).toBe(before);
  });

  it('events for an erased contact are refused', async () => {
    expect((await api.call('dpo', `/v1/contacts/${THIRD.ref}`, { method: 'DELETE' })).status).toBe(200);
    const refused = await refusedWithoutWrites(() => postConsents(GOOD), 400);
    expect(refused.errors).toEqual([{ where: 'body.externalId', problem: expect.stringMatching(/erased at their request/) }]);
  });
});

describe('contact rights refused', () => {
  it.each([
    ['export', (ref: string) => api.call('dpo', `/v1/contacts/${ref}/export`)],
    ['rectify', (ref: string) => api.call('dpo', `/v1/contacts/${ref}`, jsonBody('PATCH', { firstName: 'Irénée' }))],
    ['object', (ref: string) => api.call('dpo', `/v1/contacts/${ref}/objections`, jsonBody('POST', { purpose: 'profiling' }))],
    ['erase', (ref: string) => api.call('dpo', `/v1/contacts/${ref}`, { method: 'DELETE' })],
  ])('%s: an unknown reference is a 404, a blank one a 400 on path.ref; nothing written', async (_right, request) => {
    const unknown = await refusedWithoutWrites(() => request('RGT-0000'), 404);
    expect(unknown.detail).toBe('no contact has this external id');
    const blank = await refusedWithoutWrites(() => request('%20'), 400);
    expect(wheres(blank)).toEqual(['path.ref']);
    const long = await refusedWithoutWrites(() => request('x'.repeat(201)), 400);
    expect(wheres(long)).toEqual(['path.ref']);
  });

  it.each<[string, unknown, string]>([
    ['an empty body', {}, 'body'],
    ['an invalid email', { email: 'not-an-email' }, 'body.email'],
    ['an impossible phone', { phone: '12' }, 'body.phone'],
    ['a name too long', { lastName: 'x'.repeat(201) }, 'body.lastName'],
    ['a field that is not an identity field', { birthDate: '1990-01-01' }, 'body'],
    ['a value that is not text', { firstName: 7 }, 'body.firstName'],
  ])('PATCH with %s: 400 naming the field, nothing written', async (_case, body, where) => {
    const refused = await refusedWithoutWrites(() => api.call('dpo', `/v1/contacts/${NEIGHBOUR.ref}`, jsonBody('PATCH', body)), 400);
    expect(wheres(refused)).toEqual([where]);
  });

  it.each<[unknown, string]>([
    [{ purpose: 'telepathy' }, 'body.purpose'],
    [{ purpose: 'direct_marketing', channel: 'pigeon' }, 'body.channel'],
    [{ purpose: 'profiling', channel: 'sms' }, 'body.channel'],
    [{ channel: 'sms' }, 'body.purpose'],
  ])('an objection %j: 400 naming the field, nothing written', async (body, where) => {
    const refused = await refusedWithoutWrites(
      () => api.call('dpo', `/v1/contacts/${NEIGHBOUR.ref}/objections`, jsonBody('POST', body)),
      400,
    );
    expect(wheres(refused)).toEqual([where]);
  });

  it('erasing twice: the second request is a 404 saying the contact was erased', async () => {
    const before = await fingerprint();
    expect((await api.call('dpo', `/v1/contacts/${NEIGHBOUR.ref}`, { method: 'DELETE' })).status).toBe(200);
    expect(await fingerprint()).not.toEqual(before); // the digest does see writes
    const again = await refusedWithoutWrites(() => api.call('dpo', `/v1/contacts/${NEIGHBOUR.ref}`, { method: 'DELETE' }), 404);
    expect(again.detail).toBe(
      `this contact was erased on ${NOW.toISOString().slice(0, 10)} at their request: nothing is held about them any more`,
    );
    await problemOf(await api.call('dpo', `/v1/contacts/${NEIGHBOUR.ref}/export`), 404);
  });
});
