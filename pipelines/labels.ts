import { type Kysely, sql } from 'kysely';
import type { Database } from '../src/db/database.ts';
import type { FeatureMatrix } from './features.ts';
import { type Target, windowEnd } from './targets.ts';

/**
 * Stage 3: what each row of a feature matrix really did in [cutoff, cutoff + horizon):
 * rows x targets, 1 when the person bought the target in that window on any of their records
 * (the rows are person ids: the primary record's id).
 */
export async function computeLabels(db: Kysely<Database>, matrix: FeatureMatrix, targets: readonly Target[]): Promise<Uint8Array> {
  const labels = new Uint8Array(matrix.rows * targets.length);
  if (matrix.rows === 0) return labels;
  const end = windowEnd(matrix.cutoff, matrix.horizonDays);
  const anyIndex = targets.findIndex((target) => target.kind === 'any');
  const products = targets.flatMap((target, index) => (target.kind === 'product' ? [[target.productId as number, index] as const] : []));
  const categories = targets.flatMap((target, index) => (target.kind === 'category' ? [[target.category as string, index] as const] : []));
  const ids = matrix.contactIds;
  const { rows } = await sql<{ packed: Buffer | null }>`
    WITH bought AS (
      SELECT DISTINCT rc.person_id AS contact_id, p.product_id, pr.category
      FROM contacts rc JOIN purchases p ON p.contact_id = rc.id JOIN products pr ON pr.id = p.product_id
      WHERE p.purchased_at >= ${matrix.cutoff} AND p.purchased_at < ${end}
        AND rc.person_id BETWEEN ${ids[0] as number} AND ${ids[ids.length - 1] as number}
        AND NOT (pr.category = ANY(${matrix.layout.specialCategories}::text[]))
    ),
    pairs AS (
      SELECT DISTINCT contact_id, ${anyIndex}::int AS target FROM bought WHERE ${anyIndex} >= 0
      UNION
      SELECT b.contact_id, t.target FROM bought b
      JOIN unnest(${products.map(([id]) => id)}::bigint[], ${products.map(([, index]) => index)}::int[]) AS t (product_id, target)
        ON t.product_id = b.product_id
      UNION
      SELECT b.contact_id, t.target FROM bought b
      JOIN unnest(${categories.map(([category]) => category)}::text[], ${categories.map(([, index]) => index)}::int[]) AS t (category, target)
        ON t.category = b.category
    )
    SELECT string_agg(int8send(contact_id) || int4send(target), ''::bytea) AS packed FROM pairs`.execute(db);
  const packed = rows[0]?.packed ?? Buffer.alloc(0);
  for (let offset = 0; offset < packed.length; offset += 12) {
    const row = rowOf(ids, Number(packed.readBigInt64BE(offset)));
    if (row >= 0) labels[row * targets.length + packed.readInt32BE(offset + 8)] = 1;
  }
  return labels;
}

/** Binary search in the sorted contact ids; -1 when the contact is not a row (not in the population). */
export function rowOf(sortedIds: Float64Array, contactId: number): number {
  let low = 0;
  let high = sortedIds.length - 1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    const value = sortedIds[middle] as number;
    if (value === contactId) return middle;
    if (value < contactId) low = middle + 1;
    else high = middle - 1;
  }
  return -1;
}
