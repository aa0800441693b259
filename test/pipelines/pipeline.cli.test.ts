import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { takeConsentSnapshot } from '../../pipelines/consent-snapshot.ts';
import {
  assertAllowedFeatures,
  DEFAULT_SPECIAL_CATEGORIES,
  FeatureNotAllowedError,
  HISTORY_FEATURES,
  isSpecialCategory,
  PERSON_FEATURES,
} from '../../pipelines/feature-spec.ts';
import { featureLayout } from '../../pipelines/features.ts';
import { classifyCategories, selectTargets } from '../../pipelines/targets.ts';
import { UserError } from '../../src/cli/cli-context.ts';
import { parseAsOf, parseHorizon } from '../../src/cli/pipeline.command.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { createRun, finishRun } from '../../src/registry/registry.repository.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { allValid, DAY_MS, seedBase } from './pipeline.fixtures.ts';

/*
 * What `cible pipeline run` and `cible backtest` refuse before doing any work, with a message
 * that says what was expected; and the feature allowlist that refuses any column outside it
 * and anything naming special-category data (GDPR art. 9).
 */

const NOW = new Date('2026-11-29T12:00:00Z');

/** The error thrown by `run`, checked to be a UserError (printed without a stack) with this message. */
function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return (error as Error).message;
  }
  throw new Error('expected a refusal, got none');
}

describe('--horizon', () => {
  it.each([
    ['30d', 30],
    ['4w', 28],
    [' 7d ', 7],
    ['1d', 1],
    ['730d', 730],
    ['104w', 728],
  ])('reads %j as %i days', (value, days) => {
    expect(parseHorizon(value)).toBe(days);
  });

  it.each(['30x', '30', 'd', '-5d', '1.5d', '30 d', '30D', '', 'thirty days'])('refuses %j, saying what it expects', (value) => {
    expect(refusal(() => parseHorizon(value))).toBe(`--horizon expects a number of days or weeks such as 30d or 4w, got "${value}"`);
  });

  it.each([
    ['0d', 0],
    ['0w', 0],
    ['731d', 731],
    ['105w', 735],
  ])('refuses %j: %i days is outside 1 to 730', (value, days) => {
    expect(refusal(() => parseHorizon(value))).toBe(`--horizon must be between 1 day and 730 days, got ${days} days`);
  });
});

describe('--as-of', () => {
  const savedTimeZone = process.env.TZ;
  afterEach(() => {
    if (savedTimeZone === undefined) delete process.env.TZ;
    else process.env.TZ = savedTimeZone;
  });

  it.each([
    ['2011-09-01', '2011-09-01T00:00:00.000Z'],
    [' 2011-09-01 ', '2011-09-01T00:00:00.000Z'],
    ['2011-09-01T10:30:00Z', '2011-09-01T10:30:00.000Z'],
    ['2011-09-01T12:30:00+02:00', '2011-09-01T10:30:00.000Z'],
    ['2024-02-29', '2024-02-29T00:00:00.000Z'],
    // now itself is not the future
    ['2026-11-29T12:00:00Z', '2026-11-29T12:00:00.000Z'],
    ['2026-11-29', '2026-11-29T00:00:00.000Z'],
  ])('reads %j as %s', (value, iso) => {
    expect(parseAsOf(value, NOW).toISOString()).toBe(iso);
  });

  it.each(['2011-13-45', '2011-00-10', '2011-09-32', '2011-09-01T25:00'])('refuses %j: not a real date', (value) => {
    expect(refusal(() => parseAsOf(value, NOW))).toBe(`--as-of is not a real date: "${value}"`);
  });

  it.each(['yesterday', '01/09/2011', '2011-9-1', '20110901', '2011-09-01Z', ''])('refuses %j, saying what it expects', (value) => {
    expect(refusal(() => parseAsOf(value, NOW))).toBe(`--as-of expects a date such as 2011-09-01 (or an ISO instant), got "${value}"`);
  });

  it.each(['2026-11-30', '2026-11-29T12:00:01Z', '2031-01-01'])('refuses %j: in the future', (value) => {
    expect(refusal(() => parseAsOf(value, NOW))).toBe(`--as-of ${value} is in the future; a run can only look back`);
  });
  it.each(['2011-02-30', '2011-02-29', '2011-04-31'])('refuses %j, a day the month does not have', (value) => {
    expect(refusal(() => parseAsOf(value, NOW))).toBe(`--as-of is not a real date: "${value}"`);
  });
  it('reads a date and time without offset as UTC, whatever the machine’s time zone', () => {
    process.env.TZ = 'Pacific/Auckland';
    expect(parseAsOf('2011-09-01T10:00', NOW).toISOString()).toBe('2011-09-01T10:00:00.000Z');
  });
});

describe('the feature allowlist', () => {
  it('accepts every declared person feature and the history features of a category or a product', () => {
    expect(() => assertAllowedFeatures([...PERSON_FEATURES])).not.toThrow();
    expect(() => assertAllowedFeatures(HISTORY_FEATURES.map((feature) => `category:garden:${feature}`))).not.toThrow();
    expect(() => assertAllowedFeatures(HISTORY_FEATURES.map((feature) => `product:SKU-1:${feature}`))).not.toThrow();
  });

  it.each([
    'favourite_colour',
    'email',
    'age',
    'postcode',
    'category:garden:email',
    'product:SKU-1',
    'product:SKU-1:gender',
    'person:x:recency_decay',
    '',
  ])('refuses %j: not in the allowlist', (name) => {
    expect(() => assertAllowedFeatures(['recency_days', name])).toThrow(FeatureNotAllowedError);
    expect(() => assertAllowedFeatures([name])).toThrow(`feature "${name}" is not in the declared allowlist`);
  });

  it.each([
    'category:health:purchase_days',
    'category:Pharmacy:spend_share',
    'category:religious books:recency_decay',
    'category:trade union:recent_purchase_days',
    'category:sexual wellbeing:purchase_days',
  ])('refuses %j: special-category data', (name) => {
    expect(() => assertAllowedFeatures([name])).toThrow(FeatureNotAllowedError);
    expect(() => assertAllowedFeatures([name])).toThrow(`feature "${name}" describes a special category of data (GDPR art. 9)`);
  });

  it('a feature layout with a special category is refused when it is built', () => {
    expect(() => featureLayout([], ['garden', 'health'], DEFAULT_SPECIAL_CATEGORIES)).toThrow(
      'feature "category:health:recency_decay" describes a special category of data (GDPR art. 9)',
    );
    expect(featureLayout([], ['garden'], DEFAULT_SPECIAL_CATEGORIES).names).toContain('category:garden:recency_decay');
  });

  it('names special categories by the built-in list and by the words that reveal them', () => {
    for (const category of ['pharmacy', ' Medical ', 'Health & beauty', 'Religious books', 'trade union']) {
      expect(isSpecialCategory(category, DEFAULT_SPECIAL_CATEGORIES), category).toBe(true);
    }
    for (const category of ['garden', 'kitchen', 'books', 'supplies'])
      expect(isSpecialCategory(category, DEFAULT_SPECIAL_CATEGORIES), category).toBe(false);
    expect(isSpecialCategory('tobacco', [...DEFAULT_SPECIAL_CATEGORIES, 'tobacco'])).toBe(true);
  });
});

describe('special categories the allowlist names are kept out of the SQL stages too', () => {
  const RUN_AT = new Date('2026-11-01T06:00:00Z');
  let database: DatabaseHandle;
  let runId: number;
  const windows = [
    { cutoff: new Date(RUN_AT.getTime() - 30 * DAY_MS), horizonDays: 30 },
    { cutoff: new Date(RUN_AT.getTime() - 60 * DAY_MS), horizonDays: 30 },
  ];
  const rules = { minPositives: 5, minNegatives: 5, products: null, specialCategories: DEFAULT_SPECIAL_CATEGORIES };

  beforeAll(async () => {
    database = await createTestDatabase();
    await seedBase(database, { seed: 99, from: new Date(RUN_AT.getTime() - 200 * DAY_MS), to: RUN_AT, consents: allValid(100) });
    runId = await createRun(database.db, {
      kind: 'pipeline',
      trigger: 'test',
      asOf: RUN_AT,
      horizonDays: 30,
      params: {},
      startedAt: RUN_AT,
    });
    await takeConsentSnapshot(database.db, runId, RUN_AT, true);
    await finishRun(database.db, runId, { status: 'succeeded', finishedAt: RUN_AT, summary: {} });
  });
  afterAll(() => database?.close());

  it('a category of the built-in list ("pharmacy") is never a target, nor its products', async () => {
    const candidates = await selectTargets(database.db, runId, windows, rules);
    const ids = candidates.map((candidate) => `${candidate.kind}:${candidate.key}`);
    expect(ids).toContain('product:PL-REFILL');
    expect(ids.filter((id) => /pharmacy|PL-VITAMIN/.test(id))).toEqual([]);
  });
  it('a category named special by its words ("Health & beauty") is never a target', async () => {
    await database.db.transaction().execute(async (trx) => {
      await trx.updateTable('products').set({ category: 'Health & beauty' }).where('sku', '=', 'PL-VITAMIN').execute();
      expect(isSpecialCategory('Health & beauty', DEFAULT_SPECIAL_CATEGORIES)).toBe(true);
      const special = (await classifyCategories(trx, DEFAULT_SPECIAL_CATEGORIES)).special;
      expect(special).toContain('Health & beauty');
      const candidates = await selectTargets(trx, runId, windows, { ...rules, specialCategories: special });
      const eligible = candidates.filter((candidate) => candidate.eligible).map((candidate) => `${candidate.kind}:${candidate.key}`);
      expect(eligible).toContain('product:PL-REFILL');
      await trx.updateTable('products').set({ category: 'pharmacy' }).where('sku', '=', 'PL-VITAMIN').execute();
      expect(eligible.filter((id) => /Health|PL-VITAMIN/.test(id))).toEqual([]);
    });
  });
});
