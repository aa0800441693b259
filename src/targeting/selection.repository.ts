import { type Kysely, type RawBuilder, sql, type Transaction } from 'kysely';
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

/**
 * The list being built, in the transaction that builds it: the people the walk chose, in rank
 * order, with what the manifest records of them. A temporary table of the session, emptied at
 * each commit: the members stay in PostgreSQL from the walk to the manifest, whatever their number.
 */
export async function prepareSelection(trx: Transaction<Database>): Promise<void> {
  await sql`
    CREATE TEMP TABLE IF NOT EXISTS list_selection (
      contact_id bigint PRIMARY KEY,
      score real NOT NULL,
      rank integer NOT NULL,
      percentile real NOT NULL,
      profiling_event_id bigint NOT NULL,
      channel_event_id bigint NOT NULL,
      reserved boolean NOT NULL DEFAULT false,
      position integer,
      is_holdout boolean NOT NULL DEFAULT false
    ) ON COMMIT DELETE ROWS`.execute(trx);
}

/** Where the walk stops: the list's size as asked, and the cap on every list. */
export interface WalkLimit {
  /** members wanted: top N, or the size cap for the other sizes */
  members: number;
  /** stop once the summed scores reach this (expectedBuyers), or null */
  summedScores: number | null;
  /** a score or percentile below which nobody is taken (minScore, percentile), as a SQL condition on alias s, or null */
  cut: RawBuilder<boolean> | null;
}

/** What one stretch of the walk found: the funnel counts of the people it examined. */
export interface WalkStretch {
  /** scored people read from the index in this stretch */
  read: number;
  examined: number;
  consentedForChannel: number;
  notOpposed: number;
  underPressureCap: number;
  /** taken into list_selection */
  kept: number;
  keptScores: number;
  /** the rank of the last person examined (the next stretch starts after it) */
  lastRank: number | null;
  /** the rank of the last person read: beyond lastRank when the list filled up before it */
  lastReadRank: number | null;
  /** a person beyond the cut was reached */
  cutReached: boolean;
}

export interface WalkQuery {
  scoreSetId: number;
  channel: string;
  contactField: string;
  now: Date;
  pressureSince: Date;
  pressureCap: number;
  afterRank: number;
  /** scored people read in this stretch */
  read: number;
  limit: WalkLimit;
  /** members and summed scores already taken by earlier stretches */
  taken: { members: number; summedScores: number };
}

/**
 * The next stretch of the walk down the score index, in one statement: every person is
 * checked against the eligibility rules now (reachabilityChecks) and the contact-pressure cap,
 * counted in the funnel, and taken into list_selection until the list is full. Window sums
 * over the rank order say, row by row, whether the list was already full before it: the rows
 * after that are not examined, as a walk one person at a time would not have examined them.
 */
export async function walkStretch(trx: Transaction<Database>, query: WalkQuery): Promise<WalkStretch> {
  const checks = reachabilityChecks(sql`s.contact_id`, query.channel, query.contactField, query.now);
  const { limit, taken } = query;
  const cut = limit.cut ?? sql`false`;
  const { rows } = await sql<{
    read: number;
    examined: number;
    consented: number;
    not_opposed: number;
    under_cap: number;
    kept: number;
    kept_scores: number;
    last_rank: number | null;
    last_read_rank: number | null;
    cut_reached: boolean;
  }>`
    WITH walk AS MATERIALIZED (
      SELECT s.contact_id, s.score, s.rank, s.percentile, ${cut} AS beyond_cut, (c.id IS NULL) AS erased,
             ${checks.columns},
             coalesce((SELECT count(*) FROM unnest(cp.sends) sent WHERE sent.sent_at > ${query.pressureSince}), 0) AS recent_lists
      FROM (
        SELECT * FROM scores WHERE score_set_id = ${query.scoreSetId} AND rank > ${query.afterRank}
        ORDER BY rank LIMIT ${query.read}
      ) s
      LEFT JOIN contacts c ON c.id = s.contact_id AND c.erased_at IS NULL
      ${checks.joins}
      LEFT JOIN contact_pressure cp ON cp.contact_id = s.contact_id
    ),
    judged AS (
      SELECT *, (NOT erased AND profiling_event_id IS NOT NULL AND channel_event_id IS NOT NULL AND has_contact_detail) AS consented
      FROM walk
    ),
    ruled AS (
      SELECT *, (consented AND NOT opposed AND NOT objected) AS not_opposed,
             (consented AND NOT opposed AND NOT objected AND recent_lists < ${query.pressureCap}) AS kept
      FROM judged
    ),
    running AS (
      SELECT *,
             count(*) FILTER (WHERE kept) OVER upto - kept::int AS kept_before,
             coalesce(sum(score::float8) FILTER (WHERE kept) OVER upto, 0) - CASE WHEN kept THEN score::float8 ELSE 0 END AS summed_before,
             bool_or(beyond_cut) OVER upto AS cut_so_far
      FROM ruled
      WINDOW upto AS (ORDER BY rank ROWS UNBOUNDED PRECEDING)
    ),
    examined AS (
      SELECT * FROM running
      WHERE NOT cut_so_far AND ${taken.members} + kept_before < ${limit.members}
        AND (${limit.summedScores}::float8 IS NULL OR ${taken.summedScores} + summed_before < ${limit.summedScores}::float8)
    ),
    taken AS (
      INSERT INTO list_selection (contact_id, score, rank, percentile, profiling_event_id, channel_event_id)
      SELECT contact_id, score, rank, percentile, profiling_event_id, channel_event_id FROM examined WHERE kept
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM walk)::int AS read,
           count(*)::int AS examined,
           count(*) FILTER (WHERE consented)::int AS consented,
           count(*) FILTER (WHERE not_opposed)::int AS not_opposed,
           count(*) FILTER (WHERE kept)::int AS under_cap,
           (SELECT count(*) FROM taken)::int AS kept,
           coalesce(sum(score::float8) FILTER (WHERE kept), 0) AS kept_scores,
           max(rank) AS last_rank,
           (SELECT max(rank) FROM walk) AS last_read_rank,
           coalesce((SELECT bool_or(beyond_cut) FROM walk), false) AS cut_reached
    FROM examined`.execute(trx);
  const row = rows[0]!;
  return {
    read: row.read,
    examined: row.examined,
    consentedForChannel: row.consented,
    notOpposed: row.not_opposed,
    underPressureCap: row.under_cap,
    kept: row.kept,
    keptScores: Number(row.kept_scores),
    lastRank: row.last_rank,
    lastReadRank: row.last_read_rank,
    cutReached: row.cut_reached,
  };
}
