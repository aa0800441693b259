import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { createMiddleware } from 'hono/factory';
import { matchedRoutes } from 'hono/route';
import { type Kysely, sql } from 'kysely';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Clock } from '../clock.ts';
import type { Database } from '../db/database.ts';
import { type WorkerPresence, workerPresence } from '../jobs/worker-presence.repository.ts';
import type { Logger } from '../logger.ts';
import type { ApiDependencies, AppEnv } from './api-env.ts';

/*
 * Prometheus metrics, in the text format at GET /metrics (no key, like /health: counts only,
 * never a contact). Several API and worker processes share one database, so the pipeline and
 * target-list figures are read from the database at scrape time and are the same whichever
 * process is scraped; only the HTTP and process metrics belong to the scraped process.
 */

const PART_KINDS = ['train', 'score', 'rank', 'publish'];
const PART_STATUSES = ['running', 'succeeded', 'failed'];
const RUN_KINDS = ['pipeline', 'backtest'];
const RUN_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
/** succeeded runs the duration quantiles are taken over */
const RECENT_RUNS = 30;
const HTTP_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** What the database says at one scrape. */
export interface DatabaseFigures {
  parts: Array<{ partKind: string; status: string; jobs: number; retries: number }>;
  runs: Array<{ kind: string; status: string; runs: number }>;
  /** durations in seconds of the latest succeeded pipeline runs, newest first, and when the newest finished */
  recentDurations: number[];
  lastSuccessAt: Date | null;
  targetLists: Array<{ channel: string; lists: number }>;
  lastConsentSweepAt: Date | null;
  workers: WorkerPresence;
}

/** Counts and durations only: no query here reads a contact. Workers are live as of `now`. */
export async function readDatabaseFigures(db: Kysely<Database>, now: Date, workerAbsentSeconds: number): Promise<DatabaseFigures> {
  const parts = await db
    .selectFrom('pipeline_run_parts')
    .select([
      sql<string>`split_part(part, ':', 1)`.as('part_kind'),
      'status',
      sql<number>`count(*)::int`.as('jobs'),
      sql<number>`coalesce(sum(attempt - 1), 0)::int`.as('retries'),
    ])
    .groupBy([sql`split_part(part, ':', 1)`, 'status'])
    .execute();
  const runs = await db
    .selectFrom('pipeline_runs')
    .select(['kind', 'status', sql<number>`count(*)::int`.as('runs')])
    .groupBy(['kind', 'status'])
    .execute();
  const recent = await db
    .selectFrom('pipeline_runs')
    .select(['started_at', 'finished_at'])
    .where('kind', '=', 'pipeline')
    .where('status', '=', 'succeeded')
    .where('started_at', 'is not', null)
    .where('finished_at', 'is not', null)
    .orderBy('finished_at', 'desc')
    .orderBy('id', 'desc')
    .limit(RECENT_RUNS)
    .execute();
  // every channel, so a channel with no list yet reads 0 rather than missing
  const targetLists = await db
    .selectFrom('channels')
    .leftJoin('target_exports', 'target_exports.channel', 'channels.code')
    .select(['channels.code as channel', sql<number>`count(target_exports.id)::int`.as('lists')])
    .groupBy('channels.code')
    .execute();
  const sweep = await db.selectFrom('consent_sweeps').select(sql<Date | null>`max(ran_at)`.as('last')).executeTakeFirst();
  const workers = await workerPresence(db, now, workerAbsentSeconds);
  return {
    parts: parts.map((row) => ({ partKind: row.part_kind, status: row.status, jobs: row.jobs, retries: row.retries })),
    runs: runs.map((row) => ({ kind: row.kind, status: row.status, runs: row.runs })),
    recentDurations: recent.map((row) => Math.max(0, (row.finished_at!.getTime() - row.started_at!.getTime()) / 1000)),
    lastSuccessAt: recent[0]?.finished_at ?? null,
    targetLists: targetLists.map((row) => ({ channel: row.channel, lists: row.lists })),
    lastConsentSweepAt: sweep?.last ? new Date(sweep.last) : null,
    workers,
  };
}

/** Linear interpolation between the closest ranks (as PostgreSQL's percentile_cont). */
function quantile(sorted: number[], q: number): number {
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const lower = sorted[below] ?? 0;
  const upper = sorted[Math.min(below + 1, sorted.length - 1)] ?? lower;
  return lower + (upper - lower) * (position - below);
}

/** The route pattern a request matched ('/v1/contacts/:ref'), never its path; 'unmatched' for a 404 no route answered. */
function routeLabel(c: Context<AppEnv>): string {
  const last = matchedRoutes(c).at(-1);
  if (!last) return 'unmatched';
  // only middleware matched (method ALL): nothing answered but the not-found handler
  if (last.method === 'ALL' && c.res.status === 404) return 'unmatched';
  return last.path;
}

export interface Metrics {
  registry: Registry;
  /** counts every request by method, route pattern and status */
  httpMiddleware: ReturnType<typeof createMiddleware<AppEnv>>;
  /** the text exposition of every metric, database figures read now */
  scrape(): Promise<string>;
}

/** One registry per app (never prom-client's global one). */
export function createMetrics(deps: { db: Kysely<Database>; logger: Logger; clock: Clock; workerAbsentSeconds: number }): Metrics {
  const { db, logger, clock, workerAbsentSeconds } = deps;
  const registry = new Registry();

  // One database read serves every database gauge of a scrape (and of concurrent scrapes):
  // prom-client starts the collect() of all metrics together, the first one starts the read.
  let reading: Promise<DatabaseFigures | null> | null = null;
  const figures = () => {
    reading ??= readDatabaseFigures(db, clock.now(), workerAbsentSeconds)
      .catch((error: unknown) => {
        logger.warn({ err: { type: error instanceof Error ? error.name : typeof error } }, 'metrics: the database could not be read');
        return null;
      })
      .finally(() => {
        reading = null;
      });
    return reading;
  };

  new Gauge({
    name: 'cible_database_up',
    help: '1 when the database figures of this scrape could be read, else 0 (and the cible_pipeline_* and cible_target_* figures are absent)',
    registers: [registry],
    async collect() {
      this.set((await figures()) ? 1 : 0);
    },
  });

  new Gauge({
    name: 'cible_pipeline_jobs',
    help: 'Jobs (parts) of pipeline runs in the database, by kind (train, score, rank, publish) and status',
    labelNames: ['part_kind', 'status'] as const,
    registers: [registry],
    async collect() {
      const read = await figures();
      this.reset();
      if (!read) return;
      for (const partKind of PART_KINDS) for (const status of PART_STATUSES) this.set({ part_kind: partKind, status }, 0);
      for (const row of read.parts) this.set({ part_kind: row.partKind, status: row.status }, row.jobs);
    },
  });

  new Counter({
    name: 'cible_pipeline_job_retries_total',
    help: 'Retries of pipeline jobs recorded in the database (attempts beyond the first), by job kind',
    labelNames: ['part_kind'] as const,
    registers: [registry],
    async collect() {
      const read = await figures();
      this.reset();
      if (!read) return;
      const byKind = new Map(PART_KINDS.map((kind) => [kind, 0]));
      for (const row of read.parts) byKind.set(row.partKind, (byKind.get(row.partKind) ?? 0) + row.retries);
      for (const [partKind, retries] of byKind) this.inc({ part_kind: partKind }, retries);
    },
  });

  new Gauge({
    name: 'cible_pipeline_runs',
    help: 'Pipeline runs in the database, by kind (pipeline, backtest) and status',
    labelNames: ['kind', 'status'] as const,
    registers: [registry],
    async collect() {
      const read = await figures();
      this.reset();
      if (!read) return;
      for (const kind of RUN_KINDS) for (const status of RUN_STATUSES) this.set({ kind, status }, 0);
      for (const row of read.runs) this.set({ kind: row.kind, status: row.status }, row.runs);
    },
  });

  new Gauge({
    name: 'cible_pipeline_last_run_duration_seconds',
    help: 'Duration (finished - started) of the latest succeeded pipeline run, 0 when none',
    registers: [registry],
    async collect() {
      const read = await figures();
      this.reset();
      if (read) this.set(read.recentDurations[0] ?? 0);
    },
  });

  new Gauge({
    name: 'cible_pipeline_last_success_timestamp_seconds',
    help: 'When the latest succeeded pipeline run finished (Unix time), 0 when none: alert when it gets older than a night',
    registers: [registry],
    async collect() {
      const read = await figures();
      this.reset();
      if (read) this.set(read.lastSuccessAt ? read.lastSuccessAt.getTime() / 1000 : 0);
    },
  });

  new Gauge({
    name: 'cible_pipeline_run_duration_seconds',
    help: `Duration of the last ${RECENT_RUNS} succeeded pipeline runs: median, 90th percentile (interpolated) and maximum; absent when none`,
    labelNames: ['quantile'] as const,
    registers: [registry],
    async collect() {
      const read = await figures();
      this.reset();
      if (!read || read.recentDurations.length === 0) return;
      const sorted = [...read.recentDurations].sort((a, b) => a - b);
      this.set({ quantile: '0.5' }, quantile(sorted, 0.5));
      this.set({ quantile: '0.9' }, quantile(sorted, 0.9));
      this.set({ quantile: 'max' }, sorted[sorted.length - 1]!);
    },
  });

  new Gauge({
    name: 'cible_target_lists',
    help: 'Target lists exported (recorded in target_exports), by channel',
    labelNames: ['channel'] as const,
    registers: [registry],
    async collect() {
      const read = await figures();
      this.reset();
      if (!read) return;
      for (const row of read.targetLists) this.set({ channel: row.channel }, row.lists);
    },
  });

  new Gauge({
    name: 'cible_consent_sweep_last_timestamp_seconds',
    help: 'When the consent sweep last ran (Unix time), 0 when never',
    registers: [registry],
    async collect() {
      const read = await figures();
      this.reset();
      if (read) this.set(read.lastConsentSweepAt ? read.lastConsentSweepAt.getTime() / 1000 : 0);
    },
  });

  new Gauge({
    name: 'cible_workers_live',
    help: 'Worker processes whose heartbeat is recent (younger than CIBLE_WORKER_ABSENT_SECONDS), from the database',
    registers: [registry],
    async collect() {
      const read = await figures();
      this.reset();
      if (read) this.set(read.workers.liveWorkers);
    },
  });

  new Gauge({
    name: 'cible_worker_last_heartbeat_timestamp_seconds',
    help: 'The latest sign of life of any worker (Unix time), 0 when none ever ran',
    registers: [registry],
    async collect() {
      const read = await figures();
      this.reset();
      if (read) this.set(read.workers.lastHeartbeatAt ? read.workers.lastHeartbeatAt.getTime() / 1000 : 0);
    },
  });

  new Gauge({
    name: 'cible_pipeline_runs_without_worker',
    help: 'Runs of the job queue (queued, or running with parts queued) that have had no live worker for longer than CIBLE_WORKER_ABSENT_SECONDS: alert when above 0',
    registers: [registry],
    async collect() {
      const read = await figures();
      this.reset();
      if (read) this.set(read.workers.runsWithoutWorker.length);
    },
  });

  new Gauge({
    name: 'cible_pipeline_run_without_worker_seconds',
    help: 'How long the oldest run waiting on no live worker has waited (seconds), 0 when none waits',
    registers: [registry],
    async collect() {
      const read = await figures();
      this.reset();
      if (read) this.set(Math.max(0, ...read.workers.runsWithoutWorker.map((run) => run.seconds)));
    },
  });

  const requests = new Counter({
    name: 'cible_http_requests_total',
    help: 'HTTP requests answered by this process, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const durations = new Histogram({
    name: 'cible_http_request_duration_seconds',
    help: 'Time to answer HTTP requests in this process, by method and route pattern',
    labelNames: ['method', 'route'] as const,
    buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });

  const httpMiddleware = createMiddleware<AppEnv>(async (c, next) => {
    const started = performance.now();
    await next();
    const method = HTTP_METHODS.has(c.req.method) ? c.req.method : 'OTHER';
    const route = routeLabel(c);
    requests.inc({ method, route, status: String(c.res.status) });
    durations.observe({ method, route }, (performance.now() - started) / 1000);
  });

  // Process metrics start at the first scrape: an app built by a test or a CLI command and
  // never scraped starts no event-loop monitor.
  let processMetrics = false;
  return {
    registry,
    httpMiddleware,
    scrape() {
      if (!processMetrics) {
        collectDefaultMetrics({ register: registry });
        processMetrics = true;
      }
      return registry.metrics();
    },
  };
}

const metricsRoute = createRoute({
  method: 'get',
  path: '/metrics',
  summary: 'Prometheus metrics (text format): pipeline jobs and runs, target lists, HTTP requests, process; counts only',
  responses: { 200: { description: 'the metrics', content: { 'text/plain': { schema: z.string() } } } },
});

/** Counts every request that follows and serves GET /metrics; no API key (like /health). */
export function registerMetrics(
  app: OpenAPIHono<AppEnv>,
  deps: Pick<ApiDependencies, 'database' | 'logger' | 'clock' | 'config'>,
): Metrics {
  const metrics = createMetrics({
    db: deps.database.db,
    logger: deps.logger,
    clock: deps.clock,
    workerAbsentSeconds: deps.config.jobs.workerAbsentSeconds,
  });
  app.use('*', metrics.httpMiddleware);
  app.openapi(metricsRoute, async (c) => c.text(await metrics.scrape(), 200, { 'content-type': metrics.registry.contentType }));
  return metrics;
}
