import { type Kysely, type RawBuilder, sql } from 'kysely';
import { countingConsents } from '../src/consent/eligibility.ts';
import type { Database } from '../src/db/database.ts';
import { assertAllowedFeatures, EXPLANATION_GROUPS, HISTORY_FEATURES, PERSON_FEATURES } from './feature-spec.ts';
import type { Target } from './targets.ts';

const CHUNK_ROWS = 100_000;

/** Which columns exist: the person features, then a block of history features per category and per target product. */
export interface FeatureLayout {
  names: string[];
  categories: string[];
  /** product ids with a history block, in block order */
  productIds: number[];
  explanationGroups: Array<{ name: string; columns: number[] }>;
  specialCategories: string[];
}

export function featureLayout(
  targets: readonly Target[],
  categories: readonly string[],
  specialCategories: readonly string[],
): FeatureLayout {
  const productIds = targets.filter((target) => target.kind === 'product').map((target) => target.productId as number);
  const productKeys = targets.filter((target) => target.kind === 'product').map((target) => target.key);
  const names: string[] = [...PERSON_FEATURES];
  for (const category of categories) for (const feature of HISTORY_FEATURES) names.push(`category:${category}:${feature}`);
  for (const key of productKeys) for (const feature of HISTORY_FEATURES) names.push(`product:${key}:${feature}`);
  return storedLayout({ names, categories: [...categories], productIds, specialCategories: [...specialCategories] });
}

/** A layout as a model version or network stored it (names and blocks), with its explanation groups rebuilt. */
export function storedLayout(stored: Omit<FeatureLayout, 'explanationGroups'>): FeatureLayout {
  const { names } = stored;
  assertAllowedFeatures(names);
  const index = (name: string) => names.indexOf(name);
  const explanationGroups = Object.entries(EXPLANATION_GROUPS).map(([name, columns]) => ({ name, columns: columns.map(index) }));
  const blockColumns = (prefix: string) => names.flatMap((name, column) => (name.startsWith(prefix) ? [column] : []));
  if (stored.categories.length > 0) explanationGroups.push({ name: 'category history', columns: blockColumns('category:') });
  if (stored.productIds.length > 0) explanationGroups.push({ name: 'product history', columns: blockColumns('product:') });
  return {
    names: [...names],
    categories: [...stored.categories],
    productIds: [...stored.productIds],
    explanationGroups,
    specialCategories: [...stored.specialCategories],
  };
}

/** The raw purchase history BG/NBD needs, per row, in days. */
export interface PurchaseHistory {
  repeatDays: Float64Array;
  lastAge: Float64Array;
  firstAge: Float64Array;
}

export interface FeatureMatrix {
  cutoff: Date;
  horizonDays: number;
  rows: number;
  columns: number;
  /** row-major rows x columns, untransformed by standardisation */
  x: Float32Array;
  contactIds: Float64Array;
  history: PurchaseHistory;
  layout: FeatureLayout;
}

export interface FeatureRequest {
  runId: number;
  /** features use purchases strictly before the cutoff */
  cutoff: Date;
  horizonDays: number;
  layout: FeatureLayout;
  /** also require a profiling consent that counts now (scoring) */
  liveConsentAt?: Date;
  /** keep a deterministic sample of people (by contact id hash), in thousandths; training needs no more */
  samplePermille?: number;
  /** one shard of the people (by contact id), for scoring jobs that split the population */
  shard?: { index: number; count: number };
}

/** Rows of the snapshot that exist at the cutoff, optionally still consenting now. */
function populationFilter(request: FeatureRequest): RawBuilder<unknown> {
  const live = request.liveConsentAt
    ? sql`AND s.contact_id IN (SELECT contact_id FROM ${countingConsents('profiling', null, request.liveConsentAt, true)} live)`
    : sql``;
  const sample =
    request.samplePermille !== undefined && request.samplePermille < 1000
      ? sql`AND mod(s.contact_id * 2654435761, 1000) < ${request.samplePermille}`
      : sql``;
  const shard =
    request.shard && request.shard.count > 1 ? sql`AND mod(s.contact_id, ${request.shard.count}) = ${request.shard.index}` : sql``;
  return sql`s.run_id = ${request.runId} AND s.known_since < ${request.cutoff} ${live} ${sample} ${shard}`;
}

async function populationIds(db: Kysely<Database>, request: FeatureRequest): Promise<Float64Array> {
  const { rows } = await sql<{ ids: Buffer }>`
    SELECT coalesce(string_agg(int8send(s.contact_id), ''::bytea ORDER BY s.contact_id), ''::bytea) AS ids
    FROM profiling_snapshots s WHERE ${populationFilter(request)}`.execute(db);
  const buffer = rows[0]?.ids ?? Buffer.alloc(0);
  const ids = new Float64Array(buffer.length / 8);
  for (let i = 0; i < ids.length; i++) ids[i] = Number(buffer.readBigInt64BE(i * 8));
  return ids;
}

/**
 * Purchases visible to features: before the cutoff, outside special categories, over all the
 * records of each person of the chunk, under the person's id (the population holds person ids).
 */
function visiblePurchases(request: FeatureRequest, from: number, to: number): RawBuilder<unknown> {
  return sql`(
    SELECT pop.contact_id, p.product_id, pr.category, p.purchased_at, p.order_id, p.quantity, p.unit_price,
      p.quantity * p.unit_price AS amount,
      (p.purchased_at AT TIME ZONE 'UTC')::date AS day
    FROM ${chunkPopulation(request, from, to)} pop
    JOIN contacts rc ON rc.person_id = pop.contact_id AND rc.person_id BETWEEN ${from} AND ${to}
    JOIN purchases p ON p.contact_id = rc.id
    JOIN products pr ON pr.id = p.product_id
    WHERE p.purchased_at < ${request.cutoff}
      AND NOT (pr.category = ANY(${request.layout.specialCategories}::text[]))
  )`;
}

function chunkPopulation(request: FeatureRequest, from: number, to: number): RawBuilder<unknown> {
  return sql`(SELECT s.contact_id FROM profiling_snapshots s WHERE ${populationFilter(request)} AND s.contact_id BETWEEN ${from} AND ${to})`;
}

const PERSON_RAW = 20;

/** One packed row per person of the chunk, in contact order: the aggregates the person features derive from. */
export async function personAggregates(db: Kysely<Database>, request: FeatureRequest, from: number, to: number): Promise<Buffer> {
  const horizon = `${request.horizonDays} days`;
  const { rows } = await sql<{ packed: Buffer | null }>`
    WITH visible AS ${visiblePurchases(request, from, to)},
    days AS (
      SELECT contact_id, day, sum(amount) AS amount FROM visible GROUP BY contact_id, day
    ),
    gaps AS (
      SELECT contact_id, day, amount, day - lag(day) OVER (PARTITION BY contact_id ORDER BY day) AS gap FROM days
    ),
    per_person AS (
      SELECT contact_id,
        count(*) AS purchase_days,
        min(day) AS first_day,
        max(day) AS last_day,
        count(*) FILTER (WHERE day >= ((${request.cutoff}::timestamptz - interval '30 days') AT TIME ZONE 'UTC')::date) AS days_30,
        count(*) FILTER (WHERE day >= ((${request.cutoff}::timestamptz - interval '90 days') AT TIME ZONE 'UTC')::date) AS days_90,
        count(*) FILTER (WHERE day >= ((${request.cutoff}::timestamptz - interval '180 days') AT TIME ZONE 'UTC')::date) AS days_180,
        count(*) FILTER (WHERE day >= ((${request.cutoff}::timestamptz - interval '365 days') AT TIME ZONE 'UTC')::date) AS days_365,
        count(*) FILTER (WHERE day >= ((${request.cutoff}::timestamptz - ${horizon}::interval) AT TIME ZONE 'UTC')::date) AS days_last_h,
        count(*) FILTER (WHERE day >= ((${request.cutoff}::timestamptz - 2 * ${horizon}::interval) AT TIME ZONE 'UTC')::date
                           AND day < ((${request.cutoff}::timestamptz - ${horizon}::interval) AT TIME ZONE 'UTC')::date) AS days_previous_h,
        sum(amount) AS spend,
        coalesce(sum(amount) FILTER (WHERE day >= ((${request.cutoff}::timestamptz - ${horizon}::interval) AT TIME ZONE 'UTC')::date), 0) AS spend_last_h,
        avg(gap) AS mean_gap,
        stddev_samp(gap) AS sd_gap,
        count(*) FILTER (WHERE day >= ((${request.cutoff}::timestamptz - interval '365 days') AT TIME ZONE 'UTC')::date
                           AND day < ((${request.cutoff}::timestamptz - interval '365 days' + ${horizon}::interval) AT TIME ZONE 'UTC')::date) AS season_days
      FROM gaps GROUP BY contact_id
    ),
    breadth AS (
      SELECT contact_id, count(DISTINCT product_id) AS products, count(DISTINCT category) AS categories,
        count(DISTINCT order_id) AS orders, count(*) AS lines, sum(quantity) AS units, avg(unit_price) AS unit_price
      FROM visible GROUP BY contact_id
    )
    SELECT string_agg(
      float4send(coalesce(pp.purchase_days, 0)::float4)
      || float4send(coalesce(extract(epoch FROM ${request.cutoff}::timestamptz - pp.first_day::timestamp AT TIME ZONE 'UTC') / 86400, 'NaN')::float4)
      || float4send(coalesce(extract(epoch FROM ${request.cutoff}::timestamptz - pp.last_day::timestamp AT TIME ZONE 'UTC') / 86400, 'NaN')::float4)
      || float4send(coalesce(pp.days_30, 0)::float4) || float4send(coalesce(pp.days_90, 0)::float4)
      || float4send(coalesce(pp.days_180, 0)::float4) || float4send(coalesce(pp.days_365, 0)::float4)
      || float4send(coalesce(pp.days_last_h, 0)::float4) || float4send(coalesce(pp.days_previous_h, 0)::float4)
      || float4send(coalesce(pp.spend, 0)::float4) || float4send(coalesce(pp.spend_last_h, 0)::float4)
      || float4send(coalesce(pp.mean_gap, 'NaN')::float4) || float4send(coalesce(pp.sd_gap, 'NaN')::float4)
      || float4send(coalesce(b.products, 0)::float4) || float4send(coalesce(b.categories, 0)::float4)
      || float4send(coalesce(pp.season_days, 0)::float4)
      || float4send(coalesce(b.orders, 0)::float4) || float4send(coalesce(b.lines, 0)::float4)
      || float4send(coalesce(b.units, 0)::float4) || float4send(coalesce(b.unit_price, 0)::float4),
      ''::bytea ORDER BY pop.contact_id) AS packed
    FROM ${chunkPopulation(request, from, to)} pop
    LEFT JOIN per_person pp ON pp.contact_id = pop.contact_id
    LEFT JOIN breadth b ON b.contact_id = pop.contact_id`.execute(db);
  return rows[0]?.packed ?? Buffer.alloc(0);
}

const BLOCK_RECORD_BYTES = 24; // row int4, block int4, four float4

/** Sparse history per (person, category block | product block): only pairs with purchases. */
async function blockAggregates(db: Kysely<Database>, request: FeatureRequest, from: number, to: number, firstRow: number): Promise<Buffer> {
  const { categories, productIds } = request.layout;
  const productBlocks = productIds.map((_, index) => categories.length + index);
  const categoryBlocks = categories.map((_, index) => index);
  const horizon = `${request.horizonDays} days`;
  const { rows } = await sql<{ packed: Buffer | null }>`
    WITH visible AS ${visiblePurchases(request, from, to)},
    pop AS (
      SELECT contact_id, (${firstRow} + row_number() OVER (ORDER BY contact_id) - 1)::int AS row FROM ${chunkPopulation(request, from, to)} c
    ),
    spend AS (SELECT contact_id, sum(amount) AS total FROM visible GROUP BY contact_id),
    by_block AS (
      SELECT v.contact_id, cb.block, v.day, v.amount FROM visible v
      JOIN unnest(${categories}::text[], ${categoryBlocks}::int[]) AS cb (category, block) ON cb.category = v.category
      UNION ALL
      SELECT v.contact_id, pb.block, v.day, v.amount FROM visible v
      JOIN unnest(${productIds}::bigint[], ${productBlocks}::int[]) AS pb (product_id, block) ON pb.product_id = v.product_id
    ),
    per_block AS (
      SELECT contact_id, block, max(day) AS last_day, count(DISTINCT day) AS purchase_days,
        count(DISTINCT day) FILTER (WHERE day >= ((${request.cutoff}::timestamptz - ${horizon}::interval) AT TIME ZONE 'UTC')::date) AS recent_days,
        sum(amount) AS amount
      FROM by_block GROUP BY contact_id, block
    )
    SELECT string_agg(
      int4send(pop.row) || int4send(pb.block)
      || float4send((extract(epoch FROM ${request.cutoff}::timestamptz - pb.last_day::timestamp AT TIME ZONE 'UTC') / 86400)::float4)
      || float4send(pb.purchase_days::float4) || float4send(pb.recent_days::float4)
      || float4send(CASE WHEN s.total > 0 THEN pb.amount / s.total ELSE 0 END::float4),
      ''::bytea) AS packed
    FROM per_block pb JOIN pop ON pop.contact_id = pb.contact_id JOIN spend s ON s.contact_id = pb.contact_id`.execute(db);
  return rows[0]?.packed ?? Buffer.alloc(0);
}

/**
 * Stage 2: the feature matrix at a cutoff, straight from SQL aggregates into one
 * Float32Array (no per-row objects). Only purchases strictly before the cutoff are read.
 * BG/NBD columns are left at zero: fill them with fillBuyTillYouDie once fitted.
 */
export async function computeFeatures(
  db: Kysely<Database>,
  request: FeatureRequest,
  onChunk?: (doneRows: number, totalRows: number) => void,
): Promise<FeatureMatrix> {
  const contactIds = await populationIds(db, request);
  const rows = contactIds.length;
  const layout = request.layout;
  const columns = layout.names.length;
  const x = new Float32Array(rows * columns);
  const history: PurchaseHistory = {
    repeatDays: new Float64Array(rows),
    lastAge: new Float64Array(rows),
    firstAge: new Float64Array(rows),
  };
  const horizon = request.horizonDays;
  const blockStart = PERSON_FEATURES.length;
  const width = HISTORY_FEATURES.length;

  for (let start = 0; start < rows; start += CHUNK_ROWS) {
    const end = Math.min(rows, start + CHUNK_ROWS);
    const from = contactIds[start] as number;
    const to = contactIds[end - 1] as number;
    const [people, blocks] = await Promise.all([personAggregates(db, request, from, to), blockAggregates(db, request, from, to, start)]);
    if (people.length !== (end - start) * PERSON_RAW * 4) {
      throw new Error(`feature query returned ${people.length / (PERSON_RAW * 4)} rows for ${end - start} people`);
    }
    for (let row = start; row < end; row++) {
      const offset = (row - start) * PERSON_RAW * 4;
      const raw = (k: number) => people.readFloatBE(offset + k * 4);
      writePersonFeatures(x, row * columns, raw, history, row);
    }
    for (let offset = 0; offset < blocks.length; offset += BLOCK_RECORD_BYTES) {
      const row = blocks.readInt32BE(offset);
      const block = blocks.readInt32BE(offset + 4);
      const age = blocks.readFloatBE(offset + 8);
      const purchaseDays = blocks.readFloatBE(offset + 12);
      const recentDays = blocks.readFloatBE(offset + 16);
      const spendShare = blocks.readFloatBE(offset + 20);
      const base = row * columns + blockStart + block * width;
      x[base] = Math.exp(-age / horizon);
      x[base + 1] = Math.log1p(purchaseDays);
      x[base + 2] = Math.log1p(recentDays);
      x[base + 3] = spendShare;
    }
    onChunk?.(end, rows);
  }
  return { cutoff: request.cutoff, horizonDays: horizon, rows, columns, x, contactIds, history, layout };
}

function writePersonFeatures(x: Float32Array, base: number, raw: (k: number) => number, history: PurchaseHistory, row: number): void {
  const purchaseDays = raw(0);
  const firstAge = raw(1);
  const lastAge = raw(2);
  const hasHistory = purchaseDays > 0;
  const meanGap = raw(11);
  const sdGap = raw(12);
  const spend = Math.max(0, raw(9));
  history.repeatDays[row] = hasHistory ? purchaseDays - 1 : 0;
  history.firstAge[row] = hasHistory ? firstAge : 0;
  history.lastAge[row] = hasHistory ? lastAge : 0;
  x[base] = hasHistory ? 1 : 0;
  x[base + 1] = hasHistory ? Math.log1p(lastAge) : 0;
  x[base + 2] = hasHistory ? Math.log1p(firstAge) : 0;
  x[base + 3] = Math.log1p(purchaseDays);
  x[base + 4] = Math.log1p(raw(3));
  x[base + 5] = Math.log1p(raw(4));
  x[base + 6] = Math.log1p(raw(5));
  x[base + 7] = Math.log1p(raw(6));
  x[base + 8] = Math.log1p(raw(7)) - Math.log1p(raw(8));
  x[base + 9] = Math.log1p(spend);
  x[base + 10] = Math.log1p(Math.max(0, raw(10)));
  x[base + 11] = hasHistory ? Math.log1p(spend / purchaseDays) : 0;
  x[base + 12] = Number.isFinite(meanGap) ? Math.log1p(meanGap) : 0;
  x[base + 13] = Number.isFinite(sdGap) && meanGap > 0 ? Math.min(5, sdGap / meanGap) : 0;
  x[base + 14] = Number.isFinite(meanGap) && meanGap > 0 ? Math.min(10, lastAge / meanGap) : 0;
  x[base + 15] = Math.log1p(raw(13));
  x[base + 16] = Math.log1p(raw(14));
  x[base + 17] = Math.log1p(raw(15));
  x[base + 18] = hasHistory && firstAge >= 365 ? 1 : 0;
  const orders = raw(16);
  x[base + 21] = Math.log1p(orders);
  x[base + 22] = orders > 0 ? Math.log1p(raw(17) / orders) : 0;
  x[base + 23] = orders > 0 ? Math.log1p(Math.max(0, raw(18)) / orders) : 0;
  x[base + 24] = Math.log1p(Math.max(0, raw(19)));
  // columns 19 and 20 (BG/NBD) are filled once the model is fitted at this cutoff
}

export const BGNBD_EXPECTED_COLUMN = PERSON_FEATURES.indexOf('bgnbd_expected_purchases');
export const BGNBD_ALIVE_COLUMN = PERSON_FEATURES.indexOf('bgnbd_probability_alive');
