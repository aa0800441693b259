import type { Command } from 'commander';
import type { Kysely } from 'kysely';
import type { AppContext } from '../context.ts';
import type { Database } from '../db/database.ts';
import type { describeRunWithoutWorker, WorkerPresence } from '../jobs/worker-presence.repository.ts';
import type { RunDetail, RunListEntry } from '../registry/pipeline-runs.repository.ts';
import { positiveInteger, UserError, withContext } from './cli-context.ts';

/*
 * `cible runs list|show`: what the pipeline runs did, inline or through the job queue, and
 * each part of a queued run (train, score shards, rank, publish). Registry data only: no
 * personal data is read.
 */

export type { RunListEntry, RunPartEntry } from '../registry/pipeline-runs.repository.ts';

/** What `runs list --json` prints per run (its documented shape). */
export type RunListJson = Pick<
  RunListEntry,
  'id' | 'kind' | 'driver' | 'status' | 'trigger' | 'asOf' | 'createdAt' | 'startedAt' | 'finishedAt' | 'seconds' | 'partCounts'
>;

/** What `runs show` prints: the run without its report, with its target outcomes counted. */
export interface RunShowEntry extends RunListJson, Pick<RunDetail, 'horizonDays' | 'shards' | 'heartbeatAt' | 'error' | 'parts'> {
  /** how many targets ended in each status, from the run's summary (succeeded runs) */
  targets: { total: number; byStatus: Record<string, number> };
}

function listJson(run: RunListEntry): RunListJson {
  const { id, kind, driver, status, trigger, asOf, createdAt, startedAt, finishedAt, seconds, partCounts } = run;
  return { id, kind, driver, status, trigger, asOf, createdAt, startedAt, finishedAt, seconds, partCounts };
}

/** Opens a context for one command; tests pass one on their own database. */
export type ContextOpener = <T>(run: (context: AppContext) => Promise<T>) => Promise<T>;

const openContext: ContextOpener = (run) => withContext({ migrate: true }, run);

export const DEFAULT_RUNS_LIMIT = 20;

/** A run id as typed: a positive whole number, refused before the database is asked. */
export function parseRunId(value: string): number {
  if (!/^[1-9]\d{0,14}$/.test(value.trim()))
    throw new UserError(`the run id is a positive whole number (see cible runs list), got "${value}"`);
  return Number(value.trim());
}

const secondsBetween = (from: Date | null, to: Date | null) => (from && to ? (to.getTime() - from.getTime()) / 1000 : null);

// the repository (and kysely with it) is loaded with the queries, not when the command is defined
const runsRepository = () => import('../registry/pipeline-runs.repository.ts');

/** The latest runs, newest first. */
export async function listRuns(db: Kysely<Database>, limit: number): Promise<RunListEntry[]> {
  return (await runsRepository()).listRuns(db, limit);
}

/** One run with its parts in the order they run (train, score shards, rank, publish); null if unknown. */
export async function showRun(db: Kysely<Database>, id: number): Promise<RunShowEntry | null> {
  const run = await (await runsRepository()).findRun(db, id);
  if (!run) return null;
  const byStatus = run.outcomes;
  const { horizonDays, shards, heartbeatAt, error, parts } = run;
  return {
    ...listJson(run),
    horizonDays,
    shards,
    heartbeatAt,
    error,
    parts,
    targets: { total: Object.values(byStatus).reduce((sum, n) => sum + n, 0), byStatus },
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
function runDuration(run: RunListJson, now: Date): string {
  if (run.seconds !== null) return formatDuration(run.seconds);
  if (run.startedAt && (run.status === 'running' || run.status === 'queued'))
    return `${formatDuration(secondsBetween(run.startedAt, now))}+`;
  return '-';
}

const partsDone = (parts: RunListEntry['partCounts']) =>
  parts.total === 0 ? '-' : `${parts.succeeded}/${parts.total}${parts.failed > 0 ? ` (${parts.failed} failed)` : ''}`;

/** An error on one line (the full text is in --json). */
const oneLine = (text: string | null) => (text ? text.replace(/\s+/g, ' ').trim() : '');

function table(header: string[], rows: string[][], rightAligned: ReadonlySet<number>): string[] {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        column === cells.length - 1 ? cell : rightAligned.has(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!),
      )
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

export function formatRunList(runs: readonly RunListJson[], now: Date): string {
  if (runs.length === 0) return 'no pipeline run yet: cible pipeline run';
  return table(
    ['id', 'kind', 'driver', 'status', 'trigger', 'as of (UTC)', 'started (UTC)', 'finished (UTC)', 'duration', 'parts done'],
    runs.map((run) => [
      String(run.id),
      run.kind,
      run.driver,
      run.status,
      run.trigger,
      when(run.asOf),
      when(run.startedAt),
      when(run.finishedAt),
      runDuration(run, now),
      partsDone(run.partCounts),
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
          part.part,
          part.status,
          String(part.attempt),
          part.worker ?? '-',
          when(part.startedAt),
          part.seconds === null ? '-' : part.seconds.toFixed(1),
          part.rows === null ? '-' : String(part.rows),
          oneLine(part.error),
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
            return { ...listJson(run), withoutWorker: wait ? { since: wait.since, seconds: wait.seconds } : null };
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
    .description(
      'end a queued or running run (one whose process was killed, say): marked cancelled, what it wrote and never published dropped',
    )
    .option('--json', 'print JSON')
    .action((value: string, flags: { json?: boolean }) => {
      const id = parseRunId(value);
      return open(async (context) => {
        const { cancelRun, RunRequestError } = await runsRepository();
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
