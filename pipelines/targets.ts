import { type Kysely, sql } from 'kysely';
import type { Database } from '../src/db/database.ts';
import { isSpecialCategory } from './feature-spec.ts';

export type TargetKind = 'any' | 'category' | 'product';

/** What a model predicts: a purchase of anything, of a category, or of one product, within the horizon. */
export interface Target {
  kind: TargetKind;
  key: string;
  productId: number | null;
  category: string | null;
}

export interface TargetCandidate extends Target {
  /** people of the window's population who bought the target in the window, per window */
  positives: number[];
  population: number[];
  eligible: boolean;
  reason: string | null;
}

/**
 * The catalogue's categories split once into exact names: those whose purchases are
 * special-category data (by the configured list or their words) and the others. Every SQL
 * stage then excludes exactly the same categories.
 */
export async function classifyCategories(
  db: Kysely<Database>,
  configuredSpecial: readonly string[],
): Promise<{ allowed: string[]; special: string[] }> {
  const { rows } = await sql<{ category: string }>`SELECT DISTINCT category FROM products ORDER BY category`.execute(db);
  const all = rows.map((row) => row.category);
  return {
    allowed: all.filter((category) => !isSpecialCategory(category, configuredSpecial)),
    special: all.filter((category) => isSpecialCategory(category, configuredSpecial)),
  };
}

export interface LabelWindow {
  /** the cutoff: features before it, labels in [cutoff, cutoff + horizon) */
  cutoff: Date;
  horizonDays: number;
}

/** The end (exclusive) of the label window that starts at `cutoff`. */
export function windowEnd(cutoff: Date, horizonDays: number): Date {
  return new Date(cutoff.getTime() + horizonDays * 86_400_000);
}

export interface TargetRules {
  minPositives: number;
  minNegatives: number;
  /** SKUs asked for; null means every product */
  products: string[] | null;
  /** exact category names whose purchases are special-category data (see feature-spec.ts) */
  specialCategories: string[];
}

/**
 * Counts buyers of every product and category in each window and keeps the targets with
 * enough positives and negatives in all of them (the windows a model trains and is judged on).
 */
export async function selectTargets(
  db: Kysely<Database>,
  runId: number,
  windows: readonly LabelWindow[],
  rules: TargetRules,
): Promise<TargetCandidate[]> {
  const counts = new Map<string, TargetCandidate>();
  for (const [index, window] of windows.entries()) {
    const end = windowEnd(window.cutoff, window.horizonDays);
    const { rows } = await sql<{
      kind: TargetKind;
      key: string;
      product_id: number | null;
      category: string | null;
      buyers: number;
      population: number;
    }>`
      WITH population AS (
        SELECT contact_id FROM profiling_snapshots WHERE run_id = ${runId} AND known_since < ${window.cutoff}
      ),
      bought AS (
        SELECT DISTINCT pop.contact_id, p.product_id, pr.sku, pr.category
        FROM population pop JOIN contacts rc ON rc.person_id = pop.contact_id
        JOIN purchases p ON p.contact_id = rc.id JOIN products pr ON pr.id = p.product_id
        WHERE p.purchased_at >= ${window.cutoff} AND p.purchased_at < ${end}
          AND NOT (pr.category = ANY(${rules.specialCategories}::text[]))
      ),
      size AS (SELECT count(*)::int AS population FROM population)
      SELECT 'any' AS kind, 'any' AS key, NULL::bigint AS product_id, NULL AS category,
        count(DISTINCT contact_id)::int AS buyers, (SELECT population FROM size) AS population FROM bought
      UNION ALL
      SELECT 'category', category, NULL, category, count(DISTINCT contact_id)::int, (SELECT population FROM size)
      FROM bought GROUP BY category
      UNION ALL
      SELECT 'product', sku, product_id, category, count(DISTINCT contact_id)::int, (SELECT population FROM size)
      FROM bought GROUP BY product_id, sku, category`.execute(db);
    for (const row of rows) {
      const id = `${row.kind}:${row.key}`;
      let candidate = counts.get(id);
      if (!candidate) {
        candidate = {
          kind: row.kind,
          key: row.key,
          productId: row.product_id,
          category: row.category,
          positives: windows.map(() => 0),
          population: windows.map(() => 0),
          eligible: false,
          reason: null,
        };
        counts.set(id, candidate);
      }
      candidate.positives[index] = row.buyers;
      candidate.population[index] = row.population;
    }
  }
  const wanted = rules.products ? new Set(rules.products) : null;
  const candidates = [...counts.values()].filter((candidate) => candidate.kind !== 'product' || !wanted || wanted.has(candidate.key));
  for (const candidate of candidates) {
    const shortOfPositives = candidate.positives.findIndex((positives) => positives < rules.minPositives);
    const shortOfNegatives = candidate.population.findIndex((size, index) => size - (candidate.positives[index] ?? 0) < rules.minNegatives);
    if (shortOfPositives >= 0) {
      candidate.reason = `${candidate.positives[shortOfPositives]} buyers in the window from ${isoDay(windows[shortOfPositives]!.cutoff)}, fewer than ${rules.minPositives}`;
    } else if (shortOfNegatives >= 0) {
      candidate.reason = `fewer than ${rules.minNegatives} non-buyers in the window from ${isoDay(windows[shortOfNegatives]!.cutoff)}`;
    }
    candidate.eligible = candidate.reason === null;
  }
  return candidates.sort(byTargetOrder);
}

const KIND_ORDER: Record<TargetKind, number> = { any: 0, category: 1, product: 2 };

function byTargetOrder(a: Target, b: Target): number {
  return KIND_ORDER[a.kind] - KIND_ORDER[b.kind] || a.key.localeCompare(b.key);
}

export function targetId(target: Target): string {
  return `${target.kind}:${target.key}`;
}

function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}
