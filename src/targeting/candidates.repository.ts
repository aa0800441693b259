import { type Kysely, sql } from 'kysely';
import { reachabilityChecks } from '../consent/eligibility.ts';
import type { Database } from '../db/database.ts';

export interface LiveScoreSet {
  productId: number;
  productName: string;
  modelId: number;
  modelVersionId: number;
  modelVersion: number;
  algorithm: string;
  horizonDays: number;
  scoreSetId: number;
  scoredAt: Date;
  rowCount: number;
  /** the network's explanation group names, indexed by the reason codes stored with scores */
  explanationGroups: string[];
}

/** The product's model and its live score set; `product` null when the SKU is unknown, `live` null when nothing is scored. */
export async function liveScoreSetOf(
  db: Kysely<Database>,
  sku: string,
): Promise<{ product: { id: number; name: string } | null; live: LiveScoreSet | null }> {
  const product = await db.selectFrom('products').select(['id', 'name']).where('sku', '=', sku).executeTakeFirst();
  if (!product) return { product: null, live: null };
  const row = await db
    .selectFrom('models as m')
    .innerJoin('score_sets as ss', (join) => join.onRef('ss.model_id', '=', 'm.id').on('ss.status', '=', 'live'))
    .innerJoin('model_versions as v', 'v.id', 'ss.model_version_id')
    .leftJoin('model_networks as n', 'n.id', 'v.network_id')
    .select([
      'm.id as modelId',
      'v.id as modelVersionId',
      'v.version',
      'v.algorithm',
      'v.horizon_days as horizonDays',
      'ss.id as scoreSetId',
      'ss.scored_at as scoredAt',
      'ss.row_count as rowCount',
      // a network's groups, or a baseline version's own (it has no network)
      sql<string[] | null>`coalesce(n.metadata -> 'explanationGroups', v.metrics -> 'explanationGroups')`.as('explanationGroups'),
    ])
    .where('m.target_kind', '=', 'product')
    .where('m.target_key', '=', sku)
    .executeTakeFirst();
  const found = { id: Number(product.id), name: product.name };
  if (!row) return { product: found, live: null };
  return {
    product: found,
    live: {
      productId: found.id,
      productName: found.name,
      modelId: Number(row.modelId),
      modelVersionId: Number(row.modelVersionId),
      modelVersion: row.version,
      algorithm: row.algorithm,
      horizonDays: row.horizonDays,
      scoreSetId: Number(row.scoreSetId),
      scoredAt: row.scoredAt,
      rowCount: row.rowCount,
      explanationGroups: row.explanationGroups ?? [],
    },
  };
}

export interface Candidate {
  contactId: number;
  externalId: string | null;
  score: number;
  rank: number;
  percentile: number;
  reasonCodes: Array<number | null>;
  contributions: Array<number | null>;
  profilingEventId: number | null;
  channelEventId: number | null;
  contactValue: string | null;
  /** erased since scoring (their scores go with the erasure; kept here for a race with it) */
  erased: boolean;
  hasContactDetail: boolean;
  opposed: boolean;
  objected: boolean;
  /** lists this contact was in (holdouts and undelivered lists excluded) within the pressure window, counted up to the cap */
  recentLists: number;
}

export interface CandidateQuery {
  scoreSetId: number;
  channel: string;
  contactField: string;
  now: Date;
  pressureSince: Date;
  /** counting stops here: the cap is all that matters */
  pressureCap: number;
  afterRank: number;
  limit: number;
}

/** The next scored contacts in rank order, each with what the eligibility rules say about them now. */
export async function candidateBatch(db: Kysely<Database>, query: CandidateQuery): Promise<Candidate[]> {
  const checks = reachabilityChecks(sql`s.contact_id`, query.channel, query.contactField, query.now);
  const { rows } = await sql<{
    contact_id: number;
    external_id: string | null;
    score: number;
    rank: number;
    percentile: number;
    reason_1: number | null;
    reason_2: number | null;
    reason_3: number | null;
    contribution_1: number | null;
    contribution_2: number | null;
    contribution_3: number | null;
    profiling_event_id: number | null;
    channel_event_id: number | null;
    contact_value: string | null;
    erased: boolean;
    has_contact_detail: boolean;
    opposed: boolean;
    objected: boolean;
    recent_lists: number;
  }>`
    SELECT s.contact_id, c.external_id, s.score, s.rank, s.percentile,
           s.reason_1, s.reason_2, s.reason_3, s.contribution_1, s.contribution_2, s.contribution_3,
           (c.id IS NULL) AS erased,
           ${checks.columns},
           (SELECT count(*)::int FROM (
              SELECT 1 FROM target_export_members x
              WHERE x.contact_id = s.contact_id AND x.exported_at > ${query.pressureSince} AND NOT x.is_holdout AND NOT x.released
              LIMIT ${query.pressureCap}) recent) AS recent_lists
    FROM (
      SELECT * FROM scores WHERE score_set_id = ${query.scoreSetId} AND rank > ${query.afterRank}
      ORDER BY rank LIMIT ${query.limit}
    ) s
    LEFT JOIN contacts c ON c.id = s.contact_id AND c.erased_at IS NULL
    ${checks.joins}
    ORDER BY s.rank`.execute(db);
  return rows.map((row) => ({
    contactId: Number(row.contact_id),
    externalId: row.external_id,
    score: row.score,
    rank: row.rank,
    percentile: row.percentile,
    reasonCodes: [row.reason_1, row.reason_2, row.reason_3],
    contributions: [row.contribution_1, row.contribution_2, row.contribution_3],
    profilingEventId: row.profiling_event_id === null ? null : Number(row.profiling_event_id),
    channelEventId: row.channel_event_id === null ? null : Number(row.channel_event_id),
    contactValue: row.contact_value,
    erased: row.erased,
    hasContactDetail: row.has_contact_detail,
    opposed: row.opposed,
    objected: row.objected,
    recentLists: row.recent_lists,
  }));
}
