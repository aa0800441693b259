import type { Command } from 'commander';
import type { Kysely } from 'kysely';
import type { RunPart } from '../jobs/run-parts.repository.ts';
import type { describeRunWithoutWorker, WorkerPresence } from '../jobs/worker-presence.repository.ts';
import type { AppContext } from '../context.ts';
import type { Database } from '../db/database.ts';
import type { PipelineRunStatus, RunPartStatus } from '../registry/registry.table.ts';
import { positiveInteger, UserError, withContext } from './cli-context.ts';

/*
 * `cible runs list|show`: what the pipeline runs did, inline or through the job queue, and
 * each part of a queued run (train, score shards, rank, publish). Registry data only: no
 * personal data is read.
 */

export interface RunListEntry {
  id: number;
  kind: 'pipeline' | 'backtest';
  driver: 'inline' | 'queue';
  status: PipelineRunStatus;
  trigger: string;
  asOf: Date;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** finished − started, null while unfinished */
  seconds: number | null;
  /** parts recorded so far (a part is recorded when a worker takes it) */
  partCounts: { succeeded: number; failed: number; running: number; total: number };
}

export interface RunPartEntry extends RunPart {
  seconds: number | null;
}

export interface RunShowEntry extends RunListEntry {
  horizonDays: number | null;
  shards: number | null;
  heartbeatAt: Date | null;
  error: string | null;
  parts: RunPartEntry[];
  /** how many targets ended in each status, from the run's summary (succeeded runs) */
  targets: { total: number; byStatus: Record<string, number> };
}

/** Opens a context for one command; tests pass one on their own database. */
export type ContextOpener = <T>(run: (context: AppContext) => Promise<T>) => Promise<T>;

const openContext: ContextOpener = (run) => withContext({ migrate: true }, run);

export const DEFAULT_RUNS_LIMIT = 20;

/** A run id as typed: a positive whole number, refused before the database is asked. */
export function parseRunId(value: string): number {
  if (!/^[1-9]\d{0,14}$/.test(value.trim())) throw new UserError(`the run id is a positive whole number (see cible runs list), got "${value}"`);
  return Number(value.trim());
}

const secondsBetween = (from: Date | null, to: Date | null) => (from && to ? (to.getTime() - from.getTime()) / 1000 : null);
const num = (value: unknown) => (value === null || value === undefined ? null : Number(value));

// plain SQL text: kysely's sql tag is loaded with the queries, not when the command is defined
const RUN_COLUMNS = `r.id, r.kind, r.driver, r.status, r.trigger, r.as_of, r.created_at, r.started_at, r.finished_at,
  p.succeeded, p.failed, p.running, p.total`;
const PART_COUNTS = `LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded,
           count(*) FILTER (WHERE status = 'failed')::int AS failed,
           count(*) FILTER (WHERE status = 'running')::int AS running,
           count(*)::int AS total
    FROM pipeline_run_parts WHERE run_id = r.id) p ON true`;

function listEntry(row: Record<string, unknown>): RunListEntry {
  const startedAt = (row.started_at as Date | null) ?? null;
  const finishedAt = (row.finished_at as Date | null) ?? null;
  return {
    id: Number(row.id),
    kind: row.kind as RunListEntry['kind'],
    driver: row.driver as RunListEntry['driver'],
    status: row.status as PipelineRunStatus,
    trigger: row.trigger as string,
    asOf: row.as_of as Date,
    createdAt: row.created_at as Date,
    startedAt,
    finishedAt,
    seconds: secondsBetween(startedAt, finishedAt),
    partCounts: { succeeded: Number(row.succeeded ?? 0), failed: Number(row.failed ?? 0), running: Number(row.running ?? 0), total: Number(row.total ?? 0) },
  };
}

/** The latest runs, newest first. */
export async function listRuns(db: Kysely<Database>, limit: number): Promise<RunListEntry[]> {
  const { sql } = await import('kysely');
  const { rows } = await sql<Record<string, unknown>>`
    SELECT ${sql.raw(RUN_COLUMNS)} FROM pipeline_runs r ${sql.raw(PART_COUNTS)}
    ORDER BY r.id DESC LIMIT ${limit}`.execute(db);
  return rows.map(listEntry);
}

/** One run with its parts in the order they run (train, score shards, rank, publish); null if unknown. */
export async function showRun(db: Kysely<Database>, id: number): Promise<RunShowEntry | null> {
  const [{ sql }, { runParts }] = await Promise.all([import('kysely'), import('../jobs/run-parts.repository.ts')]);
  const { rows } = await sql<Record<string, unknown>>`
    SELECT ${sql.raw(RUN_COLUMNS)}, r.horizon_days, r.shards, r.heartbeat_at, r.error,
      (SELECT jsonb_object_agg(s, n) FROM (SELECT coalesce(t ->> 'status', 'unknown') AS s, count(*)::int AS n
         FROM jsonb_array_elements(CASE WHEN jsonb_typeof(r.summary -> 'targets') = 'array' THEN r.summary -> 'targets' ELSE '[]'::jsonb END) t
         GROUP BY 1) o) AS outcomes
    FROM pipeline_runs r ${sql.raw(PART_COUNTS)} WHERE r.id = ${id}`.execute(db);
  const row = rows[0];
  if (!row) return null;
  const parts = await runParts(db, id);
  const byStatus = (row.outcomes as Record<string, number> | null) ?? {};
  return {
    ...listEntry(row),
    horizonDays: num(row.horizon_days),
    shards: num(row.shards),
    heartbeatAt: (row.heartbeat_at as Date | null) ?? null,
    error: (row.error as string | null) ?? null,
    parts: parts.map((part) => ({ ...part, seconds: secondsBetween(part.startedAt, part.finishedAt) })),
    targets: { total: Object.values(byStatus).reduce((sum, n) => sum + Number(n), 0), byStatus },
  };
}

// ---- printing -----------------------------------------------------------------------------

/** UTC, to the second; the tables say "(UTC)" in their headers */
const when = (date: Date | null) => (date ? date.toISOString().slice(0, 19).replace('T', ' ') : '-');
const whenUtc = (date: Date | null) => (date ? `${when(date)} UTC` : '-');

/** 12.3 s, 4.2 min, 1.5 h; '-' when unknown */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '-';
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** An unfinished run's duration so far, marked with a "+". */
function runDuration(run: RunListEntry, now: Date): string {
  if (run.seconds !== null) return formatDuration(run.seconds);
  if (run.startedAt && (run.status === 'running' || run.status === 'queued')) return `${formatDuration(secondsBetween(run.startedAt, now))}+`;
  return '-';
}

const partsDone = (parts: RunListEntry['partCounts']) => (parts.total === 0 ? '-' : `${parts.succeeded}/${parts.total}${parts.failed > 0 ? ` (${parts.failed} failed)` : ''}`);

/** An error on one line (the full text is in --json). */
const oneLine = (text: string | null) => (text ? text.replace(/\s+/g, ' ').trim() : '');

function table(header: string[], rows: string[][], rightAligned: ReadonlySet<number>): string[] {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : rightAligned.has(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

export function formatRunList(runs: readonly RunListEntry[], now: Date): string {
  if (runs.length === 0) return 'no pipeline run yet: cible pipeline run';
  return table(
    ['id', 'kind', 'driver', 'status', 'trigger', 'as of (UTC)', 'started (UTC)', 'finished (UTC)', 'duration', 'parts done'],
    runs.map((run) => [
      String(run.id), run.kind, run.driver, run.status, run.trigger, when(run.asOf), when(run.startedAt), when(run.finishedAt), runDuration(run, now), partsDone(run.partCounts),
    ]),
    new Set([0, 8]),
  ).join('\n');
}

export function formatRun(run: RunShowEntry, now: Date): string {
  const lines = [
    `run ${run.id}: ${run.kind}, ${run.status}`,
    `  driver      ${run.driver}${run.shards === null ? '' : `, ${run.shards} scoring shard${run.shards === 1 ? '' : 's'}`}`,
    `  trigger     ${run.trigger}`,
    `  as of       ${whenUtc(run.asOf)}${run.horizonDays === null ? '' : `, horizon ${run.horizonDays} days`}`,
    `  created     ${whenUtc(run.createdAt)}`,
    `  started     ${whenUtc(run.startedAt)}`,
    `  finished    ${whenUtc(run.finishedAt)} (${runDuration(run, now)})`,
  ];
  if (run.heartbeatAt) lines.push(`  heartbeat   ${whenUtc(run.heartbeatAt)}`);
  if (run.error) lines.push(`  error       ${oneLine(run.error)}`);
  lines.push('');
  if (run.parts.length === 0) {
    lines.push(run.driver === 'queue' ? 'parts: none taken by a worker yet' : 'parts: none (an inline run records no parts)');
  } else {
    lines.push(`parts: ${partsDone(run.partCounts)} done`);
    lines.push(
      ...table(
        ['part', 'status', 'attempt', 'worker', 'started (UTC)', 'seconds', 'rows', 'error'],
        run.parts.map((part) => [
          part.part, part.status, String(part.attempt), part.worker ?? '-', when(part.startedAt),
          part.seconds === null ? '-' : part.seconds.toFixed(1), part.rows === null ? '-' : String(part.rows), oneLine(part.error),
        ]),
        new Set([2, 5, 6]),
      ).map((line) => `  ${line}`),
    );
  }
  lines.push('');
  const outcomes = Object.entries(run.targets.byStatus)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([status, n]) => `${n} ${status}`);
  lines.push(run.targets.total === 0 ? 'targets: none recorded' : `targets: ${run.targets.total} (${outcomes.join(', ')})`);
  return lines.join('\n');
}

/** A blank line then one line per run that waits on no live worker; nothing when none waits. */
export function formatWorkerWarnings(presence: WorkerPresence, describe: typeof describeRunWithoutWorker): string[] {
  if (presence.runsWithoutWorker.length === 0) return [];
  return ['', ...presence.runsWithoutWorker.map((run) => `warning: ${describe(run, presence.lastHeartbeatAt)}`)];
}

export function registerRunsCommands(program: Command, open: ContextOpener = openContext): void {
  const runs = program.command('runs').description('pipeline runs and their parts: what ran, where, how long, what failed');

  runs
    .command('list')
    .description('the latest runs, newest first, with their driver and how many of their parts are done')
    .option('--limit <n>', `how many runs (default ${DEFAULT_RUNS_LIMIT})`, positiveInteger('--limit'))
    .option('--json', 'print JSON')
    .action((flags: { limit?: number; json?: boolean }) =>
      open(async (context) => {
        const now = context.clock.now();
        const listing = await listRuns(context.database.db, flags.limit ?? DEFAULT_RUNS_LIMIT);
        const { describeRunWithoutWorker, workerPresence } = await import('../jobs/worker-presence.repository.ts');
        const presence = await workerPresence(context.database.db, now, context.config.jobs.workerAbsentSeconds);
        if (flags.json) {
          const waiting = new Map(presence.runsWithoutWorker.map((run) => [run.runId, run]));
          const entries = listing.map((run) => {
            const wait = waiting.get(run.id);
            return { ...run, withoutWorker: wait ? { since: wait.since, seconds: wait.seconds } : null };
          });
          console.log(JSON.stringify(entries, null, 2));
        } else {
          console.log([formatRunList(listing, now), ...formatWorkerWarnings(presence, describeRunWithoutWorker)].join('\n'));
        }
      }),
    );

  runs
    .command('show <id>')
    .description('one run: its driver and shards, each part (status, attempt, worker, time, rows, error) and its target outcomes')
    .option('--json', 'print JSON')
    .action((value: string, flags: { json?: boolean }) => {
      const id = parseRunId(value);
      return open(async (context) => {
        const run = await showRun(context.database.db, id);
        if (!run) throw new UserError(`no pipeline run ${id}; see cible runs list`);
        console.log(flags.json ? JSON.stringify(run, null, 2) : formatRun(run, context.clock.now()));
      });
    });

  runs
    .command('cancel <id>')
    .description('end a queued or running run (one whose process was killed, say): marked cancelled, what it wrote and never published dropped')
    .option('--json', 'print JSON')
    .action((value: string, flags: { json?: boolean }) => {
      const id = parseRunId(value);
      return open(async (context) => {
        const { cancelRun, RunRequestError } = await import('../registry/registry.repository.ts');
        const cancelled = await cancelRun(context.database.db, id, context.clock.now()).catch((error: unknown) => {
          throw error instanceof RunRequestError ? new UserError(error.message) : error;
        });
        console.log(
          flags.json
            ? JSON.stringify(cancelled, null, 2)
            : `run ${cancelled.runId} cancelled (it was ${cancelled.was}); ${cancelled.tablesDropped} unpublished score table(s) dropped`,
        );
      });
    });
}
