import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/clock.ts';
import { SCORED_SKU, type ScoredBase, seedScoredBase } from '../targeting/targeting.fixtures.ts';
import { type ApiHarness, bodyOf, createApiHarness, jsonBody } from './api.fixtures.ts';

/*
 * No personal data in logs: every log line written during a full flow (consents, lists in
 * JSON and CSV, manifests, rights, errors, a failure) is searched for the emails, phones
 * and external ids the flow used.
 */

const NOW = new Date('2026-11-20T09:00:00Z');

describe('logs during a full flow', () => {
  let api: ApiHarness;
  let base: ScoredBase;
  beforeAll(async () => {
    api = await createApiHarness({ clock: fixedClock(NOW) });
    base = await seedScoredBase(api.database, 60, NOW);
  });
  afterAll(() => api?.close());

  it('carry ids, routes and counts, never an email, a phone or an external id', async () => {
    const [first, second, third] = base.people as [(typeof base.people)[0], (typeof base.people)[0], (typeof base.people)[0]];
    const newEmail = 'renamed.person@example.org';
    const steps: Array<[string, Promise<Response>, number]> = [];
    const step = async (name: string, response: Promise<Response>, status: number) => {
      const answer = await response;
      expect(answer.status, name).toBe(status);
      return answer;
    };

    await step(
      'consent',
      api.call(
        'dpo',
        '/v1/consents',
        jsonBody('POST', {
          externalId: first.ref,
          purpose: 'direct_marketing',
          channel: 'sms',
          status: 'granted',
          capturedAt: '2026-11-19T10:00:00Z',
          source: 'web:preferences',
          method: 'double_opt_in',
        }),
      ),
      201,
    );
    await step(
      'bad consent',
      api.call(
        'dpo',
        '/v1/consents',
        jsonBody('POST', {
          externalId: second.ref,
          purpose: 'direct_marketing',
          channel: 'pigeon',
          status: 'granted',
          capturedAt: '2026-11-19T10:00:00Z',
        }),
      ),
      400,
    );
    await step(
      'rectify',
      api.call('dpo', `/v1/contacts/${third.ref}`, jsonBody('PATCH', { email: newEmail, phone: '+33 6 98 76 54 32' })),
      200,
    );
    await step('bad rectify', api.call('dpo', `/v1/contacts/${third.ref}`, jsonBody('PATCH', { email: 'not an email at all' })), 400);
    const list = await bodyOf(
      await step('list', api.call('marketer', `/v1/products/${SCORED_SKU}/targets?channel=email&top=20&holdout=10`), 200),
    );
    await (await step('csv', api.call('marketer', `/v1/products/${SCORED_SKU}/targets?channel=sms&top=10&format=csv`), 200)).text();
    await step('manifest', api.call('marketer', `/v1/exports/${list.exportId}`), 200);
    await step('access', api.call('dpo', `/v1/contacts/${second.ref}/export`), 200);
    await step(
      'objection',
      api.call('dpo', `/v1/contacts/${second.ref}/objections`, jsonBody('POST', { purpose: 'direct_marketing' })),
      201,
    );
    await step('erasure', api.call('dpo', `/v1/contacts/${first.ref}`, { method: 'DELETE' }), 200);
    await step('unknown contact', api.call('dpo', `/v1/contacts/${first.ref}/export`), 404);
    void steps;

    const logs = api.logLines.join('');
    expect(api.logLines.length).toBeGreaterThanOrEqual(11);
    expect(logs).toContain('"route":"/v1/products/:sku/targets"');
    const personal = [
      newEmail,
      '+33698765432',
      '98 76 54 32',
      'not an email at all',
      ...base.people.flatMap((person) => [person.email, person.phone, person.ref]),
    ];
    for (const value of personal) expect(logs, `log output holds ${value}`).not.toContain(value);
  });
});
