import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeFeatures, featureLayout } from '../../pipelines/features.ts';
import { computeLabels } from '../../pipelines/labels.ts';
import { type PipelineReport, runPipeline } from '../../pipelines/run-pipeline.ts';
import type { Target } from '../../pipelines/targets.ts';
import { sha256Hex } from '../../src/contacts/identity.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { DEFAULT_IDENTITY_POLICY, resolveIdentities } from '../../src/identities/resolution.repository.ts';
import { createTestDatabase } from '../helpers/database.ts';
import {
  allValid,
  type Base,
  DAY_MS,
  insertPurchases,
  type PurchaseRow,
  pipelineContext,
  seedBase,
  smallOptions,
} from '../pipelines/pipeline.fixtures.ts';

/*
 * Everything downstream of the consent gate is by person (issue 19): one person with two
 * records (record A from the pipeline base, record B added with the same email in upper case
 * under another external id, B's purchases only on B) is one row of the snapshot, one row of
 * every feature matrix with the purchases of both records, and one score, under A's id (the
 * primary record's, the lower id); record B has no row and no score of its own.
 */

const RUN_AT = new Date('2026-11-01T06:00:00Z');
const FROM = new Date(RUN_AT.getTime() - 400 * DAY_MS);
const CONTACTS = 160;
const SEED = 1919;
/** the profiling grants of the base are captured 10 days before FROM (seedBase's default) */
const B_GRANTED_AT = new Date(FROM.getTime() - 40 * DAY_MS);
/** record B's first purchase: earlier than either record's grant, so the person is known from it */
const B_FIRST_PURCHASE = new Date(FROM.getTime() - 60 * DAY_MS + 3_600_000);
/** a product only record B ever buys, 20 days after this cutoff (a label) and before it (a feature) */
const LABEL_CUTOFF = new Date(RUN_AT.getTime() - 120 * DAY_MS);

let database: DatabaseHandle;
let base: Base;
let recordA: number;
let recordB: number;
let soloProduct: number;
let bPurchases: PurchaseRow[];
let report: PipelineReport;

beforeAll(async () => {
  database = await createTestDatabase();
  const { db } = database;
  base = await seedBase(database, { seed: SEED, from: FROM, to: RUN_AT, consents: allValid(CONTACTS) });
  recordA = base.people[0]!.id;
  const emailA = `${base.people[0]!.ref.toLowerCase()}@example.com`;

  const b = await db
    .insertInto('contacts')
    .values({ external_id: 'CRM-77001', created_at: new Date(FROM.getTime() - 90 * DAY_MS) })
    .returning('id')
    .executeTakeFirstOrThrow();
  recordB = Number(b.id);
  const emailB = emailA.toUpperCase();
  await db
    .insertInto('contact_personal_data')
    .values({ contact_id: recordB, email: emailB, email_hash: sha256Hex(emailB.toLowerCase()), country: 'FR' })
    .execute();
  await db
    .insertInto('consent_events')
    .values({
      contact_id: recordB,
      purpose: 'profiling',
      channel: null,
      status: 'granted',
      captured_at: B_GRANTED_AT,
      source: 'crm:shop-form',
      method: 'explicit_checkbox',
      notice_version: 'privacy-v2',
      evidence_ref: 'ev-crm-77001',
      expires_at: null,
      import_id: null,
    })
    .execute();
  const [solo] = await db
    .insertInto('products')
    .values({ sku: 'PL-SOLO', name: 'Only record B buys it', category: 'solo' })
    .returning('id')
    .execute();
  soloProduct = Number(solo!.id);
  const purchase = (n: number, productId: number, at: Date): PurchaseRow => ({
    order_id: `CRM-77001-${n}`,
    product_id: productId,
    contact_id: recordB,
    quantity: 1,
    unit_price: 10,
    purchased_at: at,
  });
  bPurchases = [
    purchase(1, base.productIds['PL-COFFEE'], B_FIRST_PURCHASE),
    purchase(2, soloProduct, new Date(LABEL_CUTOFF.getTime() - 30 * DAY_MS + 7_200_000)),
    purchase(3, soloProduct, new Date(LABEL_CUTOFF.getTime() + 20 * DAY_MS + 7_200_000)),
    purchase(4, base.productIds['PL-MUG'], new Date(RUN_AT.getTime() - 3 * DAY_MS + 7_200_000)),
  ];
  await insertPurchases(database, bPurchases);

  // B becomes a record of A's person (what the resolver does on the shared email)
  // linked as an import links them: the resolver finds the shared email
  const client = await database.pool.connect();
  try {
    await client.query('BEGIN');
    const linked = await resolveIdentities(client, [recordB], DEFAULT_IDENTITY_POLICY);
    await client.query('COMMIT');
    expect(linked.relinked).toEqual([expect.objectContaining({ recordId: recordB, toPerson: recordA, via: ['email'] })]);
  } finally {
    client.release();
  }
  report = await runPipeline(pipelineContext(database, RUN_AT), smallOptions());
}, 300_000);
afterAll(() => database?.close());

const utcDay = (at: Date) => at.toISOString().slice(0, 10);

/** Distinct purchase days and orders of the given records before `cutoff`, outside the special category. */
async function historyOf(records: number[], cutoff: Date): Promise<{ days: number; orders: number }> {
  const rows = await database.db
    .selectFrom('purchases as p')
    .innerJoin('products as pr', 'pr.id', 'p.product_id')
    .select(['p.order_id', 'p.purchased_at'])
    .where('p.contact_id', 'in', records)
    .where('p.purchased_at', '<', cutoff)
    .where('pr.category', '<>', 'pharmacy')
    .execute();
  return {
    days: new Set(rows.map((row) => utcDay(new Date(row.purchased_at)))).size,
    orders: new Set(rows.map((row) => row.order_id)).size,
  };
}

describe('a person with two records', () => {
  it('has one row in the run’s snapshot, under the primary record’s id, known since the first purchase of record B', async () => {
    const rows = await database.db
      .selectFrom('profiling_snapshots')
      .select(['contact_id', 'known_since'])
      .where('run_id', '=', report.runId)
      .execute();
    expect(rows.length).toBe(CONTACTS);
    expect(rows.filter((row) => Number(row.contact_id) === recordA).length).toBe(1);
    expect(rows.filter((row) => Number(row.contact_id) === recordB)).toEqual([]);
    const a = rows.find((row) => Number(row.contact_id) === recordA)!;
    expect(new Date(a.known_since).toISOString()).toBe(B_FIRST_PURCHASE.toISOString());
    expect(report.population).toBe(CONTACTS);
  });

  it('has one row in a feature matrix, aggregating the purchases of both records', async () => {
    const targets: Target[] = [{ kind: 'product', key: 'PL-SOLO', productId: soloProduct, category: 'solo' }];
    const layout = featureLayout(targets, ['solo'], ['pharmacy']);
    const matrix = await computeFeatures(database.db, { runId: report.runId, cutoff: RUN_AT, horizonDays: report.horizonDays, layout });
    const ids = [...matrix.contactIds];
    expect(ids.length).toBe(CONTACTS);
    expect(ids.filter((id) => id === recordA).length).toBe(1);
    expect(ids).not.toContain(recordB);

    const both = await historyOf([recordA, recordB], RUN_AT);
    const aloneA = await historyOf([recordA], RUN_AT);
    // record B's first purchase is before record A's history begins: the person has more purchase days than record A
    expect(both.days).toBeGreaterThan(aloneA.days);
    expect(both.orders).toBe(aloneA.orders + bPurchases.length);
    const row = ids.indexOf(recordA);
    const column = (name: string) => matrix.x[row * matrix.columns + layout.names.indexOf(name)] as number;
    expect(column('purchase_days')).toBeCloseTo(Math.log1p(both.days), 5);
    expect(column('orders')).toBeCloseTo(Math.log1p(both.orders), 5);
    // tenure from the first purchase of either record: record B's, before the base's history begins
    expect(matrix.history.firstAge[row]).toBeCloseTo((RUN_AT.getTime() - Date.parse(`${utcDay(B_FIRST_PURCHASE)}T00:00:00Z`)) / DAY_MS, 3);
    // the product only record B bought has a history on the person's row, and on no other
    const soloDays = layout.names.indexOf('product:PL-SOLO:purchase_days');
    for (let r = 0; r < matrix.rows; r++) {
      expect(matrix.x[r * matrix.columns + soloDays], `row of contact ${ids[r]}`).toBe(r === row ? Math.fround(Math.log1p(2)) : 0);
    }
  });

  it('is labelled with what record B bought after the cutoff', async () => {
    const targets: Target[] = [{ kind: 'product', key: 'PL-SOLO', productId: soloProduct, category: 'solo' }];
    const layout = featureLayout(targets, ['solo'], ['pharmacy']);
    const matrix = await computeFeatures(database.db, { runId: report.runId, cutoff: LABEL_CUTOFF, horizonDays: 60, layout });
    const labels = await computeLabels(database.db, matrix, targets);
    const ids = [...matrix.contactIds];
    expect(ids.filter((_, row) => labels[row] === 1)).toEqual([recordA]);
  });

  it('has exactly one score in every score set of the run, and record B has none', async () => {
    const sets = await database.db.selectFrom('score_sets').select(['id', 'row_count']).where('run_id', '=', report.runId).execute();
    expect(sets.length).toBeGreaterThan(0);
    for (const set of sets) {
      const rows = await database.db
        .selectFrom('scores')
        .select('contact_id')
        .where('score_set_id', '=', set.id)
        .where('contact_id', 'in', [recordA, recordB])
        .execute();
      expect(rows.map((r) => Number(r.contact_id))).toEqual([recordA]);
      const { count } = await database.db
        .selectFrom('scores')
        .select((eb) => eb.fn.countAll<number>().as('count'))
        .where('score_set_id', '=', set.id)
        .executeTakeFirstOrThrow();
      expect(Number(count)).toBe(CONTACTS);
    }
    const anyB = await database.db.selectFrom('scores').select('contact_id').where('contact_id', '=', recordB).execute();
    expect(anyB).toEqual([]);
  });
});
