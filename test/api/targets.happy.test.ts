import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import { TEST_TOMBSTONE_KEYS } from '../helpers/tombstone-keys.ts';
import { SCORED_SKU, type ScoredBase, seedScoredBase } from '../targeting/targeting.fixtures.ts';
import { type ApiHarness, bodyOf, createApiHarness } from './api.fixtures.ts';

const NOW = new Date('2026-11-20T09:00:00Z');
const COUNT = 200;

describe('GET /v1/products/{sku}/targets', () => {
  let api: ApiHarness;
  let base: ScoredBase;
  const targets = (query: string) => api.call('marketer', `/v1/products/${SCORED_SKU}/targets?${query}`);

  beforeAll(async () => {
    // a generous pressure cap: these tests ask for overlapping lists; the cap has its own test
    api = await createApiHarness({
      clock: fixedClock(NOW),
      config: { targeting: { ...loadConfig({}).targeting, pressureMaxLists: 1000 } },
    });
    base = await seedScoredBase(api.database, COUNT, NOW);
  });
  afterAll(() => api?.close());

  it('returns the best-ranked reachable people with their contact, score, reasons and consent events, and records the list', async () => {
    const response = await targets('channel=email&top=10');
    expect(response.status).toBe(200);
    const list = await bodyOf(response);
    expect(list.members.map((m: { rank: number }) => m.rank)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    const first = base.people[0]!;
    expect(list.members[0]).toMatchObject({ position: 1, externalId: first.ref, contact: first.email, rank: 1 });
    expect(list.members[0].score).toBeCloseTo(first.score, 5);
    expect(list.members[0].reasons).toEqual([
      { feature: 'recency', contribution: 0.5 },
      { feature: 'frequency', contribution: expect.closeTo(0.2, 5) },
    ]);
    expect(list.funnel).toEqual({
      scored: COUNT,
      examined: 10,
      consentedForChannel: 10,
      notOpposed: 10,
      underPressureCap: 10,
      selected: 10,
      holdout: 0,
      returned: 10,
    });
    expect(list.model).toMatchObject({ id: base.modelId, versionId: base.versionId, horizonDays: 30 });

    // the consent ids are the ledger's profiling and email events of that person
    const events = await api.database.db
      .selectFrom('consent_events')
      .select(['id', 'purpose', 'channel'])
      .where('contact_id', '=', first.id)
      .orderBy('id')
      .execute();
    const profiling = events.find((e) => e.purpose === 'profiling')!.id;
    const email = events.find((e) => e.channel === 'email')!.id;
    expect(list.members[0].consentEventIds).toEqual([Number(profiling), Number(email)]);

    expect(response.headers.get('x-export-id')).toBe(list.exportId);
    expect(response.headers.get('x-manifest-sha256')).toBe(list.manifestHash);
    const stored = await api.database.db.selectFrom('target_exports').selectAll().where('id', '=', list.exportId).executeTakeFirstOrThrow();
    expect(stored).toMatchObject({
      channel: 'email',
      member_count: 10,
      manifest_hash: list.manifestHash,
      model_version_id: base.versionId,
    });
    const manifest = await api.database.db
      .selectFrom('target_export_manifests')
      .select('contact_ids')
      .where('export_id', '=', list.exportId)
      .executeTakeFirstOrThrow();
    expect(manifest.contact_ids).toEqual(base.people.slice(0, 10).map((p) => p.id));
  });

  it('keeps only people with a consent for the requested channel and counts who dropped out', async () => {
    // only every other person consented to SMS
    const list = await bodyOf(await targets('channel=sms&top=5'));
    expect(list.members.map((m: { rank: number }) => m.rank)).toEqual([1, 3, 5, 7, 9]);
    expect(list.members[1].contact).toBe(base.people[2]!.phone);
    expect(list.funnel).toMatchObject({ examined: 9, consentedForChannel: 5, returned: 5 });
  });

  it('sizes the list by percentile, by minimum score and by expected buyers', async () => {
    const byPercentile = await bodyOf(await targets('channel=email&percentile=10'));
    expect(byPercentile.members).toHaveLength(COUNT / 10);
    expect(byPercentile.members.at(-1).rank).toBe(COUNT / 10);

    const threshold = 0.9012;
    const expected = base.people.filter((p) => Math.fround(p.score) >= threshold).length;
    const byScore = await bodyOf(await targets(`channel=email&minScore=${threshold}`));
    expect(byScore.members).toHaveLength(expected);
    expect(Math.min(...byScore.members.map((m: { score: number }) => m.score))).toBeGreaterThanOrEqual(threshold);

    const byBuyers = await bodyOf(await targets('channel=email&expectedBuyers=5.5'));
    const scores: number[] = byBuyers.members.map((m: { score: number }) => m.score);
    const sum = scores.reduce((a, b) => a + b, 0);
    expect(sum).toBeGreaterThanOrEqual(5.5);
    expect(sum - scores.at(-1)!).toBeLessThan(5.5);
    expect(byBuyers.expectedBuyers).toBeCloseTo(sum, 5);
  });

  it('withholds a seeded random control group, returned apart and recorded as such', async () => {
    const response = await targets('channel=email&top=50&holdout=20');
    const list = await bodyOf(response);
    expect(list.members).toHaveLength(40);
    expect(list.holdout).toHaveLength(10);
    expect(list.holdoutSeed).toMatch(/^[0-9a-f]{16}$/);
    const ranks = [...list.members, ...list.holdout].map((m: { rank: number }) => m.rank).sort((a: number, b: number) => a - b);
    expect(ranks).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    // not simply the tail of the list
    expect(list.holdout.some((m: { rank: number }) => m.rank <= 40)).toBe(true);
    const stored = await api.database.db
      .selectFrom('target_export_manifests')
      .select(['ranks', 'holdout'])
      .where('export_id', '=', list.exportId)
      .executeTakeFirstOrThrow();
    const flagged = stored.ranks.filter((_, index) => stored.holdout[index]).sort((a, b) => a - b);
    expect(flagged).toEqual(list.holdout.map((m: { rank: number }) => m.rank).sort((a: number, b: number) => a - b));
    expect(list.funnel).toMatchObject({ selected: 50, holdout: 10, returned: 40 });
  });

  it('streams CSV with the control group marked', async () => {
    const response = await targets('channel=email&top=30&holdout=10&format=csv');
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toContain('text/csv');
    expect(response.headers.get('x-manifest-sha256')).toMatch(/^[0-9a-f]{64}$/);
    const lines = (await response.text()).trim().split('\n');
    expect(lines[0]).toBe('group,position,external_id,contact,score,percentile,rank,reason_1,reason_2,reason_3,consent_event_ids');
    expect(lines).toHaveLength(31);
    expect(lines.filter((line) => line.startsWith('holdout,'))).toHaveLength(3);
    const first = lines.find((line) => /^(contact|holdout),1,/.test(line));
    expect(first).toContain(`,${base.people[0]!.ref},${base.people[0]!.email},`);
  });
});

describe('contact pressure', () => {
  let api: ApiHarness;
  beforeAll(async () => {
    api = await createApiHarness({
      clock: fixedClock(NOW),
      config: { targeting: { pressureMaxLists: 2, pressureWindowDays: 7, maxMembers: 1000, deliveryTimeoutSeconds: 900 } },
    });
    await seedScoredBase(api.database, 50, NOW);
  });
  afterAll(() => api?.close());

  it('leaves out people already sent in K lists within the window, across requests', async () => {
    const ask = async () => bodyOf(await api.call('marketer', `/v1/products/${SCORED_SKU}/targets?channel=email&top=5`));
    const first = await ask();
    const second = await ask();
    expect(second.members.map((m: { rank: number }) => m.rank)).toEqual(first.members.map((m: { rank: number }) => m.rank));
    const third = await ask();
    expect(third.members.map((m: { rank: number }) => m.rank)).toEqual([6, 7, 8, 9, 10]);
    expect(third.funnel).toMatchObject({ examined: 10, notOpposed: 10, underPressureCap: 5, returned: 5 });
  });

  it('does not count a control group as contact', async () => {
    const held = await bodyOf(await api.call('marketer', `/v1/products/${SCORED_SKU}/targets?channel=email&top=10&holdout=50`));
    // ranks 6..10 had room for one more list; 11..15 for two
    const heldRanks = new Set(held.holdout.map((m: { rank: number }) => m.rank));
    const next = await bodyOf(await api.call('marketer', `/v1/products/${SCORED_SKU}/targets?channel=email&top=10`));
    const earlyHeld = [...heldRanks].filter((rank) => (rank as number) <= 10).sort();
    const earlyNext = next.members
      .map((m: { rank: number }) => m.rank)
      .filter((rank: number) => rank <= 10)
      .sort();
    expect(earlyNext).toEqual(earlyHeld);
  });
});

describe('export manifests', () => {
  let api: ApiHarness;
  let base: ScoredBase;
  beforeAll(async () => {
    api = await createApiHarness({ clock: fixedClock(NOW) });
    base = await seedScoredBase(api.database, 40, NOW);
  });
  afterAll(() => api?.close());

  it('returns the manifest to its marketer and the DPO, not to another marketer, and it verifies', async () => {
    const response = await api.call('marketer', `/v1/products/${SCORED_SKU}/targets?channel=email&top=8&holdout=25`);
    const list = await bodyOf(response);
    const manifest = await bodyOf(await api.call('marketer', `/v1/exports/${list.exportId}`));
    expect(manifest).toMatchObject({
      exportId: list.exportId,
      manifestHash: list.manifestHash,
      memberCount: 8,
      holdoutCount: 2,
      channel: 'email',
    });
    expect(manifest.members[0]).toMatchObject({ position: 1, externalId: base.people[0]!.ref, contact: base.people[0]!.email });
    expect((await api.call('dpo', `/v1/exports/${list.exportId}`)).status).toBe(200);

    const { createApiKey } = await import('../../src/auth/api-key.repository.ts');
    const other = await createApiKey(api.database.db, 'another marketer', 'marketer');
    const refused = await api.app.request(`/v1/exports/${list.exportId}`, { headers: { authorization: `Bearer ${other.key}` } });
    expect(refused.status).toBe(404);

    const verification = await bodyOf(await api.call('dpo', `/v1/exports/${list.exportId}/verification`));
    expect(verification).toMatchObject({
      valid: true,
      storedHash: list.manifestHash,
      recomputedHash: list.manifestHash,
      alteredPositions: [],
    });
  });

  it('detects a line altered after the fact', async () => {
    const list = await bodyOf(await api.call('marketer', `/v1/products/${SCORED_SKU}/targets?channel=email&top=5`));
    await sql`UPDATE target_export_manifests SET ranks[3] = 99 WHERE export_id = ${list.exportId}::uuid`.execute(api.database.db);
    const verification = await bodyOf(await api.call('dpo', `/v1/exports/${list.exportId}/verification`));
    expect(verification).toMatchObject({ valid: false, alteredPositions: [3] });
  });

  it('keeps counts and hashes after an erasure, without the personal data', async () => {
    const list = await bodyOf(await api.call('marketer', `/v1/products/${SCORED_SKU}/targets?channel=email&top=6`));
    const erased = base.people.find((p) => p.rank === list.members[1].rank)!;
    const { erase } = await import('../../src/rights/rights.service.ts');
    await erase(api.database.db, erased.ref, 'test', NOW, TEST_TOMBSTONE_KEYS);
    const manifest = await bodyOf(await api.call('dpo', `/v1/exports/${list.exportId}`));
    expect(manifest.memberCount).toBe(6);
    expect(manifest.members[1]).toMatchObject({ externalId: null, contact: null, contactId: erased.id });
    expect(JSON.stringify(manifest)).not.toContain(erased.email);
    const verification = await bodyOf(await api.call('dpo', `/v1/exports/${list.exportId}/verification`));
    expect(verification).toMatchObject({ valid: true, erasedMembers: 1 });
  });
});
