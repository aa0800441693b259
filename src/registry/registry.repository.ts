import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/database.ts';
import type { ModelVersionStatus } from './registry.table.ts';

/** Runs `work` in the caller's transaction when there is one (a run publishing), else in a new one. */
export async function inTransaction<T>(db: Kysely<Database>, work: (trx: Kysely<Database>) => Promise<T>): Promise<T> {
  return db.isTransaction ? work(db) : db.transaction().execute(work);
}

export interface RunStart {
  kind: 'pipeline' | 'backtest';
  trigger: string;
  asOf: Date;
  horizonDays: number;
  params: Record<string, unknown>;
  startedAt: Date;
  /** 'inline': run here and now; 'queue': queued for workers */
  driver?: 'inline' | 'queue';
  shards?: number;
}

/** Another run is queued or running: runs never interleave. */
export class PipelineBusyError extends Error {}

/**
 * Records a new run, refused with PipelineBusyError while another is queued or running (a
 * unique index decides, so two triggers at once on any machines cannot both start). A run
 * whose process died is recognised by a heartbeat older than `staleAfterSeconds` and marked
 * failed first, so that it cannot block the pipeline for ever.
 */
export async function createRun(db: Kysely<Database>, run: RunStart, staleAfterSeconds = 600): Promise<number> {
  await failStaleRuns(db, run.startedAt, staleAfterSeconds);
  try {
    const row = await db
      .insertInto('pipeline_runs')
      .values({
        status: run.driver === 'queue' ? 'queued' : 'running',
        kind: run.kind,
        trigger: run.trigger,
        as_of: run.asOf,
        horizon_days: run.horizonDays,
        params: JSON.stringify(run.params),
        started_at: run.driver === 'queue' ? null : run.startedAt,
        driver: run.driver ?? 'inline',
        shards: run.shards ?? 1,
        heartbeat_at: run.startedAt,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return row.id;
  } catch (error) {
    const constraint = (error as { constraint?: string }).constraint;
    if (constraint === 'pipeline_runs_one_active') {
      const active = await db.selectFrom('pipeline_runs').select(['id', 'status']).where('status', 'in', ['queued', 'running']).executeTakeFirst();
      throw new PipelineBusyError(
        active ? `pipeline run ${active.id} is ${active.status}; try again when it has finished` : 'another pipeline run is active',
      );
    }
    if (constraint === 'pipeline_runs_one_per_slot') throw new PipelineBusyError(`a run was already started for ${run.trigger}`);
    throw error;
  }
}

async function failStaleRuns(db: Kysely<Database>, now: Date, staleAfterSeconds: number): Promise<void> {
  await db
    .updateTable('pipeline_runs')
    .set({ status: 'failed', finished_at: now, error: sql<string>`'abandoned: no sign of life since ' || to_char(coalesce(heartbeat_at, created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')` })
    .where('status', 'in', ['queued', 'running'])
    .where(sql<boolean>`coalesce(heartbeat_at, created_at) < ${now}::timestamptz - make_interval(secs => ${staleAfterSeconds})`)
    .execute();
}

/** Keeps a run's heartbeat fresh while this process works on it. */
export function startHeartbeat(db: Kysely<Database>, runId: number, now: () => Date, everyMs = 15_000): { stop(): void } {
  const beat = () => db.updateTable('pipeline_runs').set({ heartbeat_at: now() }).where('id', '=', runId).execute().catch(() => undefined);
  const timer = setInterval(beat, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

export async function finishRun(
  db: Kysely<Database>,
  runId: number,
  outcome: { status: 'succeeded' | 'failed'; finishedAt: Date; summary: Record<string, unknown>; error?: string },
): Promise<void> {
  await db
    .updateTable('pipeline_runs')
    .set({
      status: outcome.status,
      finished_at: outcome.finishedAt,
      summary: JSON.stringify(outcome.summary),
      error: outcome.error ?? null,
    })
    .where('id', '=', runId)
    .execute();
}

export interface ModelKey {
  kind: 'any' | 'category' | 'product';
  key: string;
  productId: number | null;
}

/** The registry entry of a target, created the first time the target gets a model. */
export async function ensureModel(db: Kysely<Database>, target: ModelKey): Promise<number> {
  await db
    .insertInto('models')
    .values({ target_kind: target.kind, target_key: target.key, product_id: target.productId })
    .onConflict((conflict) => conflict.columns(['target_kind', 'target_key']).doNothing())
    .execute();
  return (await modelIdOf(db, target)) as number;
}

/** The registry id of a target's model, if it ever had one (created when a run publishes). */
export async function modelIdOf(db: Kysely<Database>, target: Pick<ModelKey, 'kind' | 'key'>): Promise<number | null> {
  const row = await db
    .selectFrom('models')
    .select('id')
    .where('target_kind', '=', target.kind)
    .where('target_key', '=', target.key)
    .executeTakeFirst();
  return row?.id ?? null;
}

export interface Champion {
  versionId: number;
  version: number;
  networkId: number | null;
  evaluationNetworkId: number | null;
  outputIndex: number | null;
  metrics: Record<string, unknown>;
}

export async function championOf(db: Kysely<Database>, modelId: number): Promise<Champion | null> {
  const row = await db
    .selectFrom('model_versions')
    .select(['id', 'version', 'network_id', 'evaluation_network_id', 'output_index', 'metrics'])
    .where('model_id', '=', modelId)
    .where('status', '=', 'champion')
    .executeTakeFirst();
  if (!row) return null;
  return {
    versionId: row.id,
    version: row.version,
    networkId: row.network_id,
    evaluationNetworkId: row.evaluation_network_id,
    outputIndex: row.output_index,
    metrics: row.metrics,
  };
}

export interface NewVersion {
  modelId: number;
  algorithm: string;
  status: ModelVersionStatus;
  runId: number;
  trainedAt: Date;
  consentSnapshotAt: Date;
  populationSize: number;
  trainingCutoff: Date;
  horizonDays: number;
  featureList: string[];
  codeVersion: string;
  trainingDataHash: string;
  metrics: Record<string, unknown>;
  baselineMetrics: Record<string, unknown>;
  decisionReason: string;
  networkId: number | null;
  evaluationNetworkId: number | null;
  outputIndex: number | null;
}

/** Adds a version (numbered after the model's last one); promotion is a separate step. */
export async function insertVersion(db: Kysely<Database>, version: NewVersion): Promise<{ id: number; version: number }> {
  return inTransaction(db, async (trx) => {
    // serialise version numbering per model (two runs may register at once)
    await sql`SELECT id FROM models WHERE id = ${version.modelId} FOR UPDATE`.execute(trx);
    const last = await trx
      .selectFrom('model_versions')
      .select((eb) => eb.fn.max('version').as('last'))
      .where('model_id', '=', version.modelId)
      .executeTakeFirst();
    const number = Number(last?.last ?? 0) + 1;
    const row = await trx
      .insertInto('model_versions')
      .values({
        model_id: version.modelId,
        version: number,
        algorithm: version.algorithm,
        status: version.status,
        run_id: version.runId,
        trained_at: version.trainedAt,
        consent_snapshot_at: version.consentSnapshotAt,
        population_size: version.populationSize,
        training_cutoff: version.trainingCutoff,
        horizon_days: version.horizonDays,
        feature_list: JSON.stringify(version.featureList),
        code_version: version.codeVersion,
        training_data_hash: version.trainingDataHash,
        metrics: JSON.stringify(version.metrics),
        baseline_metrics: JSON.stringify(version.baselineMetrics),
        decision_reason: version.decisionReason,
        network_id: version.networkId,
        evaluation_network_id: version.evaluationNetworkId,
        output_index: version.outputIndex,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { id: row.id, version: number };
  });
}

/** The new version becomes the one champion of its model; the previous one retires. */
export async function promoteVersion(db: Kysely<Database>, modelId: number, versionId: number, at: Date): Promise<void> {
  await inTransaction(db, async (trx) => {
    await trx
      .updateTable('model_versions')
      .set({ status: 'retired' })
      .where('model_id', '=', modelId)
      .where('status', '=', 'champion')
      .execute();
    await trx
      .updateTable('model_versions')
      .set({ status: 'champion', promoted_at: at })
      .where('id', '=', versionId)
      .execute();
  });
}
