import { sql } from 'kysely';
import { mulberry32 as seeded } from '../../models/random.ts';
import { DEFAULT_PIPELINE_OPTIONS, type PipelineOptions } from '../../pipelines/run-pipeline.ts';
import type { Target } from '../../pipelines/targets.ts';
import { type Clock, fixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import { sha256Hex } from '../../src/contacts/identity.ts';
import type { AppContext } from '../../src/context.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { captureLogger } from '../helpers/silent-logger.ts';

/*
 * A small synthetic base for the propensity pipeline, written straight into the tables
 * (consent events through the ledger, so the consent_state trigger runs as in production).
 *
 * The planted signal: whoever buys the starter kit (PL-KIT, category "crafts") buys its
 * refill (PL-REFILL, category "supplies") 22 to 38 days later with probability 0.85.
 * Everyone buys the kit at the same rate, so a person's own refill history says little
 * about their next refill (the RFM and BG/NBD baselines) while a recent kit purchase says
 * a lot (the networks see it through the category and product blocks).
 * Coffee (PL-COFFEE) is bought at a person-specific rate, mugs rarely, vitamins (a
 * special category, "pharmacy") must never show up in a feature or a target.
 */

export const DAY_MS = 86_400_000;

export const PRODUCTS = [
  { sku: 'PL-KIT', name: 'Starter kit', category: 'crafts' },
  { sku: 'PL-REFILL', name: 'Refill pack', category: 'supplies' },
  { sku: 'PL-COFFEE', name: 'Coffee beans', category: 'grocery' },
  { sku: 'PL-MUG', name: 'Mug', category: 'kitchen' },
  { sku: 'PL-VITAMIN', name: 'Vitamin D', category: 'pharmacy' },
] as const;

export type Sku = (typeof PRODUCTS)[number]['sku'];

/** What each contact's profiling consent looks like in the ledger. */
export type ConsentKind =
  | 'valid' // granted, explicit, with proof
  | 'withdrawn' // granted, then withdrawn before the run
  | 'never' // only a direct-marketing consent, never profiling
  | 'no-proof' // granted with an empty source: stored, never counts
  | 'pre-ticked' // granted by a pre-ticked box: stored, never counts
  | 'erased'; // valid consent, then erased through the rights service

export interface Person {
  id: number;
  ref: string;
  consent: ConsentKind;
}

export interface Base {
  people: Person[];
  productIds: Record<Sku, number>;
  purchases: number;
}

export interface PurchaseRow {
  order_id: string;
  product_id: number;
  contact_id: number;
  quantity: number;
  unit_price: number;
  purchased_at: Date;
}

export interface BaseOptions {
  seed: number;
  /** purchases are generated in [from, to) */
  from: Date;
  to: Date;
  /** consent kind of each contact, in order; its length is the number of contacts */
  consents: ConsentKind[];
  /** when the profiling consents were captured (default: 10 days before `from`), or per contact index */
  consentAt?: Date | ((index: number) => Date);
  /** when withdrawals were captured (default: 5 days before `to`) */
  withdrawnAt?: Date;
}

export function allValid(count: number): ConsentKind[] {
  return Array.from({ length: count }, () => 'valid' as const);
}

/** Inserts products, contacts (example.com emails), consent events and the purchases of the planted signal. */
export async function seedBase(database: DatabaseHandle, options: BaseOptions): Promise<Base> {
  const { db } = database;
  const productRows = await db
    .insertInto('products')
    .values(PRODUCTS.map((product) => ({ sku: product.sku, name: product.name, category: product.category })))
    .returning(['id', 'sku'])
    .execute();
  const productIds = Object.fromEntries(productRows.map((row) => [row.sku, row.id])) as Record<Sku, number>;

  const createdAt = new Date(options.from.getTime() - 30 * DAY_MS);
  const refs = options.consents.map((_, index) => `PL-${String(index + 1).padStart(5, '0')}`);
  const contactRows = await db
    .insertInto('contacts')
    .values(refs.map((ref) => ({ external_id: ref, created_at: createdAt })))
    .returning(['id', 'external_id'])
    .execute();
  const idOf = new Map(contactRows.map((row) => [row.external_id as string, row.id]));
  const people: Person[] = refs.map((ref, index) => ({
    id: idOf.get(ref) as number,
    ref,
    consent: options.consents[index] as ConsentKind,
  }));
  await db
    .insertInto('contact_personal_data')
    .values(
      people.map((person) => {
        const email = `${person.ref.toLowerCase()}@example.com`;
        return { contact_id: person.id, email, email_hash: sha256Hex(email), country: 'FR' };
      }),
    )
    .execute();

  const defaultConsentAt = new Date(options.from.getTime() - 10 * DAY_MS);
  const consentAt = (index: number) =>
    typeof options.consentAt === 'function' ? options.consentAt(index) : (options.consentAt ?? defaultConsentAt);
  const withdrawnAt = options.withdrawnAt ?? new Date(options.to.getTime() - 5 * DAY_MS);
  const events = people.flatMap((person, index) => consentEvents(person, consentAt(index), withdrawnAt));
  await db.insertInto('consent_events').values(events).execute();

  const purchases = generatePurchases(
    people.map((person) => person.id),
    productIds,
    options,
  );
  await insertPurchases(database, purchases);
  return { people, productIds, purchases: purchases.length };
}

function consentEvents(person: Person, consentAt: Date, withdrawnAt: Date) {
  const event = (status: 'granted' | 'withdrawn', capturedAt: Date, source: string | null, method: string) => ({
    contact_id: person.id,
    purpose: 'profiling',
    channel: null,
    status,
    captured_at: capturedAt,
    source,
    method,
    notice_version: 'privacy-v2',
    evidence_ref: `ev-${person.ref}`,
    expires_at: null,
    import_id: null,
  });
  // everyone may be emailed: direct marketing is not what the gate is about
  const marketing = { ...event('granted', consentAt, 'web:account-form', 'double_opt_in'), purpose: 'direct_marketing', channel: 'email' };
  switch (person.consent) {
    case 'valid':
    case 'erased':
      return [marketing, event('granted', consentAt, 'web:account-form', 'explicit_checkbox')];
    case 'withdrawn':
      return [
        marketing,
        event('granted', consentAt, 'web:account-form', 'explicit_checkbox'),
        event('withdrawn', withdrawnAt, 'preference_centre', 'explicit_checkbox'),
      ];
    case 'never':
      return [marketing];
    case 'no-proof':
      return [marketing, event('granted', consentAt, '', 'explicit_checkbox')];
    case 'pre-ticked':
      return [marketing, event('granted', consentAt, 'checkout', 'pre_ticked')];
  }
}

/** The planted signal (see the top of this file), reproducible from the seed. */
export function generatePurchases(contactIds: readonly number[], productIds: Record<Sku, number>, options: BaseOptions): PurchaseRow[] {
  const random = seeded(options.seed);
  const start = options.from.getTime();
  const end = options.to.getTime();
  const rows: PurchaseRow[] = [];
  let order = 0;
  const add = (contactId: number, sku: Sku, at: number, price: number) => {
    if (at < start || at >= end) return;
    order++;
    rows.push({
      order_id: `PLO-${options.seed}-${order}`,
      product_id: productIds[sku],
      contact_id: contactId,
      quantity: 1 + Math.floor(random() * 2),
      unit_price: Math.round(price * (0.9 + 0.2 * random()) * 100) / 100,
      // a time of day too, so that purchases on a cutoff's day fall on both sides of it
      purchased_at: new Date(Math.floor(at / 1000) * 1000),
    });
  };
  /** a Poisson process of `ratePerDay` over [start - lead, end) */
  const arrivals = (ratePerDay: number, lead = 0): number[] => {
    const times: number[] = [];
    let at = start - lead;
    for (;;) {
      at += (-Math.log(1 - random()) / ratePerDay) * DAY_MS;
      if (at >= end) return times;
      times.push(at);
    }
  };
  for (const contactId of contactIds) {
    const coffeeRate = Math.exp(Math.log(1 / 30) + 0.8 * gaussian(random));
    for (const at of arrivals(coffeeRate)) add(contactId, 'PL-COFFEE', at, 12);
    for (const at of arrivals(1 / 150)) add(contactId, 'PL-MUG', at, 9);
    for (const at of arrivals(1 / 120)) add(contactId, 'PL-VITAMIN', at, 15);
    // kits bought before `from` still lead to refills inside the period
    for (const at of arrivals(1 / 90, 40 * DAY_MS)) {
      add(contactId, 'PL-KIT', at, 60);
      if (random() < 0.85) add(contactId, 'PL-REFILL', at + (22 + 16 * random()) * DAY_MS, 20);
    }
    for (const at of arrivals(1 / 400)) add(contactId, 'PL-REFILL', at, 20);
  }
  return rows;
}

function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** One INSERT of many rows through unnest, on both engines. */
export async function insertPurchases(database: DatabaseHandle, rows: readonly PurchaseRow[]): Promise<void> {
  if (rows.length === 0) return;
  await sql`
    INSERT INTO purchases (order_id, product_id, contact_id, quantity, unit_price, purchased_at)
    SELECT * FROM unnest(
      ${rows.map((row) => row.order_id)}::text[], ${rows.map((row) => row.product_id)}::bigint[],
      ${rows.map((row) => row.contact_id)}::bigint[], ${rows.map((row) => row.quantity)}::int[],
      ${rows.map((row) => row.unit_price)}::numeric[], ${rows.map((row) => row.purchased_at.toISOString())}::timestamptz[])`.execute(
    database.db,
  );
}

/** Every product, category (outside the special ones) and "any", as the pipeline would target them. */
export async function allTargets(database: DatabaseHandle, specialCategories: readonly string[] = ['pharmacy']): Promise<Target[]> {
  const products = await database.db.selectFrom('products').select(['id', 'sku', 'category']).orderBy('sku').execute();
  const kept = products.filter((product) => !specialCategories.includes(product.category));
  const categories = [...new Set(kept.map((product) => product.category))].sort();
  return [
    { kind: 'any', key: 'any', productId: null, category: null },
    ...categories.map((category) => ({ kind: 'category' as const, key: category, productId: null, category })),
    ...kept.map((product) => ({ kind: 'product' as const, key: product.sku, productId: product.id, category: product.category })),
  ];
}

/** A context as the CLI builds it, on the test's database, with a clock the test controls. */
export function pipelineContext(database: DatabaseHandle, clock: Clock | Date): AppContext {
  return {
    config: loadConfig({}),
    logger: captureLogger().logger,
    clock: clock instanceof Date ? fixedClock(clock) : clock,
    database,
    stop: async () => undefined,
  };
}

/** A clock the test moves by hand. */
export function movableClock(start: Date): Clock & { set(at: Date): void } {
  let current = new Date(start);
  return {
    now: () => new Date(current),
    set(at: Date) {
      current = new Date(at);
    },
  };
}

/** Small and fast: a few hundred rows, the logistic network only, a few epochs of small batches. */
export function smallOptions(overrides: Partial<PipelineOptions> = {}): PipelineOptions {
  return {
    ...DEFAULT_PIPELINE_OPTIONS,
    kind: 'pipeline',
    trigger: 'test',
    asOf: null,
    minPositives: 10,
    minNegatives: 10,
    training: {
      ...DEFAULT_PIPELINE_OPTIONS.training,
      algorithms: ['logistic'],
      epochs: 4,
      batchSize: 64,
      learningRate: 0.03,
      maxTrainingRows: 5000,
    },
    backend: 'auto',
    modelsDir: null,
    ...overrides,
  };
}

/** External ids of contact ids, sorted. */
export function refsOf(people: readonly Person[], ids: Iterable<number>): string[] {
  const byId = new Map(people.map((person) => [person.id, person.ref]));
  return [...ids].map((id) => byId.get(id) ?? `#${id}`).sort();
}
