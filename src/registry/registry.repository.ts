import { hostname } from 'node:os';
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

/** A cancel or a date check refused, with a message meant for the person who asked. */
export class RunRequestError extends Error {
  constructor(
    readonly status: 400 | 404 | 409,
    message: string,
  ) {
    super(message);
  }
}

/** The earliest and latest instants a run may be dated at: before 2000 or beyond a day ahead is a typing error. */
export const EARLIEST_RUN_DATE = new Date('2000-01-01T00:00:00Z');

/** Refuses a run date outside a sane range, naming the field (`where`) and the range. */
export function checkRunDate(asOf: Date, now: Date, where: string): void {
  if (Number.isNaN(asOf.getTime())) throw new RunRequestError(400, `${where} is not a valid date`);
  if (asOf < EARLIEST_RUN_DATE) {
    throw new RunRequestError(
      400,
      `${where} ${asOf.toISOString().slice(0, 10)} is before ${EARLIEST_RUN_DATE.toISOString().slice(0, 10)}: not a date a run can look back to`,
    );
  }
  if (asOf > now) throw new RunRequestError(400, `${where} ${asOf.toISOString()} is in the future; a run can only look back`);
}

/** Where this process runs: an inline run records it so that its death is recognised at once on this host. */
export interface RunProcess {
  host: string;
  pid: number;
  /** whether a process with this pid exists on this host */
  isAlive(pid: number): boolean;
}

export const THIS_PROCESS: RunProcess = {
  host: hostname(),
  pid: process.pid,
  isAlive(pid) {
    try {
      process.kill(pid, 0);
      return true;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'EPERM';
    }
  },
};

/**
 * Records a new run, refused with PipelineBusyError while another is queued or running (a
 * unique index decides, so two triggers at once on any machines cannot both start). A run
 * whose process died is recognised first and marked failed, so that it cannot block the
 * pipeline: at once when it ran inline on this host and its process is gone, else by a
 * heartbeat older than `staleAfterSeconds`. Once the new run holds the one-active slot, what
 * dead runs left behind (score tables, networks, snapshot rows) is dropped.
 */
export async function createRun(
  db: Kysely<Database>,
  run: RunStart,
  staleAfterSeconds = 600,
  here: RunProcess = THIS_PROCESS,
): Promise<number> {
  checkRunDate(run.asOf, run.startedAt, 'the run date (as of)');
  await failDeadRuns(db, run.startedAt, staleAfterSeconds, here);
  let id: number;
  try {
    const inline = run.driver !== 'queue';
    const row = await db
      .insertInto('pipeline_runs')
      .values({
        status: inline ? 'running' : 'queued',
        kind: run.kind,
        trigger: run.trigger,
        as_of: run.asOf,
        horizon_days: run.horizonDays,
        params: JSON.stringify(run.params),
        started_at: inline ? run.startedAt : null,
        driver: run.driver ?? 'inline',
        shards: run.shards ?? 1,
        heartbeat_at: run.startedAt,
        host: inline ? here.host : null,
        pid: inline ? here.pid : null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    id = row.id;
  } catch (error) {
    const constraint = (error as { constraint?: string }).constraint;
    if (constraint === 'pipeline_runs_one_active') {
      const active = await db
        .selectFrom('pipeline_runs')
        .select(['id', 'status'])
        .where('status', 'in', ['queued', 'running'])
        .executeTakeFirst();
      throw new PipelineBusyError(
        active ? `pipeline run ${active.id} is ${active.status}; try again when it has finished` : 'another pipeline run is active',
      );
    }
    if (constraint === 'pipeline_runs_one_per_slot') throw new PipelineBusyError(`a run was already started for ${run.trigger}`);
    throw error;
  }
  await dropRunLeftovers(db);
  return id;
}

async function failDeadRuns(db: Kysely<Database>, now: Date, staleAfterSeconds: number, here: RunProcess): Promise<void> {
  await db
    .updateTable('pipeline_runs')
    .set({
      status: 'failed',
      finished_at: now,
      error: sql<string>`'abandoned: no sign of life since ' || to_char(coalesce(heartbeat_at, created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`,
    })
    .where('status', 'in', ['queued', 'running'])
    .where(sql<boolean>`coalesce(heartbeat_at, created_at) < ${now}::timestamptz - make_interval(secs => ${staleAfterSeconds})`)
    .execute();
  const gone = (await activeInlineRunsHere(db, here)).filter((run) => !processIsAlive(run.pid, here));
  for (const run of gone) {
    await db
      .updateTable('pipeline_runs')
      .set({ status: 'failed', finished_at: now, error: `abandoned: its process (pid ${run.pid} on ${here.host}) is gone` })
      .where('id', '=', run.id)
      .where('status', 'in', ['queued', 'running'])
      .execute();
  }
}

async function activeInlineRunsHere(db: Kysely<Database>, here: RunProcess): Promise<Array<{ id: number; pid: number }>> {
  const rows = await db
    .selectFrom('pipeline_runs')
    .select(['id', 'pid'])
    .where('status', 'in', ['queued', 'running'])
    .where('driver', '=', 'inline')
    .where('host', '=', here.host)
    .where('pid', 'is not', null)
    .execute();
  return rows.map((row) => ({ id: row.id, pid: row.pid as number }));
}

/** This very process counts as alive: a run it started may still be working in it. */
function processIsAlive(pid: number, here: RunProcess): boolean {
  return pid === here.pid || here.isAlive(pid);
}

/**
 * What runs that never published left behind: every score table no published set uses, the
 * networks of failed or cancelled runs that no version uses, and their consent snapshot rows.
 * Only while no run is active, or by the run that holds the one-active slot (it has written
 * nothing yet).
 */
export async function dropRunLeftovers(db: Kysely<Database>): Promise<{ tables: number }> {
  const { rows } = await sql<{ tables: number }>`SELECT drop_unpublished_score_tables() AS tables`.execute(db);
  const ended = db.selectFrom('pipeline_runs').select('id').where('status', 'in', ['failed', 'cancelled']);
  await db
    .deleteFrom('model_networks')
    .where('run_id', 'in', ended)
    .where(({ not, exists, selectFrom }) =>
      not(
        exists(
          selectFrom('model_versions as v')
            .select('v.id')
            .where(sql<boolean>`v.network_id = model_networks.id OR v.evaluation_network_id = model_networks.id`),
        ),
      ),
    )
    .execute();
  await db.deleteFrom('profiling_snapshots').where('run_id', 'in', ended).execute();
  return { tables: Number(rows[0]?.tables ?? 0) };
}

export interface CancelledRun {
  runId: number;
  /** the status the run had */
  was: 'queued' | 'running';
  /** score tables dropped */
  tablesDropped: number;
}

/**
 * Ends a queued or running run: marked cancelled (it can no longer publish: finishRun refuses),
 * and what it wrote is dropped. A run still alive in another process on this host is refused:
 * stop that process first (its run would be cancelled under it).
 */
export async function cancelRun(db: Kysely<Database>, runId: number, now: Date, here: RunProcess = THIS_PROCESS): Promise<CancelledRun> {
  const run = await db
    .selectFrom('pipeline_runs')
    .select(['id', 'status', 'driver', 'host', 'pid'])
    .where('id', '=', runId)
    .executeTakeFirst();
  if (!run) throw new RunRequestError(404, `no pipeline run has id ${runId} (see cible runs list)`);
  if (run.status !== 'queued' && run.status !== 'running')
    throw new RunRequestError(409, `pipeline run ${runId} is already ${run.status}: only a queued or running run can be cancelled`);
  if (run.driver === 'inline' && run.host === here.host && run.pid !== null && run.pid !== here.pid && here.isAlive(run.pid)) {
    throw new RunRequestError(409, `pipeline run ${runId} is still working in process ${run.pid} on this host: stop that process first`);
  }
  const updated = await db
    .updateTable('pipeline_runs')
    .set({ status: 'cancelled', finished_at: now, error: 'cancelled' })
    .where('id', '=', runId)
    .where('status', 'in', ['queued', 'running'])
    .executeTakeFirst();
  if (Number(updated.numUpdatedRows) === 0) throw new RunRequestError(409, `pipeline run ${runId} ended while it was being cancelled`);
  const { tables } = await dropRunLeftovers(db);
  return { runId, was: run.status, tablesDropped: tables };
}

/** Keeps a run's heartbeat fresh while this process works on it. */
export function startHeartbeat(db: Kysely<Database>, runId: number, now: () => Date, everyMs = 15_000): { stop(): void } {
  const beat = () =>
    db
      .updateTable('pipeline_runs')
      .set({ heartbeat_at: now() })
      .where('id', '=', runId)
      .execute()
      .catch(() => undefined);
  const timer = setInterval(beat, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** The run was cancelled (or marked dead) while it worked: it may not publish. */
export class RunNoLongerActiveError extends Error {}

/**
 * Records how a run ended, only while it is still queued or running: a run cancelled under
 * its process stays cancelled, and its publishing transaction fails (nothing becomes visible).
 */
export async function finishRun(
  db: Kysely<Database>,
  runId: number,
  outcome: { status: 'succeeded' | 'failed'; finishedAt: Date; summary: Record<string, unknown>; error?: string },
): Promise<void> {
  const result = await db
    .updateTable('pipeline_runs')
    .set({
      status: outcome.status,
      finished_at: outcome.finishedAt,
      summary: JSON.stringify(outcome.summary),
      error: outcome.error ?? null,
    })
    .where('id', '=', runId)
    // a cancelled or failed run stays so; recording a success again only rewrites its summary
    .where('status', 'in', outcome.status === 'succeeded' ? ['queued', 'running', 'succeeded'] : ['queued', 'running'])
    .executeTakeFirst();
  if (outcome.status === 'succeeded' && Number(result.numUpdatedRows) === 0) {
    throw new RunNoLongerActiveError(`pipeline run ${runId} was cancelled or ended while it worked: nothing was published`);
  }
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
    await trx.updateTable('model_versions').set({ status: 'champion', promoted_at: at }).where('id', '=', versionId).execute();
  });
}
