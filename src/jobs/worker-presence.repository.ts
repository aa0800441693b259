import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/database.ts';

/*
 * Worker heartbeats, and the runs that wait for a worker while none is live. A worker process
 * refreshes its row every few seconds (worker.ts); a worker whose heartbeat is older than
 * `absentAfterSeconds` (config.jobs.workerAbsentSeconds) is not live.
 */

/** Records that `worker` is alive now (its first beat also records when it started). */
export async function recordHeartbeat(db: Kysely<Database>, worker: string, now: Date): Promise<void> {
  await db
    .insertInto('job_workers')
    .values({ worker, started_at: now, heartbeat_at: now, stopped_at: null })
    .onConflict((conflict) => conflict.column('worker').doUpdateSet({ heartbeat_at: now, stopped_at: null }))
    .execute();
}

/** A worker that stops cleanly says so: it is not live from now on. */
export async function recordWorkerStopped(db: Kysely<Database>, worker: string, now: Date): Promise<void> {
  await db.updateTable('job_workers').set({ stopped_at: now }).where('worker', '=', worker).execute();
}

/** Forgets workers last seen before `before` (one row per process start would pile up). */
export async function forgetWorkersSeenBefore(db: Kysely<Database>, before: Date): Promise<void> {
  await db.deleteFrom('job_workers').where(sql<boolean>`coalesce(stopped_at, heartbeat_at) < ${before}`).execute();
}

/** A queued-run's wait with no live worker, beyond the threshold. */
export interface RunWithoutWorker {
  runId: number;
  status: 'queued' | 'running';
  /** since when the run has had no live worker: the later of the run's last sign of life (queued, or its parts' heartbeat) and the last worker's */
  since: Date;
  seconds: number;
}

export interface WorkerPresence {
  /** workers whose heartbeat is younger than the threshold and that have not stopped */
  liveWorkers: number;
  /** the latest sign of life of any worker (a heartbeat, or a clean stop), null when none ever ran */
  lastHeartbeatAt: Date | null;
  /** queued runs (and queued runs' parts, while running) that have had no live worker for longer than the threshold */
  runsWithoutWorker: RunWithoutWorker[];
}

/**
 * Who works on the job queue now, and which runs of the queue wait on nobody: a run queued
 * (or running, its next parts queued) through the job queue while no worker has been live
 * for more than `absentAfterSeconds`. Inline runs need no worker and are never listed.
 */
export async function workerPresence(db: Kysely<Database>, now: Date, absentAfterSeconds: number): Promise<WorkerPresence> {
  const { rows } = await sql<{
    live: number;
    last_seen: Date | null;
    runs: Array<{ id: number; status: 'queued' | 'running'; since: string }> | null;
  }>`
    WITH workers AS (
      SELECT count(*) FILTER (WHERE stopped_at IS NULL AND heartbeat_at > ${now}::timestamptz - make_interval(secs => ${absentAfterSeconds}))::int AS live,
             max(coalesce(stopped_at, heartbeat_at)) AS last_seen
      FROM job_workers
    )
    SELECT w.live, w.last_seen,
      (SELECT jsonb_agg(jsonb_build_object('id', r.id, 'status', r.status, 'since', greatest(coalesce(r.heartbeat_at, r.created_at), w.last_seen)) ORDER BY r.id)
       FROM pipeline_runs r
       WHERE w.live = 0 AND r.driver = 'queue' AND r.status IN ('queued', 'running')
         AND greatest(coalesce(r.heartbeat_at, r.created_at), w.last_seen) < ${now}::timestamptz - make_interval(secs => ${absentAfterSeconds})) AS runs
    FROM workers w`.execute(db);
  const row = rows[0];
  const lastSeen = row?.last_seen ? new Date(row.last_seen) : null;
  return {
    liveWorkers: Number(row?.live ?? 0),
    lastHeartbeatAt: lastSeen,
    runsWithoutWorker: (row?.runs ?? []).map((run) => {
      const since = new Date(run.since);
      return { runId: Number(run.id), status: run.status, since, seconds: (now.getTime() - since.getTime()) / 1000 };
    }),
  };
}

/** One line a person reads: what waits, since when, and what to do. */
export function describeRunWithoutWorker(run: RunWithoutWorker, lastHeartbeatAt: Date | null): string {
  const minutes = run.seconds < 120 ? `${Math.round(run.seconds)} s` : `${(run.seconds / 60).toFixed(1)} min`;
  const last = lastHeartbeatAt ? `the last worker was seen at ${lastHeartbeatAt.toISOString()}` : 'no worker has ever run on this database';
  return `pipeline run ${run.runId} is ${run.status} but no worker has been live for ${minutes} (${last}): start one with \`cible worker\` or \`cible serve --with-worker\``;
}
