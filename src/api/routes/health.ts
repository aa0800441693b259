import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import { sql } from 'kysely';
import { pendingMigrations } from '../../db/migrate.ts';
import type { AppEnv } from '../api-env.ts';
import { ApiError, problemResponses } from '../problem.ts';

const health = createRoute({
  method: 'get',
  path: '/health',
  summary: 'The process is up (no database check)',
  responses: { 200: { description: 'alive', content: { 'application/json': { schema: z.object({ status: z.literal('ok') }) } } } },
});

const ReadySchema = z.object({ status: z.literal('ready'), engine: z.enum(['postgres', 'pglite']) }).openapi('Ready');

const ready = createRoute({
  method: 'get',
  path: '/ready',
  summary: 'Ready to serve: the database answers and its schema is current',
  responses: { 200: { description: 'ready', content: { 'application/json': { schema: ReadySchema } } }, ...problemResponses(503) },
});

export function registerHealthRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(health, (c) => c.json({ status: 'ok' as const }, 200));
  app.openapi(ready, async (c) => {
    const { database } = c.var.deps;
    try {
      await sql`SELECT 1`.execute(database.db);
    } catch {
      throw new ApiError(503, 'Not ready', 'the database does not answer');
    }
    const pending = await pendingMigrations(database.db);
    if (pending.length > 0) throw new ApiError(503, 'Not ready', `${pending.length} migration(s) not applied: run \`cible db migrate\``);
    return c.json({ status: 'ready' as const, engine: database.engine }, 200);
  });
}
