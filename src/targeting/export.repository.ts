import { type Kysely, sql, type Transaction } from 'kysely';
import type { Database } from '../db/database.ts';
import type { ListDelivery } from './export.table.ts';
import type { ManifestHeader, ManifestMember } from './manifest.ts';

export interface ExportMemberRecord extends ManifestMember {
  externalId: string | null;
  contactValue: string | null;
  memberHash: string;
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
