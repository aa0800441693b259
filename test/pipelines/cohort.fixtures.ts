import { sql } from 'kysely';
import { mulberry32 } from '../../models/random.ts';
import { sha256Hex } from '../../src/contacts/identity.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { DAY_MS, insertPurchases, type PurchaseRow } from './pipeline.fixtures.ts';

/*
 * A generated base whose future the test knows: each customer arrives (first purchase) at a
 * random instant of the acquisition window, then buys at a personal rate λ ~ Gamma(r, α) and,
 * after each purchase, drops out for good with a personal probability p ~ Beta(a, b): the
 * BG/NBD process (Fader, Hardie & Lee 2005). Every purchase is one box of the same product.
 * Purchases before `end` are written to the database; those in [end, end + futureDays) are
 * only returned: the window a model is judged on.
 */

export const COHORT_SKU = 'CO-BOX';

export interface CohortOptions {
  seed: number;
  customers: number;
  /** the customers arrive in [acquisitionFrom, acquisitionTo) */
  acquisitionFrom: Date;
  acquisitionTo: Date;
  /** the database holds purchases before this instant (the run's as-of) */
  end: Date;
  futureDays: number;
  /** BG/NBD-like parameters: purchase rate per day λ ~ Gamma(shape r, rate α), dropout p ~ Beta(a, b) */
  process?: { r: number; alpha: number; a: number; b: number };
}

export interface Cohort {
  contactIds: number[];
  /** per contact: did they buy in [end, end + futureDays) */
  future: Map<number, boolean>;
  /** per contact: purchase instants before end (ms) */
  history: Map<number, number[]>;
  purchases: number;
}

function gamma(random: () => number, shape: number): number {
  // Marsaglia & Tsang; shape < 1 boosted by U^(1/shape)
  if (shape < 1) return gamma(random, shape + 1) * random() ** (1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = random();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Each customer's purchase instants (ms) up to end + futureDays. */
export function cohortPurchases(options: CohortOptions): number[][] {
  const random = mulberry32(options.seed);
  const { r, alpha, a, b } = options.process ?? { r: 1.2, alpha: 50, a: 0.8, b: 5 };
  const horizonEnd = options.end.getTime() + options.futureDays * DAY_MS;
  const from = options.acquisitionFrom.getTime();
  const span = options.acquisitionTo.getTime() - from;
  return Array.from({ length: options.customers }, () => {
    const rate = gamma(random, r) / alpha;
    const ga = gamma(random, a);
    const dropout = ga / (ga + gamma(random, b));
    let at = from + random() * span;
    const times: number[] = [];
    for (;;) {
      times.push(at);
      if (random() < dropout) return times;
      at += (-Math.log(1 - random()) / rate) * DAY_MS;
      if (at >= horizonEnd) return times;
    }
  });
}

/** Inserts the product, the customers (emails, profiling and email consents before they arrive) and their purchases before `end`. */
export async function seedCohort(database: DatabaseHandle, options: CohortOptions): Promise<Cohort> {
  const { db } = database;
  const product = await db
    .insertInto('products')
    .values({ sku: COHORT_SKU, name: 'Monthly box', category: 'boxes' })
    .returning('id')
    .executeTakeFirstOrThrow();
  const consentAt = new Date(options.acquisitionFrom.getTime() - 10 * DAY_MS);
  const refs = Array.from({ length: options.customers }, (_, i) => `CO-${options.seed}-${String(i + 1).padStart(5, '0')}`);
  const contacts = await db
    .insertInto('contacts')
    .values(refs.map((ref) => ({ external_id: ref, created_at: consentAt })))
    .returning(['id', 'external_id'])
    .execute();
  const idOf = new Map(contacts.map((row) => [row.external_id as string, Number(row.id)]));
  const contactIds = refs.map((ref) => idOf.get(ref) as number);
  await db
    .insertInto('contact_personal_data')
    .values(
      refs.map((ref) => {
        const email = `${ref.toLowerCase()}@example.com`;
        return { contact_id: idOf.get(ref) as number, email, email_hash: sha256Hex(email), country: 'FR' };
      }),
    )
    .execute();
  const event = (contactId: number, purpose: string, channel: string | null, method: string) => ({
    contact_id: contactId,
    purpose,
    channel,
    status: 'granted' as const,
    captured_at: consentAt,
    source: 'web:account-form',
    method,
    notice_version: 'privacy-v2',
    evidence_ref: `ev-${contactId}`,
    expires_at: null,
    import_id: null,
  });
  await db
    .insertInto('consent_events')
    .values(
      contactIds.flatMap((id) => [
        event(id, 'direct_marketing', 'email', 'double_opt_in'),
        event(id, 'profiling', null, 'explicit_checkbox'),
      ]),
    )
    .execute();

  const end = options.end.getTime();
  const horizonEnd = end + options.futureDays * DAY_MS;
  const rows: PurchaseRow[] = [];
  const future = new Map<number, boolean>();
  const history = new Map<number, number[]>();
  cohortPurchases(options).forEach((times, index) => {
    const contactId = contactIds[index] as number;
    const before = times.filter((at) => at < end);
    history.set(contactId, before);
    future.set(
      contactId,
      times.some((at) => at >= end && at < horizonEnd),
    );
    for (const [k, at] of before.entries()) {
      rows.push({
        order_id: `CO-${options.seed}-${index}-${k}`,
        product_id: Number(product.id),
        contact_id: contactId,
        quantity: 1,
        unit_price: 30,
        purchased_at: new Date(Math.floor(at / 1000) * 1000),
      });
    }
  });
  for (let start = 0; start < rows.length; start += 20_000) await insertPurchases(database, rows.slice(start, start + 20_000));
  await sql`ANALYZE purchases`.execute(db);
  return { contactIds, future, history, purchases: rows.length };
}
