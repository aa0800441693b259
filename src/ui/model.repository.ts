import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/database.ts';
import type { ModelTarget } from '../registry/model-catalog.repository.ts';
import {
  type BaselineMetrics,
  jsonNumber as num,
  readBaselineMetrics,
  readVersionMetrics,
  type VersionMetrics,
} from '../registry/model-metrics.ts';
import type { ModelVersionStatus } from '../registry/registry.table.ts';

/*
 * The reads behind one model's page, its charts and its feature profile. Registry data only,
 * and the top of a score set as internal ids and scores: never a contact detail.
 */

export interface VersionFigures {
  version: number;
  status: ModelVersionStatus;
  algorithm: string;
  runId: number | null;
  trainedAt: Date;
  decisionReason: string | null;
  auc: number | null;
  ece: number | null;
  liftTopDecile: number | null;
  rfmAuc: number | null;
  bgnbdAuc: number | null;
}

export interface ChampionDetail {
  id: number;
  version: number;
  algorithm: string;
  status: ModelVersionStatus;
  runId: number | null;
  trainedAt: Date;
  promotedAt: Date | null;
  consentSnapshotAt: Date;
  populationSize: number;
  trainingCutoff: Date;
  horizonDays: number;
  codeVersion: string;
  trainingDataHash: string;
  featureCount: number;
  /** the declared features, in the network's column order */
  features: string[];
  decisionReason: string | null;
  metrics: VersionMetrics;
  baselineMetrics: BaselineMetrics;
  networkId: number | null;
}

export interface LiveSet {
  id: number;
  runId: number | null;
  scoredAt: Date;
  rowCount: number;
  modelVersionId: number;
}

export interface ModelRecord {
  id: number;
  target: ModelTarget;
  productName: string | null;
  champion: ChampionDetail | null;
  /** versions trained by pipeline runs, oldest first (figures only) */
  history: VersionFigures[];
  /** every version, backtests included */
  versionCount: number;
  liveSet: LiveSet | null;
}

export async function findModelRecord(db: Kysely<Database>, target: ModelTarget): Promise<ModelRecord | null> {
  const model = await db
    .selectFrom('models as m')
    .leftJoin('products as p', 'p.id', 'm.product_id')
    .select(['m.id', 'm.target_kind', 'm.target_key', 'p.name as product_name'])
    .where('m.target_kind', '=', target.kind)
    .where('m.target_key', '=', target.key)
    .executeTakeFirst();
  if (!model) return null;
  const championRow = await db
    .selectFrom('model_versions')
    .select([
      'id',
      'version',
      'algorithm',
      'status',
      'run_id',
      'trained_at',
      'promoted_at',
      'consent_snapshot_at',
      'population_size',
      'training_cutoff',
      'horizon_days',
      'code_version',
      'training_data_hash',
      'decision_reason',
      'metrics',
      'baseline_metrics',
      'network_id',
      'feature_list',
      sql<number>`jsonb_array_length(feature_list)`.as('feature_count'),
    ])
    .where('model_id', '=', model.id)
    .where('status', '=', 'champion')
    .executeTakeFirst();
  const history = await versionHistory(db, model.id);
  const count = await db
    .selectFrom('model_versions')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('model_id', '=', model.id)
    .executeTakeFirstOrThrow();
  const live = await db
    .selectFrom('score_sets')
    .select(['id', 'run_id', 'scored_at', 'row_count', 'model_version_id'])
    .where('model_id', '=', model.id)
    .where('status', '=', 'live')
    .executeTakeFirst();
  return {
    id: model.id,
    target: { kind: model.target_kind, key: model.target_key },
    productName: model.product_name,
    champion: championRow
      ? {
          id: championRow.id,
          version: championRow.version,
          algorithm: championRow.algorithm,
          status: championRow.status,
          runId: championRow.run_id,
          trainedAt: championRow.trained_at,
          promotedAt: championRow.promoted_at,
          consentSnapshotAt: championRow.consent_snapshot_at,
          populationSize: championRow.population_size,
          trainingCutoff: championRow.training_cutoff,
          horizonDays: championRow.horizon_days,
          codeVersion: championRow.code_version,
          trainingDataHash: championRow.training_data_hash,
          featureCount: Number(championRow.feature_count),
          features: championRow.feature_list,
          decisionReason: championRow.decision_reason,
          metrics: readVersionMetrics(championRow.metrics),
          baselineMetrics: readBaselineMetrics(championRow.baseline_metrics),
          networkId: championRow.network_id,
        }
      : null,
    history,
    versionCount: Number(count.n),
    liveSet: live
      ? { id: live.id, runId: live.run_id, scoredAt: live.scored_at, rowCount: live.row_count, modelVersionId: live.model_version_id }
      : null,
  };
}

/** The figures of every version a pipeline run trained (backtests excluded), oldest first: the history table and chart. */
export async function versionHistory(db: Kysely<Database>, modelId: number): Promise<VersionFigures[]> {
  const { rows } = await sql<Record<string, unknown>>`
    SELECT v.version, v.status, v.algorithm, v.run_id, v.trained_at, v.decision_reason,
      v.metrics #> '{evaluation,rocAuc}' AS auc,
      v.metrics #> '{evaluation,expectedCalibrationError}' AS ece,
      v.metrics #> '{evaluation,gains,0,lift}' AS lift,
      v.baseline_metrics #> '{rfm,rocAuc}' AS rfm_auc,
      v.baseline_metrics #> '{bgnbd,rocAuc}' AS bgnbd_auc
    FROM model_versions v JOIN pipeline_runs r ON r.id = v.run_id AND r.kind = 'pipeline'
    WHERE v.model_id = ${modelId}
    ORDER BY v.version`.execute(db);
  return rows.map((row) => ({
    version: Number(row.version),
    status: row.status as ModelVersionStatus,
    algorithm: row.algorithm as string,
    runId: num(row.run_id),
    trainedAt: row.trained_at as Date,
    decisionReason: (row.decision_reason as string | null) ?? null,
    auc: num(row.auc),
    ece: num(row.ece),
    liftTopDecile: num(row.lift),
    rfmAuc: num(row.rfm_auc),
    bgnbdAuc: num(row.bgnbd_auc),
  }));
}

/** What a chart of one model needs to know about it, in one query: no metrics, no history. */
export interface ModelChartHead {
  modelId: number;
  champion: { id: number; networkId: number | null; populationSize: number } | null;
  /** the live score set, only when the champion scored it */
  live: LiveSet | null;
}

export async function modelChartHead(db: Kysely<Database>, target: ModelTarget): Promise<ModelChartHead | null> {
  const { rows } = await sql<Record<string, unknown>>`
    SELECT m.id AS model_id, c.id AS champion_id, c.network_id, c.population_size,
      s.id AS set_id, s.run_id AS set_run_id, s.scored_at, s.row_count, s.model_version_id
    FROM models m
    LEFT JOIN model_versions c ON c.model_id = m.id AND c.status = 'champion'
    LEFT JOIN score_sets s ON s.model_id = m.id AND s.status = 'live' AND s.model_version_id = c.id
    WHERE m.target_kind = ${target.kind} AND m.target_key = ${target.key}`.execute(db);
  const row = rows[0];
  if (!row) return null;
  return {
    modelId: Number(row.model_id),
    champion:
      row.champion_id === null
        ? null
        : { id: Number(row.champion_id), networkId: num(row.network_id), populationSize: Number(row.population_size) },
    live:
      row.set_id === null
        ? null
        : {
            id: Number(row.set_id),
            runId: num(row.set_run_id),
            scoredAt: row.scored_at as Date,
            rowCount: Number(row.row_count),
            modelVersionId: Number(row.model_version_id),
          },
  };
}

/** The parts of a version's metrics the evaluation charts draw (evaluation, importance) and its baselines' metrics. */
export async function storedEvaluation(
  db: Kysely<Database>,
  versionId: number,
): Promise<{ metrics: VersionMetrics; baselineMetrics: BaselineMetrics } | null> {
  const { rows } = await sql<{ evaluation: unknown; importance: unknown; baseline_metrics: unknown }>`
    SELECT metrics -> 'evaluation' AS evaluation, metrics -> 'importance' AS importance, baseline_metrics
    FROM model_versions WHERE id = ${versionId}`.execute(db);
  const row = rows[0];
  if (!row) return null;
  return {
    metrics: readVersionMetrics({ evaluation: row.evaluation, importance: row.importance }),
    baselineMetrics: readBaselineMetrics(row.baseline_metrics),
  };
}

/** A product of the catalogue, by SKU (a target without a model is still worth a page). */
export async function findProduct(
  db: Kysely<Database>,
  sku: string,
): Promise<{ id: number; sku: string; name: string; category: string } | null> {
  const row = await db.selectFrom('products').select(['id', 'sku', 'name', 'category']).where('sku', '=', sku).executeTakeFirst();
  return row ?? null;
}

/** Whether the catalogue has a category of this name. */
export async function categoryExists(db: Kysely<Database>, category: string): Promise<boolean> {
  const row = await db.selectFrom('products').select('id').where('category', '=', category).limit(1).executeTakeFirst();
  return row !== undefined;
}

export interface NetworkProfile {
  explanationGroups: string[];
  featureProfile: {
    rows: number;
    features: Record<string, Record<string, number | null>>;
    bins?: Record<string, { edges: number[]; shares: number[]; missing: number }>;
  } | null;
}

/** The explanation groups and the training feature profile kept with a network (never its weights). */
export async function networkProfile(db: Kysely<Database>, networkId: number): Promise<NetworkProfile | null> {
  const row = await db
    .selectFrom('model_networks')
    .select([
      sql<string[] | null>`metadata -> 'explanationGroups'`.as('groups'),
      sql<NetworkProfile['featureProfile']>`metadata -> 'featureProfile'`.as('profile'),
    ])
    .where('id', '=', networkId)
    .executeTakeFirst();
  if (!row) return null;
  return { explanationGroups: row.groups ?? [], featureProfile: row.profile ?? null };
}

/** The decile bins of the training sample's feature profile (what drift is measured on), without the rest of the profile. */
export async function trainingBins(
  db: Kysely<Database>,
  networkId: number,
): Promise<Record<string, { edges: number[]; shares: number[]; missing: number }> | null> {
  const { rows } = await sql<{ bins: Record<string, { edges: number[]; shares: number[]; missing: number }> | null }>`
    SELECT metadata #> '{featureProfile,bins}' AS bins FROM model_networks WHERE id = ${networkId}`.execute(db);
  return rows[0]?.bins ?? null;
}

export interface ScoredProfile {
  rows: number;
  population: number;
  bins: Record<string, { shares: number[]; missing: number }>;
}

export async function scoreSetProfile(db: Kysely<Database>, scoreSetId: number): Promise<ScoredProfile | null> {
  const row = await db.selectFrom('score_sets').select('feature_profile').where('id', '=', scoreSetId).executeTakeFirst();
  return (row?.feature_profile as ScoredProfile | null | undefined) ?? null;
}

/** The `limit` best-ranked people of a score set: internal ids and scores only. */
export async function topScored(
  db: Kysely<Database>,
  scoreSetId: number,
  limit: number,
): Promise<Array<{ contactId: number; score: number; rank: number }>> {
  const rows = await db
    .selectFrom('scores')
    .select(['contact_id', 'score', 'rank'])
    .where('score_set_id', '=', scoreSetId)
    .orderBy('rank')
    .limit(limit)
    .execute();
  return rows.map((row) => ({ contactId: Number(row.contact_id), score: row.score, rank: row.rank }));
}
