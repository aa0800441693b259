import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/clock.ts';
import { DEFAULT_TARGETING_POLICY } from '../../src/config.ts';
import { SCORED_SKU, type ScoredBase, seedScoredBase } from '../targeting/targeting.fixtures.ts';
import { type ApiHarness, bodyOf, createApiHarness } from './api.fixtures.ts';

const NOW = new Date('2026-11-20T09:00:00Z');
const COUNT = 60;

describe('GET /v1/products/{sku}/targets/preview', () => {
  let api: ApiHarness;
  let base: ScoredBase;
  const preview = (query: string) => api.call('marketer', `/v1/products/${SCORED_SKU}/targets/preview?${query}`);
  const list = (query: string) => api.call('marketer', `/v1/products/${SCORED_SKU}/targets?${query}`);
  const exportCount = async () =>
    Number(
      (
        await api.database.db
          .selectFrom('target_exports')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    );

  beforeAll(async () => {
    // one list per person per window: a preview that used pressure would push the next list down the ranks
    api = await createApiHarness({
      clock: fixedClock(NOW),
      config: { targeting: { ...DEFAULT_TARGETING_POLICY, pressureMaxLists: 1, maxMembers: 1000 } },
    });
    base = await seedScoredBase(api.database, COUNT, NOW);
  });
  afterAll(() => api?.close());

  it('answers what the list would be, records nothing and uses no pressure, and says so', async () => {
    const response = await preview('channel=email&top=10&holdout=20');
    expect(response.status).toBe(200);
    const answer = await bodyOf(response);
    expect(answer.recorded).toBe(false);
    expect(answer.note).toMatch(/no list was recorded, no manifest written and no contact pressure used/);
    expect(answer.members).toBeUndefined();
    expect(answer.funnel).toEqual({
      scored: COUNT,
      examined: 10,
      consentedForChannel: 10,
      notOpposed: 10,
      underPressureCap: 10,
      selected: 10,
      holdout: 2,
      returned: 8,
    });
    expect(answer.scoreThreshold).toBeCloseTo(base.people[9]!.score, 5);
    const topTen = base.people.slice(0, 10).reduce((sum, p) => sum + Math.fround(p.score), 0);
    // two of the ten held out at random: the expected buyers are 8/10 of the ten's, on average over the draw
    expect(answer.expectedBuyers).toBeCloseTo((topTen * 8) / 10, 4);
    expect(answer.shortfall).toBeNull();
    expect(await exportCount()).toBe(0);

    // a preview again, and the real list: it still starts at rank 1, with the funnel the preview gave
    await preview('channel=email&top=10');
    const made = await bodyOf(await list('channel=email&top=10'));
    expect(made.recorded).toBe(true);
    expect(made.members.map((m: { rank: number }) => m.rank)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(made.funnel).toEqual({ ...answer.funnel, holdout: 0, returned: 10 });
    expect(made.scoreThreshold).toBe(answer.scoreThreshold);
    expect(await exportCount()).toBe(1);

    // and a preview after it sees that list's pressure, as the next list will
    const after = await bodyOf(await preview('channel=email&top=10'));
    expect(after.funnel).toMatchObject({ examined: 20, notOpposed: 20, underPressureCap: 10, returned: 10 });
    expect(after.scoreThreshold).toBeCloseTo(base.people[19]!.score, 5);
  });

  it('refuses what the list refuses: a closed channel is a 409 with its reason', async () => {
    const response = await preview('channel=postal');
    expect(response.status).toBe(409);
    expect((await bodyOf(response)).detail).toBe('channel postal reaches no one: no postal address is held for contacts');
  });

  it('says how many expected buyers a list reached when it cannot reach the target, and why', async () => {
    // everyone (60 people scored 0.45 to 0.95) sums to about 42 expected buyers; SMS reaches half of
    // them, less ranks 1 to 10, who were in a list above (one list per person per window)
    const wanted = 'channel=sms&expectedBuyers=1000';
    const previewed = await bodyOf(await preview(wanted));
    const sms = base.people.filter((_, i) => i % 2 === 0 && i >= 10);
    const reached = sms.reduce((sum, p) => sum + Math.fround(p.score), 0);
    expect(previewed.shortfall).toMatchObject({
      asked: 1000,
      of: 'expectedBuyers',
      reason: expect.stringMatching(/^ran out of eligible people: every one of the 60 people still scored was examined/),
    });
    expect(previewed.shortfall.reached).toBeCloseTo(reached, 2);
    const made = await bodyOf(await list(wanted));
    expect(made.shortfall).toEqual(previewed.shortfall);
    expect(made.members).toHaveLength(sms.length);

    // a top N that runs out says so in members
    const short = await bodyOf(await preview('channel=sms&top=500'));
    expect(short.shortfall).toMatchObject({ asked: 500, reached: 0, of: 'members' });
  });
});

describe('the list size cap, when it cuts a list short', () => {
  let api: ApiHarness;
  beforeAll(async () => {
    api = await createApiHarness({ clock: fixedClock(NOW), config: { targeting: { ...DEFAULT_TARGETING_POLICY, maxMembers: 5 } } });
    await seedScoredBase(api.database, 20, NOW);
  });
  afterAll(() => api?.close());

  it('names the cap', async () => {
    const answer = await bodyOf(await api.call('marketer', `/v1/products/${SCORED_SKU}/targets/preview?channel=email&expectedBuyers=4.8`));
    expect(answer.funnel.selected).toBe(5);
    expect(answer.shortfall).toMatchObject({
      asked: 4.8,
      of: 'expectedBuyers',
      reason: 'the list reached its maximum size of 5 members (CIBLE_TARGETS_MAX_MEMBERS)',
    });
    const byPercentile = await bodyOf(await api.call('marketer', `/v1/products/${SCORED_SKU}/targets/preview?channel=email&percentile=50`));
    expect(byPercentile.shortfall).toMatchObject({ asked: null, reached: 5, of: 'members' });
  });
});

describe('query parameters are checked strictly', () => {
  let api: ApiHarness;
  beforeAll(async () => {
    api = await createApiHarness({ clock: fixedClock(NOW) });
    await seedScoredBase(api.database, 10, NOW);
  });
  afterAll(() => api?.close());

  for (const route of ['targets', 'targets/preview']) {
    it(`refuses unknown parameters on ${route}, naming each, and records nothing`, async () => {
      const response = await api.call('marketer', `/v1/products/${SCORED_SKU}/${route}?channel=email&tpo=5&colour=red`);
      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
      const problem = await bodyOf(response);
      expect(problem.errors.map((e: { where: string }) => e.where).sort()).toEqual(['query.colour', 'query.tpo']);
      expect(problem.errors[0].problem).toMatch(
        /^is not a parameter of this route \(known: channel, top, percentile, minScore, expectedBuyers, holdout/,
      );
      const exports = await api.database.db.selectFrom('target_exports').select('id').execute();
      expect(exports).toEqual([]);
    });
  }

  it('refuses format on the preview, which has no members to format', async () => {
    const response = await api.call('marketer', `/v1/products/${SCORED_SKU}/targets/preview?channel=email&format=csv`);
    expect(response.status).toBe(400);
    expect((await bodyOf(response)).errors).toEqual([expect.objectContaining({ where: 'query.format' })]);
  });

  it('is for marketers, like the list', async () => {
    expect((await api.call('data_scientist', `/v1/products/${SCORED_SKU}/targets/preview?channel=email`)).status).toBe(403);
  });
});

describe('responses that carry personal data are not cached', () => {
  let api: ApiHarness;
  let base: ScoredBase;
  beforeAll(async () => {
    api = await createApiHarness({ clock: fixedClock(NOW) });
    base = await seedScoredBase(api.database, 10, NOW);
  });
  afterAll(() => api?.close());

  it("sends Cache-Control: no-store on lists, previews, manifests, a person's data and review pages", async () => {
    const list = await api.call('marketer', `/v1/products/${SCORED_SKU}/targets?channel=email&top=3`);
    const { exportId } = await bodyOf(list);
    const csv = await api.call('marketer', `/v1/products/${SCORED_SKU}/targets?channel=email&top=3&format=csv`);
    await csv.text();
    const responses = {
      list,
      csv,
      preview: await api.call('marketer', `/v1/products/${SCORED_SKU}/targets/preview?channel=email&top=3`),
      manifest: await api.call('marketer', `/v1/exports/${exportId}`),
      refused: await api.call('marketer', `/v1/products/${SCORED_SKU}/targets?channel=email&tpo=3`),
      portability: await api.call('dpo', `/v1/contacts/${base.people[0]!.ref}/export`),
      reviewPage: await api.app.request('/ui/login'),
    };
    const cacheControl = Object.fromEntries(
      Object.entries(responses).map(([name, response]) => [name, response.headers.get('cache-control')]),
    );
    expect(cacheControl).toEqual(Object.fromEntries(Object.keys(responses).map((name) => [name, 'no-store'])));
    expect(responses.portability.status).toBe(200);
  });
});
