import { type Kysely, sql } from 'kysely';
import { contactValueOf, objectionStandsAgainst, stateCountsAt } from '../consent/eligibility.ts';
import type { Database } from '../db/database.ts';
import type { ScoreReason } from '../scores/score.table.ts';

// Everything held about one person, section by section, in the shape the access report shows.
// Sections kept per record (ledger, purchases, contact details) take the person's record ids
// and say which record each row belongs to; per-person ones (consent state, scores) take the person id.

export interface ConsentEventRow {
  eventId: number;
  /** the record whose ledger holds the event */
  contactId: number;
  purpose: string;
  channel: string | null;
  status: string;
  capturedAt: Date;
  recordedAt: Date;
  source: string | null;
  method: string | null;
  methodIsExplicit: boolean | null;
  noticeVersion: string | null;
  evidenceRef: string | null;
  expiresAt: Date | null;
}

export function consentEventsOf(db: Kysely<Database>, contactIds: readonly number[]): Promise<ConsentEventRow[]> {
  return db
    .selectFrom('consent_events as e')
    .leftJoin('consent_methods as m', 'm.code', 'e.method')
    .select([
      'e.id as eventId',
      'e.contact_id as contactId',
      'e.purpose',
      'e.channel',
      'e.status',
      'e.captured_at as capturedAt',
      'e.recorded_at as recordedAt',
      'e.source',
      'e.method',
      'm.is_explicit as methodIsExplicit',
      'e.notice_version as noticeVersion',
      'e.evidence_ref as evidenceRef',
      'e.expires_at as expiresAt',
    ])
    .where('e.contact_id', 'in', contactIds)
    .orderBy('e.captured_at')
    .orderBy('e.id')
    .execute();
}

export interface ConsentStateRow {
  purpose: string;
  channel: string | null;
  eventId: number;
  /** the record whose event decides for the person */
  recordId: number;
  status: string;
  capturedAt: Date;
  expiresAt: Date | null;
  /** the consent counts at `now` and no objection stands against it: the gate's own rules (eligibility.ts) */
  validNow: boolean;
}

/**
 * The event in force for the person per purpose x channel (channel null: profiling, or an
 * objection to every channel), decided over all their records' events (consent_state).
 */
export async function consentStateOf(db: Kysely<Database>, personId: number, now: Date): Promise<ConsentStateRow[]> {
  const { rows } = await sql<Omit<ConsentStateRow, 'channel'> & { channel_key: string }>`
    SELECT s.purpose, s.channel_key, s.event_id AS "eventId", s.record_id AS "recordId", s.status, s.captured_at AS "capturedAt", s.expires_at AS "expiresAt",
           ${stateCountsAt(now, 's')} AND NOT EXISTS (
             SELECT 1 FROM consent_state o
             WHERE s.channel_key <> ''
               AND ${objectionStandsAgainst('o', { contactId: sql`s.contact_id`, purpose: sql`s.purpose`, capturedAt: sql`s.captured_at` })}
           ) AS "validNow"
    FROM consent_state s
    WHERE s.contact_id = ${personId}
    ORDER BY s.purpose, s.channel_key`.execute(db);
  return rows.map(({ channel_key, ...row }) => ({ ...row, channel: channel_key === '' ? null : channel_key }));
}

export interface PurchaseRow {
  /** the record the purchase was imported under */
  contactId: number;
  orderId: string;
  sku: string | null;
  productName: string | null;
  category: string | null;
  quantity: number;
  unitPrice: number;
  purchasedAt: Date;
}

export function purchasesOf(db: Kysely<Database>, contactIds: readonly number[]): Promise<PurchaseRow[]> {
  return db
    .selectFrom('purchases as p')
    .leftJoin('products as pr', 'pr.id', 'p.product_id')
    .select([
      'p.contact_id as contactId',
      'p.order_id as orderId',
      'pr.sku',
      'pr.name as productName',
      'pr.category',
      'p.quantity',
      'p.unit_price as unitPrice',
      'p.purchased_at as purchasedAt',
    ])
    .where('p.contact_id', 'in', contactIds)
    .orderBy('p.purchased_at')
    .orderBy('p.order_id')
    .execute();
}

export interface LiveScoreRow {
  modelId: number;
  targetKind: string;
  targetKey: string;
  modelVersion: number;
  algorithm: string;
  features: string[];
  horizonDays: number;
  scoredAt: Date;
  score: number;
  rank: number;
  percentile: number;
  reasons: ScoreReason[] | null;
}

/**
 * Scores in force (live score sets only), with what Art. 15 calls the logic involved: target,
 * features, reasons. `contactId` is the person (scores are kept per person).
 */
export function liveScoresOf(db: Kysely<Database>, contactId: number): Promise<LiveScoreRow[]> {
  return db
    .selectFrom('scores as s')
    .innerJoin('score_sets as ss', (join) => join.onRef('ss.id', '=', 's.score_set_id').on('ss.status', '=', 'live'))
    .innerJoin('models as m', 'm.id', 'ss.model_id')
    .innerJoin('model_versions as v', 'v.id', 'ss.model_version_id')
    .leftJoin('model_networks as n', 'n.id', 'v.network_id')
    .select([
      'm.id as modelId',
      'm.target_kind as targetKind',
      'm.target_key as targetKey',
      'v.version as modelVersion',
      'v.algorithm',
      'v.feature_list as features',
      'v.horizon_days as horizonDays',
      'ss.scored_at as scoredAt',
      's.score',
      's.rank',
      's.percentile',
      // reason codes name the network's explanation groups
      sql<ScoreReason[]>`(
        SELECT coalesce(jsonb_agg(jsonb_build_object(
          'feature', coalesce(n.metadata -> 'explanationGroups', v.metrics -> 'explanationGroups') ->> r.code, 'contribution', r.contribution) ORDER BY r.position), '[]'::jsonb)
        FROM (VALUES (1, s.reason_1::int, s.contribution_1), (2, s.reason_2::int, s.contribution_2), (3, s.reason_3::int, s.contribution_3))
          AS r (position, code, contribution)
        WHERE r.code IS NOT NULL)`.as('reasons'),
    ])
    .where('s.contact_id', '=', contactId)
    .orderBy('m.id')
    .execute();
}

export interface ExportAppearanceRow {
  exportId: string;
  exportedAt: Date;
  channel: string;
  modelId: number;
  position: number;
  isHoldout: boolean;
  contactValue: string | null;
  score: number;
  rank: number;
  consentEventIds: number[];
}

/**
 * The lists the person was in, found through the manifests' GIN index on contact ids: a manifest
 * names the person by the id they had when it was written (a record id before their records
 * were linked), so any of the person's record ids is looked for. Their place, score and consent
 * events are read from the manifest arrays at that position; the contact value is the detail of
 * the record whose channel consent made them eligible (the ledger says whose event it is), read
 * now (manifests hold none). A person twice in one list (never written so) would show once per position.
 */
export async function exportsOf(db: Kysely<Database>, contactIds: readonly number[]): Promise<ExportAppearanceRow[]> {
  const channels = await db.selectFrom('channels').select(['code', 'contact_field']).execute();
  if (channels.length === 0 || contactIds.length === 0) return [];
  const contactValue = sql`CASE e.channel ${sql.join(
    channels.map((channel) => sql`WHEN ${channel.code} THEN ${contactValueOf(channel.contact_field)}`),
    sql` `,
  )} END`;
  const ids = sql`ARRAY[${sql.join(contactIds.map((id) => sql`${id}::bigint`))}]`;
  const { rows } = await sql<ExportAppearanceRow>`
    SELECT e.id AS "exportId", e.created_at AS "exportedAt", e.channel, e.model_id AS "modelId",
           p.position::int AS position, m.holdout[p.position] AS "isHoldout",
           CASE WHEN c.erased_at IS NULL THEN ${contactValue} END AS "contactValue",
           m.scores[p.position] AS score, m.ranks[p.position] AS rank,
           array_remove(ARRAY[m.profiling_event_ids[p.position], m.channel_event_ids[p.position]], NULL) AS "consentEventIds"
    FROM target_export_manifests m
    JOIN target_exports e ON e.id = m.export_id
    CROSS JOIN LATERAL unnest(m.contact_ids) WITH ORDINALITY AS p (contact_id, position)
    CROSS JOIN LATERAL (
      SELECT coalesce((SELECT ce.contact_id FROM consent_events ce WHERE ce.id = m.channel_event_ids[p.position]), p.contact_id) AS id
    ) r
    JOIN contacts c ON c.id = r.id
    LEFT JOIN contact_personal_data d ON d.contact_id = r.id
    WHERE m.contact_ids && ${ids} AND p.contact_id = ANY(${ids})
    ORDER BY e.created_at, e.id, p.position`.execute(db);
  return rows;
}

export interface OppositionMatchRow {
  /** the record whose email or phone is on the list */
  contactId: number;
  listName: string;
  channel: string;
  /** the list's publication day, YYYY-MM-DD */
  listDate: string;
  matchedOn: 'email' | 'phone';
}

/** Opposition lists (Bloctel, suppression lists) the email or phone of one of the records is on: also data held about them. */
export async function oppositionListsOf(db: Kysely<Database>, contactIds: readonly number[]): Promise<OppositionMatchRow[]> {
  if (contactIds.length === 0) return [];
  const { rows } = await sql<OppositionMatchRow>`
    SELECT d.contact_id AS "contactId", l.name AS "listName", l.channel, l.list_date::text AS "listDate",
           CASE WHEN e.value_hash = d.email_hash THEN 'email' ELSE 'phone' END AS "matchedOn"
    FROM contact_personal_data d
    JOIN opposition_entries e ON e.value_hash IN (d.email_hash, d.phone_hash)
    JOIN opposition_lists l ON l.id = e.list_id
    WHERE d.contact_id IN (${sql.join(contactIds)})
    ORDER BY l.name, d.contact_id`.execute(db);
  return rows;
}
