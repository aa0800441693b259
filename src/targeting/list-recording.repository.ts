import { type Kysely, sql, type Transaction } from 'kysely';
import type { Database } from '../db/database.ts';
import { CURRENT_HASH_SCHEME, type ManifestHeader, manifestHashSql, memberHashSql } from './manifest.ts';
import { releaseSends } from './pressure.repository.ts';

/**
 * Numbers the selection in rank order and draws its holdout: the `holdoutCount` positions
 * whose SHA-256(seed ‖ position) are smallest, a uniformly random subset of that size that
 * anyone holding the seed can draw again. Returns the summed scores of the members to contact.
 */
export async function numberSelection(trx: Transaction<Database>, holdoutSeed: string | null, holdoutCount: number): Promise<number> {
  const draw =
    holdoutSeed === null
      ? sql`0`
      : sql`row_number() OVER (ORDER BY sha256(decode(${holdoutSeed}, 'hex') || int4send(position::int4)), position)`;
  const { rows } = await sql<{ contacted_scores: number }>`
    WITH positioned AS (
      SELECT contact_id, row_number() OVER (ORDER BY rank) AS position FROM list_selection
    ),
    drawn AS (
      SELECT contact_id, position, ${draw} AS draw FROM positioned
    ),
    numbered AS (
      UPDATE list_selection l SET position = d.position, is_holdout = (d.draw BETWEEN 1 AND ${holdoutCount})
      FROM drawn d WHERE l.contact_id = d.contact_id
      RETURNING l.score, l.is_holdout
    )
    SELECT coalesce(sum(score::float8) FILTER (WHERE NOT is_holdout), 0) AS contacted_scores FROM numbered`.execute(trx);
  return Number(rows[0]!.contacted_scores);
}

export interface NewList {
  header: ManifestHeader;
  apiKeyId: number | null;
  modelId: number;
  funnel: object;
}

/**
 * Records the list and its manifest in one statement: the members of list_selection as
 * arrays in list order with their hashes (scheme 2), and the manifest hash over the header
 * and those hashes, both computed by the database. Returns the manifest hash.
 */
export async function recordSelection(trx: Transaction<Database>, list: NewList): Promise<string> {
  const { header } = list;
  const { rows } = await sql<{ manifest_hash: string }>`
    WITH members AS (
      SELECT l.*, ${memberHashSql('l')} AS member_hash FROM list_selection l
    ),
    manifest AS (
      INSERT INTO target_export_manifests
        (export_id, hash_scheme, contact_ids, scores, ranks, percentiles, holdout, profiling_event_ids, channel_event_ids, member_hashes)
      SELECT ${header.exportId}::uuid, ${CURRENT_HASH_SCHEME},
             coalesce(array_agg(contact_id ORDER BY position), '{}'), coalesce(array_agg(score ORDER BY position), '{}'),
             coalesce(array_agg(rank ORDER BY position), '{}'), coalesce(array_agg(percentile ORDER BY position), '{}'),
             coalesce(array_agg(is_holdout ORDER BY position), '{}'),
             coalesce(array_agg(profiling_event_id ORDER BY position), '{}'), coalesce(array_agg(channel_event_id ORDER BY position), '{}'),
             coalesce(string_agg(member_hash, ''::bytea ORDER BY position), ''::bytea)
      FROM members
      RETURNING member_hashes
    )
    INSERT INTO target_exports
      (id, created_at, api_key_id, actor, model_id, model_version_id, score_set_id, channel, params, funnel,
       member_count, holdout_count, holdout_seed, manifest_hash, delivery)
    SELECT ${header.exportId}::uuid, ${new Date(header.createdAt)}::timestamptz, ${list.apiKeyId}, ${header.actor}, ${list.modelId},
           ${header.modelVersionId}, ${header.scoreSetId}, ${header.channel}, ${JSON.stringify(header.params)}::jsonb,
           ${JSON.stringify(list.funnel)}::jsonb, ${header.memberCount}, ${header.holdoutCount}, ${header.holdoutSeed},
           ${manifestHashSql(header, sql`manifest.member_hashes`)}, 'pending'
    FROM manifest
    RETURNING manifest_hash`.execute(trx);
  return rows[0]!.manifest_hash;
}

/** Marks a pending list delivered; false when it is not pending any more (released as undelivered meanwhile). */
export async function markDelivered(db: Kysely<Database>, exportId: string, now: Date): Promise<boolean> {
  const updated = await db
    .updateTable('target_exports')
    .set({ delivery: 'delivered', delivery_settled_at: now })
    .where('id', '=', exportId)
    .where('delivery', '=', 'pending')
    .returning('id')
    .execute();
  return updated.length > 0;
}

/**
 * Marks pending lists undelivered and releases their members from contact pressure: the lists
 * named, and any still pending from before `staleBefore` (their delivery never finished). The
 * members stay in the manifest: it records what was attempted.
 */
export async function releaseUndelivered(
  trx: Transaction<Database>,
  which: { exportId: string } | { staleBefore: Date },
  now: Date,
): Promise<string[]> {
  const released = await trx
    .updateTable('target_exports')
    .set({ delivery: 'undelivered', delivery_settled_at: now })
    .where('delivery', '=', 'pending')
    .where((eb) => ('exportId' in which ? eb('id', '=', which.exportId) : eb('created_at', '<', which.staleBefore)))
    .returning('id')
    .execute();
  const ids = released.map((row) => row.id);
  await releaseSends(trx, ids);
  return ids;
}
