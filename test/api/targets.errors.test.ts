import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/clock.ts';
import { SCORED_SKU, seedScoredBase, UNSCORED_SKU } from '../targeting/targeting.fixtures.ts';
import { type ApiHarness, bodyOf, createApiHarness } from './api.fixtures.ts';

const NOW = new Date('2026-11-20T09:00:00Z');

describe('target lists: bad input and refusals', () => {
  let api: ApiHarness;
  const targets = (sku: string, query: string) => api.call('marketer', `/v1/products/${encodeURIComponent(sku)}/targets?${query}`);

  beforeAll(async () => {
    api = await createApiHarness({ clock: fixedClock(NOW) });
    await seedScoredBase(api.database, 30, NOW);
  });
  afterAll(() => api?.close());

  const cases: Array<[string, string, number, string, RegExp]> = [
    ['an unknown SKU', 'NOPE-1|channel=email', 404, '', /no product has the SKU "NOPE-1"/],
    ['a product without a model', `${UNSCORED_SKU}|channel=email`, 409, '', /has no live scores/],
    [
      'an unknown channel',
      `${SCORED_SKU}|channel=pigeon`,
      400,
      'query.channel',
      /"pigeon" is unknown \(expected one of email, phone, postal, push, sms\)/,
    ],
    ['no channel', `${SCORED_SKU}|top=10`, 400, 'query.channel', /.+/],
    [
      'top and percentile together',
      `${SCORED_SKU}|channel=email&top=10&percentile=5`,
      400,
      'query.percentile',
      /give one of top, percentile, minScore, expectedBuyers, not top and percentile/,
    ],
    ['a negative top', `${SCORED_SKU}|channel=email&top=-5`, 400, 'query.top', /.+/],
    ['a fractional top', `${SCORED_SKU}|channel=email&top=2.5`, 400, 'query.top', /.+/],
    ['a huge top', `${SCORED_SKU}|channel=email&top=50000000`, 400, 'query.top', /from 1 to 200000/],
    ['a non-numeric top', `${SCORED_SKU}|channel=email&top=lots`, 400, 'query.top', /.+/],
    ['a percentile over 100', `${SCORED_SKU}|channel=email&percentile=150`, 400, 'query.percentile', /at most 100/],
    ['a score over 1', `${SCORED_SKU}|channel=email&minScore=2`, 400, 'query.minScore', /.+/],
    ['a negative expected buyers', `${SCORED_SKU}|channel=email&expectedBuyers=-3`, 400, 'query.expectedBuyers', /.+/],
    ['a holdout over half', `${SCORED_SKU}|channel=email&holdout=80`, 400, 'query.holdout', /.+/],
    ['an unknown format', `${SCORED_SKU}|channel=email&format=xml`, 400, 'query.format', /.+/],
  ];

  for (const [name, request, status, where, detail] of cases) {
    it(`refuses ${name} with a problem naming it`, async () => {
      const [sku, query] = request.split('|') as [string, string];
      const before = await api.database.db
        .selectFrom('target_exports')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      const response = await targets(sku, query);
      expect(response.status).toBe(status);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
      const problem = await bodyOf(response);
      expect(problem.status).toBe(status);
      expect(problem.requestId).toBeTruthy();
      expect(problem.detail).toMatch(detail);
      if (where) expect(problem.errors.map((e: { where: string }) => e.where)).toContain(where);
      const after = await api.database.db
        .selectFrom('target_exports')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      expect(Number(after.n)).toBe(Number(before.n));
    });
  }

  it('closes the phone channel while no fresh opposition list is loaded', async () => {
    const response = await targets(SCORED_SKU, 'channel=phone&top=5');
    expect(response.status).toBe(409);
    expect((await bodyOf(response)).detail).toMatch(/no opposition list is loaded for channel phone/);
  });

  it('refuses a malformed export id and an unknown one', async () => {
    const malformed = await api.call('dpo', '/v1/exports/not-a-uuid');
    expect(malformed.status).toBe(400);
    expect((await bodyOf(malformed)).errors[0].where).toBe('path.id');
    const unknown = await api.call('dpo', '/v1/exports/00000000-0000-4000-8000-000000000000');
    expect(unknown.status).toBe(404);
  });
});
