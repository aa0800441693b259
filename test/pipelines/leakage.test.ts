import fc from 'fast-check';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillBuyTillYouDie } from '../../pipelines/buy-till-you-die.ts';
import { takeConsentSnapshot } from '../../pipelines/consent-snapshot.ts';
import { DEFAULT_SPECIAL_CATEGORIES } from '../../pipelines/feature-spec.ts';
import { computeFeatures, type FeatureLayout, type FeatureMatrix, featureLayout } from '../../pipelines/features.ts';
import type { Database } from '../../src/db/database.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { createRun, finishRun } from '../../src/registry/registry.repository.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { allTargets, allValid, type Base, DAY_MS, PRODUCTS, type PurchaseRow, type Sku, seedBase } from './pipeline.fixtures.ts';

/*
 * No leakage: a feature at cutoff c may only depend on purchases strictly before c.
 * Whatever happens to purchases on or after c (amounts, products and dates changed within
 * [c, ∞), purchases added, purchases deleted, a person whose whole history starts after c),
 * the matrix at c must stay the same bytes and the same rows. The positive controls show
 * that the comparison can fail: a change strictly before c does change the matrix.
 */

// one cutoff in the middle of a day (purchases of that day fall on both sides), one at midnight
const CUTOFFS = [new Date('2026-05-15T13:30:00Z'), new Date('2026-06-01T00:00:00Z')] as const;
const LAST_CUTOFF = CUTOFFS[1].getTime();
const FROM = new Date(CUTOFFS[0].getTime() - 365 * DAY_MS);
const TO = new Date(LAST_CUTOFF + 150 * DAY_MS);
const SNAPSHOT_AT = new Date('2026-11-01T00:00:00Z');
const HORIZON_DAYS = 30;
const SEED = 20261129;
const CONTACTS = 160;

// contacts with a story (indices into the base)
const LATE_STARTERS = [0, 1, 2]; // consented long ago, first purchase after both cutoffs: rows with no history
const LATE_CONSENT_NO_HISTORY = 3; // consent and first purchase after both cutoffs: never a row
const LATE_CONSENT_WITH_HISTORY = 4; // consent after the cutoffs but purchases before: a row (known by purchase)
const LATE_CONSENT_AT = new Date(LAST_CUTOFF + 20 * DAY_MS);

let database: DatabaseHandle;
let base: Base;
let runId: number;
let layout: FeatureLayout;
const baseline = new Map<number, FeatureMatrix>();
const PRODUCT_SKUS = PRODUCTS.map((product) => product.sku);

class Rollback extends Error {}

/** Runs `work` in a transaction that is always rolled back, so every try starts from the same base. */
async function rolledBack(work: (trx: Kysely<Database>) => Promise<void>): Promise<void> {
  try {
    await database.db.transaction().execute(async (trx) => {
      await work(trx);
      throw new Rollback();
    });
  } catch (error) {
    if (!(error instanceof Rollback)) throw error;
  }
}

function features(db: Kysely<Database>, cutoff: Date, run = runId): Promise<FeatureMatrix> {
  return computeFeatures(db, { runId: run, cutoff, horizonDays: HORIZON_DAYS, layout });
}

const bytes = (array: Float32Array | Float64Array) => Buffer.from(array.buffer, array.byteOffset, array.byteLength);

/** Rows (indices) whose features differ; the matrices must have the same rows. */
function differingRows(a: FeatureMatrix, b: FeatureMatrix): number[] {
  const rows: number[] = [];
  for (let row = 0; row < a.rows; row++) {
    const start = row * a.columns * 4;
    if (
      !bytes(a.x)
        .subarray(start, start + a.columns * 4)
        .equals(bytes(b.x).subarray(start, start + b.columns * 4))
    )
      rows.push(row);
  }
  return rows;
}

function describeDifference(actual: FeatureMatrix, expected: FeatureMatrix): string {
  for (let i = 0; i < actual.x.length; i++) {
    if (!Object.is(actual.x[i], expected.x[i])) {
      const row = Math.floor(i / actual.columns);
      return `contact ${actual.contactIds[row]}, feature ${layout.names[i % actual.columns]}: ${expected.x[i]} became ${actual.x[i]}`;
    }
  }
  return 'no difference in x';
}

function expectSameMatrix(actual: FeatureMatrix, expected: FeatureMatrix, label: string): void {
  expect(Array.from(actual.contactIds), `${label}: row set`).toEqual(Array.from(expected.contactIds));
  expect(actual.columns, `${label}: columns`).toBe(expected.columns);
  expect(bytes(actual.x).equals(bytes(expected.x)), `${label}: x must be byte-identical (${describeDifference(actual, expected)})`).toBe(
    true,
  );
  // what BG/NBD is fitted on at this cutoff
  expect(bytes(actual.history.repeatDays).equals(bytes(expected.history.repeatDays)), `${label}: history.repeatDays`).toBe(true);
  expect(bytes(actual.history.firstAge).equals(bytes(expected.history.firstAge)), `${label}: history.firstAge`).toBe(true);
  expect(bytes(actual.history.lastAge).equals(bytes(expected.history.lastAge)), `${label}: history.lastAge`).toBe(true);
}

function copyOf(matrix: FeatureMatrix): FeatureMatrix {
  return {
    ...matrix,
    x: Float32Array.from(matrix.x),
    history: {
      repeatDays: Float64Array.from(matrix.history.repeatDays),
      lastAge: Float64Array.from(matrix.history.lastAge),
      firstAge: Float64Array.from(matrix.history.firstAge),
    },
  };
}

const idOf = (index: number) => (base.people[index] as { id: number }).id;

async function purchasesFrom(db: Kysely<Database>, cutoff: Date): Promise<PurchaseRow[]> {
  return db
    .selectFrom('purchases')
    .select(['order_id', 'product_id', 'contact_id', 'quantity', 'unit_price', 'purchased_at'])
    .where('purchased_at', '>=', cutoff)
    .orderBy('order_id')
    .orderBy('product_id')
    .execute();
}

beforeAll(async () => {
  database = await createTestDatabase();
  base = await seedBase(database, {
    seed: SEED,
    from: FROM,
    to: TO,
    consents: allValid(CONTACTS),
    consentAt: (index) =>
      index === LATE_CONSENT_NO_HISTORY || index === LATE_CONSENT_WITH_HISTORY ? LATE_CONSENT_AT : new Date(FROM.getTime() - 10 * DAY_MS),
  });
  // the late starters and the late-consent newcomer have no purchase before the later cutoff
  await database.db
    .deleteFrom('purchases')
    .where('contact_id', 'in', [...LATE_STARTERS, LATE_CONSENT_NO_HISTORY].map(idOf))
    .where('purchased_at', '<', new Date(LAST_CUTOFF + 2 * DAY_MS))
    .execute();

  runId = await createRun(database.db, {
    kind: 'pipeline',
    trigger: 'test:leakage',
    asOf: SNAPSHOT_AT,
    horizonDays: HORIZON_DAYS,
    params: {},
    startedAt: SNAPSHOT_AT,
  });
  const snapshot = await takeConsentSnapshot(database.db, runId, SNAPSHOT_AT, false);
  expect(snapshot.size).toBe(CONTACTS);
  // the snapshot stays; the run is over, so that the reruns below may start (one active run at a time)
  await finishRun(database.db, runId, { status: 'succeeded', finishedAt: SNAPSHOT_AT, summary: {} });
  const targets = await allTargets(database, DEFAULT_SPECIAL_CATEGORIES);
  const categories = [...new Set(targets.flatMap((target) => (target.kind === 'category' ? [target.key] : [])))];
  layout = featureLayout(targets, categories, DEFAULT_SPECIAL_CATEGORIES);
  for (const cutoff of CUTOFFS) baseline.set(cutoff.getTime(), await features(database.db, cutoff));
});
afterAll(() => database?.close());

describe('the base is what the leakage property needs', () => {
  it('has rows for the late starters (without history), none for the late newcomer, and purchases on both sides of each cutoff', async () => {
    expect(layout.names).toContain('category:supplies:recency_decay');
    expect(layout.names).toContain('product:PL-REFILL:spend_share');
    expect(layout.names.some((name) => name.includes('pharmacy'))).toBe(false);
    for (const cutoff of CUTOFFS) {
      const matrix = baseline.get(cutoff.getTime()) as FeatureMatrix;
      const ids = Array.from(matrix.contactIds);
      expect(ids).toHaveLength(CONTACTS - 1);
      expect(ids).not.toContain(idOf(LATE_CONSENT_NO_HISTORY));
      expect(ids).toContain(idOf(LATE_CONSENT_WITH_HISTORY));
      for (const index of LATE_STARTERS) {
        const row = ids.indexOf(idOf(index));
        expect(row).toBeGreaterThanOrEqual(0);
        expect(matrix.x[row * matrix.columns + layout.names.indexOf('has_history')]).toBe(0);
      }
      const newcomer = ids.indexOf(idOf(LATE_CONSENT_WITH_HISTORY));
      expect(matrix.x[newcomer * matrix.columns + layout.names.indexOf('has_history')]).toBe(1);
      const after = await purchasesFrom(database.db, cutoff);
      expect(after.length).toBeGreaterThan(500);
      expect(after.filter((row) => LATE_STARTERS.map(idOf).includes(row.contact_id)).length).toBeGreaterThan(5);
    }
    // the mid-day cutoff has purchases of its own day on both sides of it
    const day = CUTOFFS[0].toISOString().slice(0, 10);
    const { rows } = await sql<{ before: number; after: number }>`
      SELECT count(*) FILTER (WHERE purchased_at < ${CUTOFFS[0]})::int AS before, count(*) FILTER (WHERE purchased_at >= ${CUTOFFS[0]})::int AS after
      FROM purchases WHERE (purchased_at AT TIME ZONE 'UTC')::date = ${day}::date`.execute(database.db);
    expect(rows[0]!.before).toBeGreaterThan(0);
    expect(rows[0]!.after).toBeGreaterThan(0);
  });

  it('computes the same matrix twice (the comparison itself is deterministic)', async () => {
    for (const cutoff of CUTOFFS)
      expectSameMatrix(await features(database.db, cutoff), baseline.get(cutoff.getTime()) as FeatureMatrix, 'recomputed');
  });
});

// ---------------------------------------------------------------- the property

type Modification =
  | { kind: 'change'; pick: number; product: number; quantity: number; cents: number; offsetSeconds: number }
  | { kind: 'add'; contact: number; product: number; quantity: number; cents: number; offsetSeconds: number }
  | { kind: 'delete'; pick: number };

// on or after the cutoff: exactly at it, within its day, or up to 200 days later
const offsetSeconds = fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 86_400 }), fc.integer({ min: 0, max: 200 * 86_400 }));
const amount = {
  product: fc.nat({ max: PRODUCTS.length - 1 }),
  quantity: fc.integer({ min: 1, max: 9 }),
  cents: fc.integer({ min: 0, max: 99_999 }),
};
const modification: fc.Arbitrary<Modification> = fc.oneof(
  fc.record({ kind: fc.constant('change' as const), pick: fc.nat(), ...amount, offsetSeconds }),
  fc.record({ kind: fc.constant('add' as const), contact: fc.nat({ max: CONTACTS - 1 }), ...amount, offsetSeconds }),
  fc.record({ kind: fc.constant('delete' as const), pick: fc.nat() }),
);
const scenario = fc.record({
  cutoff: fc.nat({ max: CUTOFFS.length - 1 }),
  modifications: fc.array(modification, { minLength: 1, maxLength: 30 }),
  // every try also rewrites the history of one late starter and of the late newcomer
  lateStarter: fc.constantFrom(...LATE_STARTERS),
  lateOffsets: fc.tuple(offsetSeconds, offsetSeconds, offsetSeconds),
});

type Scenario = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

let added = 0;

async function applyModifications(trx: Kysely<Database>, cutoff: Date, value: Scenario): Promise<Record<string, number>> {
  const rows = await purchasesFrom(trx, cutoff);
  const counts = { changed: 0, added: 0, deleted: 0 };
  const at = (seconds: number) => new Date(cutoff.getTime() + seconds * 1000);
  const productId = (index: number) => base.productIds[PRODUCT_SKUS[index] as Sku];
  const change = async (row: PurchaseRow, values: { product_id: number; quantity: number; unit_price: number; purchased_at: Date }) => {
    await trx.updateTable('purchases').set(values).where('order_id', '=', row.order_id).where('product_id', '=', row.product_id).execute();
    Object.assign(row, values);
    counts.changed++;
  };
  const add = async (contactId: number, values: { product_id: number; quantity: number; unit_price: number; purchased_at: Date }) => {
    added++;
    await trx
      .insertInto('purchases')
      .values({ order_id: `LEAK-${added}`, contact_id: contactId, ...values })
      .execute();
    counts.added++;
  };
  const remove = async (row: PurchaseRow) => {
    await trx.deleteFrom('purchases').where('order_id', '=', row.order_id).where('product_id', '=', row.product_id).execute();
    rows.splice(rows.indexOf(row), 1);
    counts.deleted++;
  };

  for (const step of value.modifications) {
    if (step.kind === 'add') {
      await add(idOf(step.contact), {
        product_id: productId(step.product),
        quantity: step.quantity,
        unit_price: step.cents / 100,
        purchased_at: at(step.offsetSeconds),
      });
      continue;
    }
    const row = rows[step.pick % rows.length];
    if (!row) continue;
    if (step.kind === 'delete') await remove(row);
    else
      await change(row, {
        product_id: productId(step.product),
        quantity: step.quantity,
        unit_price: step.cents / 100,
        purchased_at: at(step.offsetSeconds),
      });
  }

  // a person whose first purchase is after the cutoff: their first purchase moves (still after it) and
  // changes product, one is deleted, one is added; the same for the newcomer who is not a row
  for (const index of [value.lateStarter, LATE_CONSENT_NO_HISTORY]) {
    const own = rows.filter((row) => row.contact_id === idOf(index)).sort((a, b) => a.purchased_at.getTime() - b.purchased_at.getTime());
    const [first, second] = own;
    const [moveTo, addAt] = value.lateOffsets;
    if (first) await change(first, { product_id: base.productIds['PL-REFILL'], quantity: 3, unit_price: 99.99, purchased_at: at(moveTo) });
    if (second) await remove(second);
    await add(idOf(index), { product_id: base.productIds['PL-KIT'], quantity: 1, unit_price: 60, purchased_at: at(addAt) });
  }
  return counts;
}

describe('changing any purchase on or after the cutoff changes no feature', () => {
  it('keeps the matrix byte-identical and the same rows, with the run’s snapshot and with a snapshot taken again', async () => {
    let tries = 0;
    const totals = { changed: 0, added: 0, deleted: 0 };
    await fc.assert(
      fc.asyncProperty(scenario, async (value) => {
        tries++;
        const cutoff = CUTOFFS[value.cutoff] as Date;
        const expected = baseline.get(cutoff.getTime()) as FeatureMatrix;
        await rolledBack(async (trx) => {
          const counts = await applyModifications(trx, cutoff, value);
          for (const key of Object.keys(totals) as Array<keyof typeof totals>) totals[key] += counts[key] ?? 0;

          const again = await features(trx, cutoff);
          expectSameMatrix(again, expected, `cutoff ${cutoff.toISOString()}, same snapshot`);

          // a new run's snapshot computes known_since again from the modified purchases
          const rerun = await createRun(trx, {
            kind: 'pipeline',
            trigger: 'test:leakage',
            asOf: SNAPSHOT_AT,
            horizonDays: HORIZON_DAYS,
            params: {},
            startedAt: SNAPSHOT_AT,
          });
          await takeConsentSnapshot(trx, rerun, SNAPSHOT_AT, false);
          const fresh = await features(trx, cutoff, rerun);
          expectSameMatrix(fresh, expected, `cutoff ${cutoff.toISOString()}, new snapshot`);

          // and BG/NBD, fitted on that history, fills the same two columns
          const filledExpected = copyOf(expected);
          const expectedFit = fillBuyTillYouDie(filledExpected, 7);
          const fit = fillBuyTillYouDie(fresh, 7);
          expect(fit.params).toEqual(expectedFit.params);
          expect(bytes(fresh.x).equals(bytes(filledExpected.x)), 'x with the BG/NBD columns').toBe(true);
        });
      }),
      { numRuns: Number(process.env.LEAKAGE_PROPERTY_RUNS ?? 12), endOnFailure: true },
    );
    // the tries really did rewrite the future
    expect(tries).toBeGreaterThanOrEqual(Math.min(12, Number(process.env.LEAKAGE_PROPERTY_RUNS ?? 12)));
    expect(totals.changed).toBeGreaterThan(tries);
    expect(totals.added).toBeGreaterThan(tries);
    expect(totals.deleted).toBeGreaterThanOrEqual(tries);
  }, 50_000);

  it('a purchase exactly at the cutoff is not seen; the same purchase one millisecond earlier is, in its owner’s row only', async () => {
    const cutoff = CUTOFFS[0];
    const expected = baseline.get(cutoff.getTime()) as FeatureMatrix;
    const owner = idOf(10);
    const row = Array.from(expected.contactIds).indexOf(owner);
    const purchase = { order_id: 'EDGE-1', contact_id: owner, product_id: base.productIds['PL-MUG'], quantity: 4, unit_price: 123.45 };
    await rolledBack(async (trx) => {
      await trx
        .insertInto('purchases')
        .values({ ...purchase, purchased_at: cutoff })
        .execute();
      expectSameMatrix(await features(trx, cutoff), expected, 'purchase at the cutoff');
    });
    await rolledBack(async (trx) => {
      await trx
        .insertInto('purchases')
        .values({ ...purchase, purchased_at: new Date(cutoff.getTime() - 1) })
        .execute();
      const changed = await features(trx, cutoff);
      expect(Array.from(changed.contactIds)).toEqual(Array.from(expected.contactIds));
      expect(differingRows(changed, expected)).toEqual([row]);
    });
  });
});

describe('events after the cutoff other than purchases', () => {
  it('a consent renewed after the cutoff leaves the rows at the cutoff as they were', async () => {
    const cutoff = CUTOFFS[1];
    const expected = baseline.get(cutoff.getTime()) as FeatureMatrix;
    const renewing = idOf(LATE_STARTERS[0] as number);
    expect(Array.from(expected.contactIds)).toContain(renewing);
    await rolledBack(async (trx) => {
      await trx
        .insertInto('consent_events')
        .values({
          contact_id: renewing,
          purpose: 'profiling',
          channel: null,
          status: 'granted',
          captured_at: new Date(LAST_CUTOFF + 10 * DAY_MS),
          source: 'web:account-form',
          method: 'explicit_checkbox',
          notice_version: 'privacy-v3',
          evidence_ref: null,
          expires_at: null,
          import_id: null,
        })
        .execute();
      const rerun = await createRun(trx, {
        kind: 'pipeline',
        trigger: 'test:leakage',
        asOf: SNAPSHOT_AT,
        horizonDays: HORIZON_DAYS,
        params: {},
        startedAt: SNAPSHOT_AT,
      });
      await takeConsentSnapshot(trx, rerun, SNAPSHOT_AT, false);
      const fresh = await features(trx, cutoff, rerun);
      expect(Array.from(fresh.contactIds)).toContain(renewing);
    });
  });
});

describe('positive control: a change strictly before the cutoff does change the matrix', () => {
  it('changing the quantity, price or date of any one purchase before the cutoff changes that person’s row, and only it', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: CUTOFFS.length - 1 }),
        fc.nat(),
        fc.constantFrom('quantity' as const, 'price' as const, 'earlier' as const, 'to the cutoff' as const),
        async (cutoffIndex, pick, what) => {
          const cutoff = CUTOFFS[cutoffIndex] as Date;
          const expected = baseline.get(cutoff.getTime()) as FeatureMatrix;
          const before = await database.db
            .selectFrom('purchases as p')
            .innerJoin('products as pr', 'pr.id', 'p.product_id')
            .select(['p.order_id', 'p.product_id', 'p.contact_id', 'p.quantity', 'p.unit_price', 'p.purchased_at'])
            .where('p.purchased_at', '<', cutoff)
            .where('pr.category', '<>', 'pharmacy')
            .orderBy('p.order_id')
            .execute();
          const row = before[pick % before.length] as PurchaseRow;
          await rolledBack(async (trx) => {
            const update = trx.updateTable('purchases').where('order_id', '=', row.order_id).where('product_id', '=', row.product_id);
            if (what === 'quantity') await update.set({ quantity: row.quantity + 7 }).execute();
            else if (what === 'price') await update.set({ unit_price: row.unit_price + 250 }).execute();
            // 400 days earlier: before the person's first purchase, so the tenure moves
            else if (what === 'earlier') await update.set({ purchased_at: new Date(row.purchased_at.getTime() - 400 * DAY_MS) }).execute();
            // moved to the cutoff: no longer visible
            else await update.set({ purchased_at: cutoff }).execute();
            const changed = await features(trx, cutoff);
            expect(Array.from(changed.contactIds)).toEqual(Array.from(expected.contactIds));
            const ownerRow = Array.from(expected.contactIds).indexOf(row.contact_id);
            expect(differingRows(changed, expected), `${what} of ${row.order_id} before ${cutoff.toISOString()}`).toEqual([ownerRow]);
          });
        },
      ),
      { numRuns: Number(process.env.LEAKAGE_CONTROL_RUNS ?? 8), endOnFailure: true },
    );
  }, 30_000);

  it('while a purchase of a special category (pharmacy) before the cutoff changes nothing', async () => {
    const cutoff = CUTOFFS[1];
    const expected = baseline.get(cutoff.getTime()) as FeatureMatrix;
    await rolledBack(async (trx) => {
      const { numUpdatedRows } = await trx
        .updateTable('purchases')
        .set({ quantity: 9, unit_price: 999 })
        .where('product_id', '=', base.productIds['PL-VITAMIN'])
        .where('purchased_at', '<', cutoff)
        .executeTakeFirst();
      expect(Number(numUpdatedRows)).toBeGreaterThan(100);
      expectSameMatrix(await features(trx, cutoff), expected, 'pharmacy purchases changed');
    });
  });
});
