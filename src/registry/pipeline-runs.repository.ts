import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/database.ts';
import { type RunPart, runParts } from '../jobs/run-parts.repository.ts';
import { jsonNumber } from './model-metrics.ts';
import type { PipelineRunStatus } from './registry.table.ts';
import {
  type RecordedFunnel,
  readConsentFunnel,
  readStages,
  readTargetOutcomes,
  type StageTiming,
  type TargetOutcome,
} from './run-summary.ts';

/*
 * The one place pipeline runs are read: `cible runs`, GET /v1/pipeline/runs/{id}, the review
 * pages' runs list and run page. Registry data only, no personal data. Writing runs (create,
 * finish, cancel) stays in registry.repository.ts.
 */

export type { RunPart } from '../jobs/run-parts.repository.ts';
export { cancelRun, RunRequestError } from './registry.repository.ts';
export type { RecordedFunnel, StageTiming, TargetOutcome } from './run-summary.ts';

export interface RunListEntry {
  id: number;
  kind: 'pipeline' | 'backtest';
  driver: 'inline' | 'queue';
  status: PipelineRunStatus;
  trigger: string;
  asOf: Date;
  horizonDays: number | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** finished − started, null while unfinished */
  seconds: number | null;
  error: string | null;
  /** parts recorded so far (a part is recorded when a worker takes it) */
  partCounts: { succeeded: number; failed: number; running: number; total: number };
  /** people in the run's consent snapshot, once recorded */
  population: number | null;
  stages: StageTiming[];
  /** how many targets ended in each status */
  outcomes: Record<string, number>;
}

export interface RunPartEntry extends RunPart {
  seconds: number | null;
}

export interface RunDetail extends RunListEntry {
  params: Record<string, unknown>;
  /** the run's report as written, for the API (the typed parts are read below) */
  summary: Record<string, unknown>;
  shards: number | null;
  heartbeatAt: Date | null;
  backend: string | null;
  peakRssMb: number | null;
  targets: TargetOutcome[];
  /** the jobs of a queued run, in the order they run */
  parts: RunPartEntry[];
}

const secondsBetween = (from: Date | null, to: Date | null) => (from && to ? (to.getTime() - from.getTime()) / 1000 : null);

const LIST_COLUMNS = sql`r.id, r.kind, r.driver, r.status, r.trigger, r.as_of, r.horizon_days, r.created_at, r.started_at, r.finished_at, r.error,
  r.summary -> 'population' AS population, r.summary -> 'stages' AS stages,
  p.succeeded, p.failed, p.running, p.total,
  (SELECT jsonb_object_agg(s, n) FROM (SELECT coalesce(t ->> 'status', 'unknown') AS s, count(*)::int AS n
     FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.summary -> 'targets') = 'array' THEN r.summary -> 'targets' ELSE '[]'::jsonb END) t
     GROUP BY 1) o) AS outcomes`;

const PART_COUNTS = sql`LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded,
           count(*) FILTER (WHERE status = 'failed')::int AS failed,
           count(*) FILTER (WHERE status = 'running')::int AS running,
           count(*)::int AS total
    FROM pipeline_run_parts WHERE run_id = r.id) p ON true`;

function outcomeCounts(json: unknown): Record<string, number> {
  if (json === null || typeof json !== 'object') return {};
  return Object.fromEntries(Object.entries(json).map(([status, n]) => [status, Number(n)]));
}

function listEntry(row: Record<string, unknown>): RunListEntry {
  const startedAt = (row.started_at as Date | null) ?? null;
  const finishedAt = (row.finished_at as Date | null) ?? null;
  return {
    id: Number(row.id),
    kind: row.kind === 'backtest' ? 'backtest' : 'pipeline',
    driver: row.driver === 'queue' ? 'queue' : 'inline',
    status: row.status as PipelineRunStatus,
    trigger: String(row.trigger),
    asOf: row.as_of as Date,
    horizonDays: jsonNumber(row.horizon_days),
    createdAt: row.created_at as Date,
    startedAt,
    finishedAt,
    seconds: secondsBetween(startedAt, finishedAt),
    error: (row.error as string | null) ?? null,
    partCounts: {
      succeeded: Number(row.succeeded ?? 0),
      failed: Number(row.failed ?? 0),
      running: Number(row.running ?? 0),
      total: Number(row.total ?? 0),
    },
    population: jsonNumber(row.population),
    stages: readStages(row.stages),
    outcomes: outcomeCounts(row.outcomes),
  };
}

/** The latest runs, newest first; `before` (a run id) pages back. */
export async function listRuns(db: Kysely<Database>, limit: number, before: number | null = null): Promise<RunListEntry[]> {
  const { rows } = await sql<Record<string, unknown>>`
    SELECT ${LIST_COLUMNS} FROM pipeline_runs r ${PART_COUNTS}
    WHERE ${before === null ? sql`true` : sql`r.id < ${before}`}
    ORDER BY r.id DESC LIMIT ${limit}`.execute(db);
  return rows.map(listEntry);
}

/** One run with its report and its parts in the order they run (train, score shards, rank, publish); null if unknown. */
export async function findRun(db: Kysely<Database>, id: number): Promise<RunDetail | null> {
  const { rows } = await sql<Record<string, unknown>>`
    SELECT ${LIST_COLUMNS}, r.params, r.summary, r.shards, r.heartbeat_at
    FROM pipeline_runs r ${PART_COUNTS} WHERE r.id = ${id}`.execute(db);
  const row = rows[0];
  if (!row) return null;
  const summary = row.summary !== null && typeof row.summary === 'object' ? (row.summary as Record<string, unknown>) : {};
  const parts = await runParts(db, id);
  return {
    ...listEntry(row),
    params: row.params !== null && typeof row.params === 'object' ? (row.params as Record<string, unknown>) : {},
    summary,
    shards: jsonNumber(row.shards),
    heartbeatAt: (row.heartbeat_at as Date | null) ?? null,
    backend: typeof summary.backend === 'string' ? summary.backend : null,
    peakRssMb: jsonNumber(summary.peakRssMb),
    targets: readTargetOutcomes(summary.targets),
    parts: parts.map((part) => ({ ...part, seconds: secondsBetween(part.startedAt, part.finishedAt) })),
  };
}

/** The stage timings of the most recent runs, newest first, paged as `listRuns`: a durations chart alone. */
export async function recentRunTimings(
  db: Kysely<Database>,
  limit: number,
  before: number | null,
): Promise<Array<Pick<RunListEntry, 'id' | 'status' | 'stages'>>> {
  const { rows } = await sql<Record<string, unknown>>`
    SELECT r.id, r.status, r.summary -> 'stages' AS stages FROM pipeline_runs r
    WHERE ${before === null ? sql`true` : sql`r.id < ${before}`}
    ORDER BY r.id DESC LIMIT ${limit}`.execute(db);
  return rows.map((row) => ({ id: Number(row.id), status: row.status as PipelineRunStatus, stages: readStages(row.stages) }));
}

/** The stage timings of one run; null when there is no such run. */
export async function runTimings(db: Kysely<Database>, id: number): Promise<StageTiming[] | null> {
  const { rows } = await sql<{ stages: unknown }>`SELECT summary -> 'stages' AS stages FROM pipeline_runs WHERE id = ${id}`.execute(db);
  const row = rows[0];
  return row ? readStages(row.stages) : null;
}

/** The latest finished pipeline run and the rules it applied to select targets. */
export async function latestPipelineRun(
  db: Kysely<Database>,
): Promise<{ id: number; finishedAt: Date | null; params: Record<string, unknown>; horizonDays: number | null } | null> {
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
  const { rows } = await sql<{
    id: number;
    finished_at: Date | null;
    target: string;
    status: string;
    reason: string | null;
    version: unknown;
  }>`
    SELECT r.id, r.finished_at, t ->> 'target' AS target, t ->> 'status' AS status, t ->> 'reason' AS reason, t -> 'version' AS version
    FROM (SELECT id, finished_at, summary FROM pipeline_runs
          WHERE kind = 'pipeline' AND status = 'succeeded' ORDER BY id DESC LIMIT 1) r,
         jsonb_array_elements(CASE WHEN jsonb_typeof(r.summary -> 'targets') = 'array' THEN r.summary -> 'targets' ELSE '[]'::jsonb END) t
    WHERE ${only === undefined ? sql`true` : sql`t ->> 'target' = ${only}`}`.execute(db);
  return new Map(
    rows.map((row) => [
      row.target,
      {
        runId: Number(row.id),
        runFinishedAt: row.finished_at,
        status: row.status,
        reason: row.reason ?? '',
        version: jsonNumber(row.version),
      },
    ]),
  );
}

/** The consent funnel a run recorded when it scored (counts only). */
export async function runConsentFunnel(db: Kysely<Database>, runId: number): Promise<RecordedFunnel | null> {
  const { rows } = await sql<{
    funnel: unknown;
  }>`SELECT summary -> 'consentFunnel' AS funnel FROM pipeline_runs WHERE id = ${runId}`.execute(db);
  return readConsentFunnel(rows[0]?.funnel);
}

/** A run's status; null when there is no such run. */
export async function runStatus(db: Kysely<Database>, id: number): Promise<PipelineRunStatus | null> {
  const row = await db.selectFrom('pipeline_runs').select('status').where('id', '=', id).executeTakeFirst();
  return row?.status ?? null;
}
