import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { sql } from 'kysely';
import { pendingMigrations } from '../../db/migrate.ts';
import { describeRunWithoutWorker, workerPresence } from '../../jobs/worker-presence.repository.ts';
import type { AppEnv } from '../api-env.ts';
import { ApiError, problemResponses } from '../problem.ts';

const health = createRoute({
  method: 'get',
  path: '/health',
  summary: 'The process is up (no database check)',
  responses: { 200: { description: 'alive', content: { 'application/json': { schema: z.object({ status: z.literal('ok') }) } } } },
});

const ReadyWarningSchema = z
  .object({
    code: z.literal('run_without_worker'),
    runId: z.number().int(),
    status: z.enum(['queued', 'running']),
    since: z.string().openapi({ description: 'since when the run has had no live worker (ISO 8601)' }),
    seconds: z.number(),
    detail: z.string(),
  })
  .openapi('ReadyWarning');

const ReadySchema = z
  .object({
    status: z.literal('ready'),
    engine: z.enum(['postgres', 'pglite']),
    workers: z.object({
      live: z.number().int().openapi({ description: 'worker processes whose heartbeat is recent (CIBLE_WORKER_ABSENT_SECONDS)' }),
      lastHeartbeatAt: z.string().nullable().openapi({ description: 'the latest sign of life of any worker, null when none ever ran' }),
    }),
    warnings: z.array(ReadyWarningSchema).openapi({
      description:
        'what needs an operator without making this API unready: a queued run that has had no live worker for longer than CIBLE_WORKER_ABSENT_SECONDS',
    }),
  })
  .openapi('Ready');

const ready = createRoute({
  method: 'get',
  path: '/ready',
  summary: 'Ready to serve: the database answers and its schema is current (warnings say what waits on a missing worker)',
  responses: { 200: { description: 'ready', content: { 'application/json': { schema: ReadySchema } } }, ...problemResponses(503) },
});

export function registerHealthRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(health, (c) => c.json({ status: 'ok' as const }, 200));
  app.openapi(ready, async (c) => {
    const { database, clock, config } = c.var.deps;
    try {
      await sql`SELECT 1`.execute(database.control);
    } catch {
      throw new ApiError(503, 'Not ready', 'the database does not answer');
    }
    const pending = await pendingMigrations(database.control);
    if (pending.length > 0) throw new ApiError(503, 'Not ready', `${pending.length} migration(s) not applied: run \`cible db migrate\``);
    // a missing worker delays runs but does not stop this API from serving lists: still 200
    const presence = await workerPresence(database.control, clock.now(), config.jobs.workerAbsentSeconds);
    return c.json(
      {
        status: 'ready' as const,
        engine: database.engine,
        workers: { live: presence.liveWorkers, lastHeartbeatAt: presence.lastHeartbeatAt?.toISOString() ?? null },
        warnings: presence.runsWithoutWorker.map((run) => ({
          code: 'run_without_worker' as const,
          runId: run.runId,
          status: run.status,
          since: run.since.toISOString(),
          seconds: Math.round(run.seconds),
          detail: describeRunWithoutWorker(run, presence.lastHeartbeatAt),
        })),
      },
      200,
    );
  });
}
