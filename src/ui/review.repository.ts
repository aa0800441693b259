import { type Kysely, sql } from 'kysely';
import { type RunPart, runParts } from '../jobs/run-parts.repository.ts';
import type { ChannelFunnel } from '../consent/eligibility.ts';
import type { Database } from '../db/database.ts';
import type { ModelTarget } from '../registry/model-catalog.repository.ts';
import type { ModelVersionStatus, PipelineRunStatus, RunPartStatus } from '../registry/registry.table.ts';

/*
 * The reads behind the model review pages. The registry side holds no personal data; the
 * person view reads one contact at a time, by id, and never a contact detail.
 */

const num = (value: unknown): number | null => {
  if (value === null || value === undefined) return null;
  const n = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(n) ? n : null;
};

/** What the latest pipeline run said about a target. */
export interface RunOutcome {
  runId: number;
  runFinishedAt: Date | null;
  status: string;
  reason: string;
  version: number | null;
}

/** The outcome of every target (or of one, "kind:key") in the latest finished pipeline run, by "kind:key". */
export async function latestRunOutcomes(db: Kysely<Database>, only?: string): Promise<Map<string, RunOutcome>> {
  const { rows } = await sql<{ id: number; finished_at: Date | null; target: string; status: string; reason: string | null; version: unknown }>`
    SELECT r.id, r.finished_at, t ->> 'target' AS target, t ->> 'status' AS status, t ->> 'reason' AS reason, t -> 'version' AS version
    FROM (SELECT id, finished_at, summary FROM pipeline_runs
          WHERE kind = 'pipeline' AND status = 'succeeded' ORDER BY id DESC LIMIT 1) r,
         jsonb_array_elements(coalesce(r.summary -> 'targets', '[]'::jsonb)) t
    WHERE ${only === undefined ? sql`true` : sql`t ->> 'target' = ${only}`}`.execute(db);
  return new Map(
    rows.map((row) => [
      row.target,
      { runId: Number(row.id), runFinishedAt: row.finished_at, status: row.status, reason: row.reason ?? '', version: num(row.version) },
    ]),
  );
}

export interface OverviewModelRow {
  target: ModelTarget;
  productName: string | null;
  champion: {
    version: number;
    algorithm: string;
    trainedAt: Date;
    consentSnapshotAt: Date;
    populationSize: number;
    decisionReason: string | null;
    /** buyers in the latest training window (whole snapshot); older versions only have the evaluation window's */
    buyers: number | null;
    buyersWindow: 'training' | 'evaluation' | null;
    baseRate: number | null;
    auc: number | null;
    liftTopDecile: number | null;
    ece: number | null;
    rfmAuc: number | null;
    bgnbdAuc: number | null;
    /** the previous champion judged on this version's evaluation window, when there was one */
    previous: { version: number; auc: number | null } | null;
    /** the AUC stored with the pipeline version before this one (its own window) */
    priorVersionAuc: number | null;
  } | null;
  /** the most recent version trained by a pipeline run (backtests excluded) */
  latest: { version: number; status: ModelVersionStatus; decisionReason: string | null; runId: number | null } | null;
  versions: number;
}

/** Every model with its champion's figures and its latest version, in one query (JSON paths only). */
export async function overviewModels(db: Kysely<Database>): Promise<OverviewModelRow[]> {
  const { rows } = await sql<Record<string, unknown>>`
    SELECT m.target_kind, m.target_key, p.name AS product_name,
      c.version, c.algorithm, c.trained_at, c.consent_snapshot_at, c.population_size, c.decision_reason,
      c.metrics #> '{trainingWindow,buyers}' AS window_buyers,
      c.metrics #> '{evaluation,positives}' AS evaluation_buyers,
      c.metrics #> '{evaluation,baseRate}' AS base_rate,
      c.metrics #> '{evaluation,rocAuc}' AS auc,
      c.metrics #> '{evaluation,gains,0,lift}' AS lift,
      c.metrics #> '{evaluation,expectedCalibrationError}' AS ece,
      c.baseline_metrics #> '{rfm,rocAuc}' AS rfm_auc,
      c.baseline_metrics #> '{bgnbd,rocAuc}' AS bgnbd_auc,
      c.metrics #> '{champion,version}' AS previous_version,
      c.metrics #> '{champion,auc}' AS previous_auc,
      (SELECT v.metrics #> '{evaluation,rocAuc}' FROM model_versions v JOIN pipeline_runs r ON r.id = v.run_id AND r.kind = 'pipeline'
        WHERE v.model_id = m.id AND v.version < c.version ORDER BY v.version DESC LIMIT 1) AS prior_auc,
      l.version AS latest_version, l.status AS latest_status, l.decision_reason AS latest_reason, l.run_id AS latest_run,
      (SELECT count(*)::int FROM model_versions a WHERE a.model_id = m.id) AS versions
    FROM models m
    LEFT JOIN products p ON p.id = m.product_id
    LEFT JOIN model_versions c ON c.model_id = m.id AND c.status = 'champion'
    LEFT JOIN LATERAL (
      SELECT v.version, v.status, v.decision_reason, v.run_id FROM model_versions v
      JOIN pipeline_runs r ON r.id = v.run_id AND r.kind = 'pipeline'
      WHERE v.model_id = m.id ORDER BY v.version DESC LIMIT 1) l ON true
    ORDER BY m.target_kind, m.target_key`.execute(db);
  return rows.map((row) => {
    const windowBuyers = num(row.window_buyers);
    const evaluationBuyers = num(row.evaluation_buyers);
    const previousVersion = num(row.previous_version);
    return {
      target: { kind: row.target_kind as ModelTarget['kind'], key: row.target_key as string },
      productName: (row.product_name as string | null) ?? null,
      champion:
        row.version === null
          ? null
          : {
              version: Number(row.version),
              algorithm: row.algorithm as string,
              trainedAt: row.trained_at as Date,
              consentSnapshotAt: row.consent_snapshot_at as Date,
              populationSize: Number(row.population_size),
              decisionReason: (row.decision_reason as string | null) ?? null,
              buyers: windowBuyers ?? evaluationBuyers,
              buyersWindow: windowBuyers !== null ? 'training' : evaluationBuyers !== null ? 'evaluation' : null,
              baseRate: num(row.base_rate),
              auc: num(row.auc),
              liftTopDecile: num(row.lift),
              ece: num(row.ece),
              rfmAuc: num(row.rfm_auc),
              bgnbdAuc: num(row.bgnbd_auc),
              previous: previousVersion === null ? null : { version: previousVersion, auc: num(row.previous_auc) },
              priorVersionAuc: num(row.prior_auc),
            },
      latest:
        row.latest_version === null
          ? null
          : {
              version: Number(row.latest_version),
              status: row.latest_status as ModelVersionStatus,
              decisionReason: (row.latest_reason as string | null) ?? null,
              runId: num(row.latest_run),
            },
      versions: Number(row.versions),
    };
  });
}

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
  metrics: Record<string, unknown>;
  baselineMetrics: Record<string, unknown>;
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
      'id', 'version', 'algorithm', 'status', 'run_id', 'trained_at', 'promoted_at', 'consent_snapshot_at', 'population_size',
      'training_cutoff', 'horizon_days', 'code_version', 'training_data_hash', 'decision_reason', 'metrics', 'baseline_metrics', 'network_id', 'feature_list',
      sql<number>`jsonb_array_length(feature_list)`.as('feature_count'),
    ])
    .where('model_id', '=', model.id)
    .where('status', '=', 'champion')
    .executeTakeFirst();
  const history = await versionHistory(db, model.id);
  const count = await db.selectFrom('model_versions').select(sql<number>`count(*)::int`.as('n')).where('model_id', '=', model.id).executeTakeFirstOrThrow();
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
          metrics: championRow.metrics,
          baselineMetrics: championRow.baseline_metrics,
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
): Promise<{ metrics: Record<string, unknown>; baselineMetrics: Record<string, unknown> } | null> {
  const { rows } = await sql<{ evaluation: unknown; importance: unknown; baseline_metrics: Record<string, unknown> | null }>`
    SELECT metrics -> 'evaluation' AS evaluation, metrics -> 'importance' AS importance, baseline_metrics
    FROM model_versions WHERE id = ${versionId}`.execute(db);
  const row = rows[0];
  if (!row) return null;
  return { metrics: { evaluation: row.evaluation ?? null, importance: row.importance ?? null }, baselineMetrics: row.baseline_metrics ?? {} };
}

/** A product of the catalogue, by SKU (a target without a model is still worth a page). */
export async function findProduct(db: Kysely<Database>, sku: string): Promise<{ id: number; sku: string; name: string; category: string } | null> {
  const row = await db.selectFrom('products').select(['id', 'sku', 'name', 'category']).where('sku', '=', sku).executeTakeFirst();
  return row ?? null;
}

/** Whether the catalogue has a category of this name. */
export async function categoryExists(db: Kysely<Database>, category: string): Promise<boolean> {
  const row = await db.selectFrom('products').select('id').where('category', '=', category).limit(1).executeTakeFirst();
  return row !== undefined;
}

/** The latest finished pipeline run and the rules it applied to select targets. */
export async function latestPipelineRun(db: Kysely<Database>): Promise<{ id: number; finishedAt: Date | null; params: Record<string, unknown>; horizonDays: number | null } | null> {
  const row = await db
    .selectFrom('pipeline_runs')
    .select(['id', 'finished_at', 'params', 'horizon_days'])
    .where('kind', '=', 'pipeline')
    .where('status', '=', 'succeeded')
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row ? { id: row.id, finishedAt: row.finished_at, params: row.params, horizonDays: row.horizon_days } : null;
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
    .select([sql<string[] | null>`metadata -> 'explanationGroups'`.as('groups'), sql<NetworkProfile['featureProfile']>`metadata -> 'featureProfile'`.as('profile')])
    .where('id', '=', networkId)
    .executeTakeFirst();
  if (!row) return null;
  return { explanationGroups: row.groups ?? [], featureProfile: row.profile ?? null };
}

/** The decile bins of the training sample's feature profile (what drift is measured on), without the rest of the profile. */
export async function trainingBins(db: Kysely<Database>, networkId: number): Promise<Record<string, { edges: number[]; shares: number[]; missing: number }> | null> {
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

export interface RecordedFunnel {
  at: string;
  channels: ChannelFunnel[];
}

/** The consent funnel a run recorded when it scored (counts only). */
export async function runConsentFunnel(db: Kysely<Database>, runId: number): Promise<RecordedFunnel | null> {
  const row = await db
    .selectFrom('pipeline_runs')
    .select(sql<RecordedFunnel | null>`summary -> 'consentFunnel'`.as('funnel'))
    .where('id', '=', runId)
    .executeTakeFirst();
  return row?.funnel ?? null;
}

/** The `limit` best-ranked people of a score set: internal ids and scores only. */
export async function topScored(db: Kysely<Database>, scoreSetId: number, limit: number): Promise<Array<{ contactId: number; score: number; rank: number }>> {
  const rows = await db
    .selectFrom('scores')
    .select(['contact_id', 'score', 'rank'])
    .where('score_set_id', '=', scoreSetId)
    .orderBy('rank')
    .limit(limit)
    .execute();
  return rows.map((row) => ({ contactId: Number(row.contact_id), score: row.score, rank: row.rank }));
}

// ---- people -------------------------------------------------------------------------------

export interface PersonRecord {
  id: number;
  /** the company's own identifier, null once erased */
  externalId: string | null;
  createdAt: Date;
  erasedAt: Date | null;
  /** whether the contact's profiling consent counts now */
  profilingConsent: boolean;
}

export async function findPerson(db: Kysely<Database>, contactId: number, now: Date): Promise<PersonRecord | null> {
  const row = await db
    .selectFrom('contacts as c')
    .leftJoin('consent_state as s', (join) =>
      join.onRef('s.contact_id', '=', 'c.id').on('s.purpose', '=', 'profiling').on('s.channel_key', '=', ''),
    )
    .select(['c.id', 'c.external_id', 'c.created_at', 'c.erased_at', 's.counts', 's.expires_at'])
    .where('c.id', '=', contactId)
    .executeTakeFirst();
  if (!row) return null;
  return {
    id: Number(row.id),
    externalId: row.external_id,
    createdAt: row.created_at,
    erasedAt: row.erased_at,
    profilingConsent: row.counts === true && (row.expires_at === null || row.expires_at > now),
  };
}

export async function personIdByExternalId(db: Kysely<Database>, externalId: string): Promise<number | null> {
  const row = await db.selectFrom('contacts').select('id').where('external_id', '=', externalId).where('erased_at', 'is', null).executeTakeFirst();
  return row ? Number(row.id) : null;
}

// ---- runs ---------------------------------------------------------------------------------

export interface RunRow {
  id: number;
  kind: 'pipeline' | 'backtest';
  status: PipelineRunStatus;
  trigger: string;
  asOf: Date;
  horizonDays: number | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  error: string | null;
  population: number | null;
  stages: Array<{ stage: string; seconds: number; rows: number }>;
  /** how many targets ended in each status */
  outcomes: Record<string, number>;
}

function runRow(row: Record<string, unknown>): RunRow {
  return {
    id: Number(row.id),
    kind: row.kind as RunRow['kind'],
    status: row.status as PipelineRunStatus,
    trigger: row.trigger as string,
    asOf: row.as_of as Date,
    horizonDays: num(row.horizon_days),
    createdAt: row.created_at as Date,
    startedAt: (row.started_at as Date | null) ?? null,
    finishedAt: (row.finished_at as Date | null) ?? null,
    error: (row.error as string | null) ?? null,
    population: num(row.population),
    stages: Array.isArray(row.stages) ? (row.stages as RunRow['stages']) : [],
    outcomes: (row.outcomes as Record<string, number> | null) ?? {},
  };
}

const RUN_COLUMNS = sql`r.id, r.kind, r.status, r.trigger, r.as_of, r.horizon_days, r.created_at, r.started_at, r.finished_at, r.error,
  r.summary -> 'population' AS population, r.summary -> 'stages' AS stages,
  (SELECT jsonb_object_agg(s, n) FROM (SELECT t ->> 'status' AS s, count(*)::int AS n
     FROM jsonb_array_elements(coalesce(r.summary -> 'targets', '[]'::jsonb)) t GROUP BY 1) o) AS outcomes`;

/** The most recent runs, newest first; `before` pages back. */
export async function recentRuns(db: Kysely<Database>, limit: number, before: number | null): Promise<RunRow[]> {
  const { rows } = await sql<Record<string, unknown>>`
    SELECT ${RUN_COLUMNS} FROM pipeline_runs r
    WHERE ${before === null ? sql`true` : sql`r.id < ${before}`}
    ORDER BY r.id DESC LIMIT ${limit}`.execute(db);
  return rows.map(runRow);
}

/** The stage timings of the most recent runs, newest first, as `recentRuns` pages them: the durations chart alone. */
export async function recentRunTimings(db: Kysely<Database>, limit: number, before: number | null): Promise<Array<Pick<RunRow, 'id' | 'status' | 'stages'>>> {
  const { rows } = await sql<Record<string, unknown>>`
    SELECT r.id, r.status, r.summary -> 'stages' AS stages FROM pipeline_runs r
    WHERE ${before === null ? sql`true` : sql`r.id < ${before}`}
    ORDER BY r.id DESC LIMIT ${limit}`.execute(db);
  return rows.map((row) => ({ id: Number(row.id), status: row.status as PipelineRunStatus, stages: Array.isArray(row.stages) ? (row.stages as RunRow['stages']) : [] }));
}

/** The stage timings of one run; null when there is no such run. */
export async function runTimings(db: Kysely<Database>, id: number): Promise<RunRow['stages'] | null> {
  const { rows } = await sql<{ stages: unknown }>`SELECT summary -> 'stages' AS stages FROM pipeline_runs WHERE id = ${id}`.execute(db);
  const row = rows[0];
  if (!row) return null;
  return Array.isArray(row.stages) ? (row.stages as RunRow['stages']) : [];
}

export interface RunDetail extends RunRow {
  params: Record<string, unknown>;
  targets: Array<{
    target: string;
    status: string;
    reason: string;
    version: number | null;
    algorithm: string | null;
    auc: { model: number | null; rfm: number | null; bgnbd: number | null; champion: number | null };
    scored: number | null;
  }>;
  backend: string | null;
  peakRssMb: number | null;
  /** 'inline': one process ran it all; 'queue': workers took its parts from the job queue */
  driver: 'inline' | 'queue';
  /** how many scoring shards the run fanned out into (queued runs) */
  shards: number | null;
  heartbeatAt: Date | null;
  /** the jobs of a queued run, in the order they run */
  parts: RunPart[];
}

export type { RunPart } from '../jobs/run-parts.repository.ts';

export async function findRun(db: Kysely<Database>, id: number): Promise<RunDetail | null> {
  const { rows } = await sql<Record<string, unknown>>`
    SELECT ${RUN_COLUMNS}, r.params, r.summary -> 'targets' AS targets, r.summary ->> 'backend' AS backend, r.summary -> 'peakRssMb' AS peak_rss,
      r.driver, r.shards, r.heartbeat_at
    FROM pipeline_runs r WHERE r.id = ${id}`.execute(db);
  const row = rows[0];
  if (!row) return null;
  const targets = Array.isArray(row.targets) ? (row.targets as Array<Record<string, unknown>>) : [];
  return {
    ...runRow(row),
    params: (row.params as Record<string, unknown>) ?? {},
    backend: (row.backend as string | null) ?? null,
    peakRssMb: num(row.peak_rss),
    driver: row.driver === 'queue' ? 'queue' : 'inline',
    shards: num(row.shards),
    heartbeatAt: (row.heartbeat_at as Date | null) ?? null,
    parts: await runParts(db, id),
    targets: targets.map((t) => {
      const auc = (t.auc as Record<string, unknown> | undefined) ?? {};
      return {
        target: String(t.target),
        status: String(t.status),
        reason: String(t.reason ?? ''),
        version: num(t.version),
        algorithm: (t.algorithm as string | null) ?? null,
        auc: { model: num(auc.model), rfm: num(auc.rfm), bgnbd: num(auc.bgnbd), champion: num(auc.champion) },
        scored: num(t.scored),
      };
    }),
  };
}

/** How many people each model's live score set holds. */
export async function livePopulations(db: Kysely<Database>, modelIds: readonly number[]): Promise<Map<number, number>> {
  if (modelIds.length === 0) return new Map();
  const rows = await db.selectFrom('score_sets').select(['model_id', 'row_count']).where('status', '=', 'live').where('model_id', 'in', [...modelIds]).execute();
  return new Map(rows.map((row) => [Number(row.model_id), row.row_count]));
}
