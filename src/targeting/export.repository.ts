import { type Kysely, type RawBuilder, sql } from 'kysely';
import { contactValueOf } from '../consent/eligibility.ts';
import type { Database } from '../db/database.ts';
import type { ListDelivery } from './export.table.ts';
import type { HashScheme, ManifestHeader, ManifestMember } from './manifest.ts';

export interface ExportMemberRecord extends ManifestMember {
  externalId: string | null;
  contactValue: string | null;
  memberHash: string;
}

export interface StoredExport {
  header: ManifestHeader;
  /** how its member hashes were computed (manifest.ts); a list recorded with no member has no manifest row: 1 */
  hashScheme: HashScheme;
  apiKeyId: number | null;
  modelId: number;
  funnel: Record<string, number>;
  manifestHash: string;
  delivery: ListDelivery;
  deliverySettledAt: string | null;
}

export async function exportById(db: Kysely<Database>, exportId: string): Promise<StoredExport | null> {
  const row = await db
    .selectFrom('target_exports as e')
    .leftJoin('target_export_manifests as m', 'm.export_id', 'e.id')
    .selectAll('e')
    .select('m.hash_scheme')
    .where('e.id', '=', exportId)
    .executeTakeFirst();
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
    hashScheme: row.hash_scheme ?? 1,
    apiKeyId: row.api_key_id === null ? null : Number(row.api_key_id),
    modelId: Number(row.model_id),
    funnel: row.funnel,
    manifestHash: row.manifest_hash,
    delivery: row.delivery,
    deliverySettledAt: row.delivery_settled_at === null ? null : new Date(row.delivery_settled_at).toISOString(),
  };
}

/**
 * The record a member is reached through, as `c` (contacts) and `d` (its personal data), over the
 * unnested manifest `u`: a member is a person (u.contact_id, the primary record's id), and the
 * contact detail and external id shown are those of the record whose channel consent counted
 * (the record of the member's channel consent event), not necessarily the primary record's. A
 * member recorded without a channel event (a list converted from the old lines) falls back to
 * the primary record.
 */
function memberRecordJoins(): RawBuilder<unknown> {
  return sql`LEFT JOIN consent_events ce ON ce.id = u.channel_event_id
    LEFT JOIN contacts c ON c.id = coalesce(ce.contact_id, u.contact_id)
    LEFT JOIN contact_personal_data d ON d.contact_id = c.id`;
}

/**
 * The members of a list in list order, one row each: the manifest arrays unnested, the stored
 * hash of each member cut from member_hashes, and who they are now when `contactField` (the
 * channel's) is given. Measured on 100,000 members: one row per member read faster than the
 * arrays read once and zipped here (pg parses large array texts slowly).
 */
function memberRows(exportId: string, contactField: string | null) {
  const identity =
    contactField === null
      ? sql`NULL::text AS external_id, NULL::text AS contact_value`
      : sql`CASE WHEN c.erased_at IS NULL THEN c.external_id END AS external_id,
            CASE WHEN c.erased_at IS NULL THEN ${contactValueOf(contactField)} END AS contact_value`;
  const joins = contactField === null ? sql`` : memberRecordJoins();
  return sql<MemberRow>`
    SELECT m.hash_scheme, u.position::int AS position, u.contact_id, u.score, u.rank, u.percentile, u.is_holdout,
           u.profiling_event_id, u.channel_event_id,
           encode(substring(m.member_hashes from (u.position::int - 1) * 32 + 1 for 32), 'hex') AS member_hash, ${identity}
    FROM target_export_manifests m
    CROSS JOIN LATERAL unnest(m.contact_ids, m.scores, m.ranks, m.percentiles, m.holdout, m.profiling_event_ids, m.channel_event_ids)
      WITH ORDINALITY AS u (contact_id, score, rank, percentile, is_holdout, profiling_event_id, channel_event_id, position)
    ${joins}
    WHERE m.export_id = ${exportId}::uuid
    ORDER BY u.position`;
}

interface MemberRow {
  hash_scheme: HashScheme;
  position: number;
  contact_id: number;
  score: number;
  rank: number;
  percentile: number;
  is_holdout: boolean;
  profiling_event_id: number | null;
  channel_event_id: number | null;
  member_hash: string;
  external_id: string | null;
  contact_value: string | null;
}

function memberRecord(row: MemberRow): ExportMemberRecord {
  return {
    position: row.position,
    contactId: Number(row.contact_id),
    score: row.score,
    rank: row.rank,
    percentile: row.percentile,
    isHoldout: row.is_holdout,
    // a list converted from the old lines may lack the channel event: its old line had one id only
    consentEventIds: [row.profiling_event_id, row.channel_event_id].filter((id) => id !== null).map(Number),
    externalId: row.external_id,
    contactValue: row.contact_value,
    memberHash: row.member_hash,
  };
}

/**
 * Members in list order; external id and contact value are read now from the record whose channel
 * consent counted for the member (memberRecordJoins), null once the person was erased.
 */
export async function exportMembers(db: Kysely<Database>, exportId: string): Promise<ExportMemberRecord[]> {
  const channel = await db
    .selectFrom('target_exports as e')
    .innerJoin('channels as ch', 'ch.code', 'e.channel')
    .select('ch.contact_field')
    .where('e.id', '=', exportId)
    .executeTakeFirst();
  if (!channel) return [];
  const { rows } = await memberRows(exportId, channel.contact_field).execute(db);
  return rows.map(memberRecord);
}

/** What the hashes cover, member by member in list order, with the scheme and the stored member hash; no identity. */
export async function manifestLines(
  db: Kysely<Database>,
  exportId: string,
): Promise<{ hashScheme: HashScheme; members: Array<ManifestMember & { memberHash: string }> }> {
  const { rows } = await memberRows(exportId, null).execute(db);
  return {
    hashScheme: rows[0]?.hash_scheme ?? 1,
    members: rows.map((row) => {
      const { externalId: _externalId, contactValue: _contactValue, ...member } = memberRecord(row);
      return member;
    }),
  };
}

/** Members of the list whose person is erased now (or whose contact is gone). */
export async function erasedMemberCount(db: Kysely<Database>, exportId: string): Promise<number> {
  const { rows } = await sql<{ erased: number }>`
    SELECT count(*)::int AS erased
    FROM target_export_manifests m
    CROSS JOIN LATERAL unnest(m.contact_ids) AS u (contact_id)
    LEFT JOIN contacts c ON c.id = u.contact_id
    WHERE m.export_id = ${exportId}::uuid AND (c.id IS NULL OR c.erased_at IS NOT NULL)`.execute(db);
  return rows[0]?.erased ?? 0;
}

/** One member of a list as CSV and JSON answers give it (manifestMembersQuery). */
export interface ManifestMemberRow {
  position: number;
  contact_id: number;
  external_id: string | null;
  contact: string | null;
  score: number;
  percentile: number;
  rank: number;
  is_holdout: boolean;
  profiling_event_id: number | null;
  channel_event_id: number | null;
  /** codes into the network's explanation groups, strongest first; null once the score is gone (erased) */
  reason_1: number | null;
  reason_2: number | null;
  reason_3: number | null;
  contribution_1: number | null;
  contribution_2: number | null;
  contribution_3: number | null;
}

/**
 * A list's members with who they are now (null once erased) and their score reasons, contacts
 * first then the holdout, each in list order. `contactField` is the list channel's
 * channels.contact_field. The score set is read first as a scalar so that only its partition of
 * scores is probed.
 */
export function manifestMembersQuery(exportId: string, contactField: string): RawBuilder<ManifestMemberRow> {
  return sql<ManifestMemberRow>`
    SELECT u.position::int AS position, u.contact_id,
           CASE WHEN c.erased_at IS NULL THEN c.external_id END AS external_id,
           CASE WHEN c.erased_at IS NULL THEN ${contactValueOf(contactField)} END AS contact,
           u.score, u.percentile, u.rank, u.is_holdout, u.profiling_event_id, u.channel_event_id,
           s.reason_1::int AS reason_1, s.reason_2::int AS reason_2, s.reason_3::int AS reason_3,
           s.contribution_1, s.contribution_2, s.contribution_3
    FROM target_export_manifests m
    CROSS JOIN LATERAL unnest(m.contact_ids, m.scores, m.ranks, m.percentiles, m.holdout, m.profiling_event_ids, m.channel_event_ids)
      WITH ORDINALITY AS u (contact_id, score, rank, percentile, is_holdout, profiling_event_id, channel_event_id, position)
    ${memberRecordJoins()}
    LEFT JOIN scores s ON s.score_set_id = (SELECT e.score_set_id FROM target_exports e WHERE e.id = ${exportId}::uuid)
      AND s.contact_id = u.contact_id
    WHERE m.export_id = ${exportId}::uuid
    ORDER BY u.is_holdout, u.position`;
}
