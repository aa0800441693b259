import { type Kysely, sql, type Transaction } from 'kysely';
import type { Database } from '../db/database.ts';
import type { ListDelivery } from './export.table.ts';
import type { ManifestHeader, ManifestMember } from './manifest.ts';

export interface ExportMemberRecord extends ManifestMember {
  externalId: string | null;
  contactValue: string | null;
  memberHash: string;
}

export interface NewExport {
  header: ManifestHeader;
  apiKeyId: number | null;
  modelId: number;
  funnel: object;
  manifestHash: string;
  members: ExportMemberRecord[];
}

/** The export, pending delivery, and its members, in the caller's transaction; members go in as one JSON text. */
export async function insertExport(trx: Transaction<Database>, record: NewExport): Promise<void> {
  const { header, members } = record;
  await trx
    .insertInto('target_exports')
    .values({
      id: header.exportId,
      created_at: new Date(header.createdAt),
      api_key_id: record.apiKeyId,
      actor: header.actor,
      model_id: record.modelId,
      model_version_id: header.modelVersionId,
      score_set_id: header.scoreSetId,
      channel: header.channel,
      params: JSON.stringify(header.params),
      funnel: JSON.stringify(record.funnel),
      member_count: header.memberCount,
      holdout_count: header.holdoutCount,
      holdout_seed: header.holdoutSeed,
      manifest_hash: record.manifestHash,
      delivery: 'pending',
    })
    .execute();
  if (members.length === 0) return;
  // one JSON text parameter: much cheaper to send than eleven arrays of 100,000 values each
  const rows = JSON.stringify(
    members.map((m) => [
      m.position,
      m.contactId,
      m.externalId,
      m.contactValue,
      m.score,
      m.rank,
      m.percentile,
      m.isHoldout,
      m.consentEventIds,
      m.memberHash,
    ]),
  );
  await sql`
    INSERT INTO target_export_members
      (export_id, position, contact_id, exported_at, external_id, contact_value, score, rank, percentile, is_holdout, consent_event_ids, member_hash)
    SELECT ${header.exportId}::uuid, (m ->> 0)::int, (m ->> 1)::bigint, ${new Date(header.createdAt)}::timestamptz, m ->> 2, m ->> 3,
           (m ->> 4)::real, (m ->> 5)::int, (m ->> 6)::real, (m ->> 7)::boolean,
           ARRAY(SELECT jsonb_array_elements_text(m -> 8)::bigint), m ->> 9
    FROM jsonb_array_elements(${rows}::jsonb) AS m`.execute(trx);
}

export interface StoredExport {
  header: ManifestHeader;
  apiKeyId: number | null;
  modelId: number;
  funnel: Record<string, number>;
  manifestHash: string;
  delivery: ListDelivery;
  deliverySettledAt: string | null;
}

export async function exportById(db: Kysely<Database>, exportId: string): Promise<StoredExport | null> {
  const row = await db.selectFrom('target_exports').selectAll().where('id', '=', exportId).executeTakeFirst();
  if (!row) return null;
  return {
    header: {
      exportId: row.id,
      createdAt: new Date(row.created_at).toISOString(),
      actor: row.actor,
      modelVersionId: Number(row.model_version_id),
      scoreSetId: Number(row.score_set_id),
      channel: row.channel,
      params: row.params,
      memberCount: row.member_count,
      holdoutCount: row.holdout_count,
      holdoutSeed: row.holdout_seed,
    },
    apiKeyId: row.api_key_id === null ? null : Number(row.api_key_id),
    modelId: Number(row.model_id),
    funnel: row.funnel,
    manifestHash: row.manifest_hash,
    delivery: row.delivery,
    deliverySettledAt: row.delivery_settled_at === null ? null : new Date(row.delivery_settled_at).toISOString(),
  };
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
  if (ids.length > 0) {
    await trx
      .updateTable('target_export_members')
      .set({ released: true })
      .where('export_id', 'in', ids)
      .where('is_holdout', '=', false)
      .execute();
  }
  return ids;
}

/** Members in list order; external id and contact value are null once the person was erased. */
export async function exportMembers(db: Kysely<Database>, exportId: string): Promise<ExportMemberRecord[]> {
  const rows = await db.selectFrom('target_export_members').selectAll().where('export_id', '=', exportId).orderBy('position').execute();
  return rows.map((row) => ({
    position: row.position,
    contactId: Number(row.contact_id),
    score: row.score,
    rank: row.rank,
    percentile: row.percentile,
    isHoldout: row.is_holdout,
    consentEventIds: row.consent_event_ids.map(Number),
    externalId: row.external_id,
    contactValue: row.contact_value,
    memberHash: row.member_hash,
  }));
}
