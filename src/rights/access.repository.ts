import { type Kysely, sql } from 'kysely';
import { contactValueOf, objectionStandsAgainst, stateCountsAt } from '../consent/eligibility.ts';
import type { Database } from '../db/database.ts';
import type { ScoreReason } from '../scores/score.table.ts';

// Everything held about one contact, section by section, in the shape the access report shows.

export interface ConsentEventRow {
  eventId: number;
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

export function consentEventsOf(db: Kysely<Database>, contactId: number): Promise<ConsentEventRow[]> {
  return db
    .selectFrom('consent_events as e')
    .leftJoin('consent_methods as m', 'm.code', 'e.method')
    .select([
      'e.id as eventId',
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
    .where('e.contact_id', '=', contactId)
    .orderBy('e.captured_at')
    .orderBy('e.id')
    .execute();
}

export interface ConsentStateRow {
  purpose: string;
  channel: string | null;
  eventId: number;
  status: string;
  capturedAt: Date;
  expiresAt: Date | null;
  /** the consent counts at `now` and no objection stands against it: the gate's own rules (eligibility.ts) */
  validNow: boolean;
}

/** The event in force per purpose x channel (channel null: profiling, or an objection to every channel). */
export async function consentStateOf(db: Kysely<Database>, contactId: number, now: Date): Promise<ConsentStateRow[]> {
  const { rows } = await sql<Omit<ConsentStateRow, 'channel'> & { channel_key: string }>`
    SELECT s.purpose, s.channel_key, s.event_id AS "eventId", s.status, s.captured_at AS "capturedAt", s.expires_at AS "expiresAt",
           ${stateCountsAt(now, 's')} AND NOT EXISTS (
             SELECT 1 FROM consent_state o
             WHERE s.channel_key <> ''
               AND ${objectionStandsAgainst('o', { contactId: sql`s.contact_id`, purpose: sql`s.purpose`, capturedAt: sql`s.captured_at` })}
           ) AS "validNow"
    FROM consent_state s
    WHERE s.contact_id = ${contactId}
    ORDER BY s.purpose, s.channel_key`.execute(db);
  return rows.map(({ channel_key, ...row }) => ({ ...row, channel: channel_key === '' ? null : channel_key }));
}

export interface PurchaseRow {
  orderId: string;
  sku: string | null;
  productName: string | null;
  category: string | null;
  quantity: number;
  unitPrice: number;
  purchasedAt: Date;
}

export function purchasesOf(db: Kysely<Database>, contactId: number): Promise<PurchaseRow[]> {
  return db
    .selectFrom('purchases as p')
    .leftJoin('products as pr', 'pr.id', 'p.product_id')
    .select([
      'p.order_id as orderId',
      'pr.sku',
      'pr.name as productName',
      'pr.category',
      'p.quantity',
      'p.unit_price as unitPrice',
      'p.purchased_at as purchasedAt',
    ])
    .where('p.contact_id', '=', contactId)
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

/** Scores in force (live score sets only), with what Art. 15 calls the logic involved: target, features, reasons. */
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
 * The lists the person was in, found through the manifests' GIN index on contact ids; their
 * place, score and consent events read from the manifest arrays at the person's position. A
 * person twice in one list (never written so) would show once per position.
 */
export async function exportsOf(db: Kysely<Database>, contactId: number): Promise<ExportAppearanceRow[]> {
  const channels = await db.selectFrom('channels').select(['code', 'contact_field']).execute();
  if (channels.length === 0) return [];
  // each list's contact value is the detail its channel reaches, read now (manifests hold none)
  const contactValue = sql`CASE e.channel ${sql.join(
    channels.map((channel) => sql`WHEN ${channel.code} THEN ${contactValueOf(channel.contact_field)}`),
    sql` `,
  )} END`;
  const { rows } = await sql<ExportAppearanceRow>`
    SELECT e.id AS "exportId", e.created_at AS "exportedAt", e.channel, e.model_id AS "modelId",
           p.position::int AS position, m.holdout[p.position] AS "isHoldout",
           CASE WHEN c.erased_at IS NULL THEN ${contactValue} END AS "contactValue",
           m.scores[p.position] AS score, m.ranks[p.position] AS rank,
           array_remove(ARRAY[m.profiling_event_ids[p.position], m.channel_event_ids[p.position]], NULL) AS "consentEventIds"
    FROM target_export_manifests m
    JOIN target_exports e ON e.id = m.export_id
    CROSS JOIN LATERAL unnest(m.contact_ids) WITH ORDINALITY AS p (contact_id, position)
    JOIN contacts c ON c.id = p.contact_id
    LEFT JOIN contact_personal_data d ON d.contact_id = p.contact_id
    WHERE m.contact_ids @> ARRAY[${contactId}]::bigint[] AND p.contact_id = ${contactId}
    ORDER BY e.created_at, e.id, p.position`.execute(db);
  return rows;
}

export interface OppositionMatchRow {
  listName: string;
  channel: string;
  /** the list's publication day, YYYY-MM-DD */
  listDate: string;
  matchedOn: 'email' | 'phone';
}

/** Opposition lists (Bloctel, suppression lists) the contact's email or phone is on: also data held about them. */
export async function oppositionListsOf(db: Kysely<Database>, contactId: number): Promise<OppositionMatchRow[]> {
  const { rows } = await sql<OppositionMatchRow>`
    SELECT l.name AS "listName", l.channel, l.list_date::text AS "listDate",
           CASE WHEN e.value_hash = d.email_hash THEN 'email' ELSE 'phone' END AS "matchedOn"
    FROM contact_personal_data d
    JOIN opposition_entries e ON e.value_hash IN (d.email_hash, d.phone_hash)
    JOIN opposition_lists l ON l.id = e.list_id
    WHERE d.contact_id = ${contactId}
    ORDER BY l.name`.execute(db);
  return rows;
}
