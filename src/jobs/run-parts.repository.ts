import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/database.ts';
import type { RunPartStatus } from '../registry/registry.table.ts';

/** Another attempt of the same part has started since this one: this one must not record anything. */
export class StaleAttemptError extends Error {}

function superseded(runId: number, part: string, attempt: number): StaleAttemptError {
  return new StaleAttemptError(`attempt ${attempt} of part ${part} of run ${runId} was superseded by a later attempt`);
}

/**
 * Starts an attempt at a part of a run and returns its number, or null when the part has
 * already succeeded (a retry of a job whose work was committed just before its worker died).
 * Each attempt takes the next number: only the latest may complete the part.
 */
export async function claimPart(db: Kysely<Database>, runId: number, part: string, worker: string, now: Date): Promise<number | null> {
  const { rows } = await sql<{ attempt: number }>`
    INSERT INTO pipeline_run_parts AS p (run_id, part, status, attempt, worker, started_at)
    VALUES (${runId}, ${part}, 'running', 1, ${worker}, ${now})
    ON CONFLICT (run_id, part) DO UPDATE
      SET attempt = p.attempt + 1, status = 'running', worker = excluded.worker, started_at = excluded.started_at,
          finished_at = NULL, error = NULL
      WHERE p.status <> 'succeeded'
    RETURNING attempt`.execute(db);
  return rows[0]?.attempt ?? null;
}

/** Records a part as done with its output, in the caller's transaction; refuses a superseded attempt. */
export async function completePart(
  trx: Kysely<Database>,
  runId: number,
  part: string,
  attempt: number,
  now: Date,
  result: { rows: number; output: Record<string, unknown> },
): Promise<void> {
  const done = await trx
    .updateTable('pipeline_run_parts')
    .set({ status: 'succeeded', finished_at: now, rows: result.rows, output: JSON.stringify(result.output) })
    .where('run_id', '=', runId)
    .where('part', '=', part)
    .where('attempt', '=', attempt)
    .where('status', '=', 'running')
    .returning('part')
    .executeTakeFirst();
  if (!done) throw superseded(runId, part, attempt);
}

/**
 * Locks the part's row for the caller's transaction if this attempt is still the latest: a later
 * attempt's claim then waits for this transaction, and finds the part done if it commits.
 */
export async function lockAttempt(trx: Kysely<Database>, runId: number, part: string, attempt: number): Promise<void> {
  const held = await trx
    .selectFrom('pipeline_run_parts')
    .select('part')
    .where('run_id', '=', runId)
    .where('part', '=', part)
    .where('attempt', '=', attempt)
    .where('status', '=', 'running')
    .forUpdate()
    .executeTakeFirst();
  if (!held) throw superseded(runId, part, attempt);
}

export async function failPart(
  db: Kysely<Database>,
  runId: number,
  part: string,
  attempt: number,
  now: Date,
  error: string,
): Promise<void> {
  await db
    .updateTable('pipeline_run_parts')
    .set({ status: 'failed', finished_at: now, error })
    .where('run_id', '=', runId)
    .where('part', '=', part)
    .where('attempt', '=', attempt)
    .execute();
}

export interface PartRecord {
  part: string;
  status: 'running' | 'succeeded' | 'failed';
  attempt: number;
  rows: number | null;
  output: Record<string, unknown> | null;
  error: string | null;
}

/** The run's parts whose name starts with `prefix` ('score:', 'rank:', 'train'). */
export async function partsOf(db: Kysely<Database>, runId: number, prefix: string): Promise<PartRecord[]> {
  return db
    .selectFrom('pipeline_run_parts')
    .select(['part', 'status', 'attempt', 'rows', 'output', 'error'])
    .where('run_id', '=', runId)
    .where('part', 'like', `${prefix}%`)
    .orderBy('part')
    .execute();
}

/** Locks the run's row until the transaction ends: the last part to finish is decided once. */
export async function lockRun(trx: Kysely<Database>, runId: number): Promise<void> {
  await sql`SELECT id FROM pipeline_runs WHERE id = ${runId} FOR UPDATE`.execute(trx);
}

/** One job of a run: 'train', 'score:<shard>', 'rank:<score set>' or 'publish'. */
export interface RunPart {
  part: string;
  status: RunPartStatus;
  attempt: number;
  worker: string | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  rows: number | null;
  error: string | null;
}

/** The parts of one run in the order they run: train, the score shards by number, rank, publish. */
export async function runParts(db: Kysely<Database>, runId: number): Promise<RunPart[]> {
  const { rows } = await sql<Record<string, unknown>>`
    SELECT part, status, attempt, worker, started_at, finished_at, rows, error FROM pipeline_run_parts
    WHERE run_id = ${runId}
    ORDER BY CASE split_part(part, ':', 1) WHEN 'train' THEN 0 WHEN 'score' THEN 1 WHEN 'rank' THEN 2 WHEN 'publish' THEN 3 ELSE 4 END,
      length(part), part`.execute(db);
  return rows.map((row) => ({
    part: row.part as string,
    status: row.status as RunPartStatus,
    attempt: Number(row.attempt),
    worker: (row.worker as string | null) ?? null,
    startedAt: (row.started_at as Date | null) ?? null,
    finishedAt: (row.finished_at as Date | null) ?? null,
    rows: row.rows === null || row.rows === undefined ? null : Number(row.rows),
    error: (row.error as string | null) ?? null,
  }));
}
