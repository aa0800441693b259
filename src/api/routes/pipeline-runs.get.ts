import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { findRun } from '../../registry/pipeline-runs.repository.ts';
import type { AppEnv } from '../api-env.ts';
import { ApiError, problemResponses } from '../problem.ts';
import { securedRoute } from '../secured-route.ts';

export const RunStatusSchema = z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']).openapi('PipelineRunStatus');

const DateTime = z.string().openapi({ format: 'date-time' });

const PipelineRunSchema = z
  .object({
    id: z.number().int(),
    kind: z.enum(['pipeline', 'backtest']),
    status: RunStatusSchema,
    trigger: z.string().openapi({ description: 'who started it: "cli", "api:api-key:ID", …', example: 'api:api-key:3' }),
    asOf: DateTime,
    horizonDays: z.number().int().nullable(),
    params: z.record(z.string(), z.unknown()),
    createdAt: DateTime,
    startedAt: DateTime.nullable(),
    finishedAt: DateTime.nullable(),
    summary: z
      .record(z.string(), z.unknown())
      .openapi({ description: 'the run report once finished: targets and their outcome, stages and timings' }),
    error: z.string().nullable(),
    driver: z
      .enum(['inline', 'queue'])
      .openapi({ description: '"queue": its parts were jobs taken by workers; "inline": one process ran it' }),
    parts: z
      .array(
        z.object({
          part: z.string().openapi({ example: 'score:1', description: '"train", "score:<shard>", "rank:<score set>" or "publish"' }),
          status: z.enum(['running', 'succeeded', 'failed']),
          attempt: z.number().int(),
          worker: z.string().nullable().openapi({ description: 'host:pid of the worker that took the latest attempt' }),
          startedAt: DateTime.nullable(),
          finishedAt: DateTime.nullable(),
          rows: z.number().int().nullable(),
          error: z.string().nullable(),
        }),
      )
      .openapi({ description: 'the jobs of a queued run, in the order they run' }),
  })
  .openapi('PipelineRun');

const route = securedRoute(['scheduler', 'data_scientist', 'admin'], {
  method: 'get',
  path: '/v1/pipeline/runs/{id}',
  tags: ['pipeline'],
  summary: 'One pipeline run: status, times, its parts (jobs), summary, error',
  request: {
    params: z.object({
      id: z
        .string()
        .regex(/^[1-9]\d{0,14}$/, 'must be a positive whole number')
        .openapi({ param: { name: 'id', in: 'path' }, example: '42' }),
    }),
  },
  responses: {
    200: { description: 'the run', content: { 'application/json': { schema: PipelineRunSchema } } },
    ...problemResponses(400, 404),
  },
});

export function registerGetPipelineRun(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const id = Number(c.req.valid('param').id);
    const run = await findRun(c.var.db, id);
    if (!run) throw new ApiError(404, 'Not found', `no pipeline run ${id}`);
    return c.json(
      {
        id: run.id,
        kind: run.kind,
        status: run.status,
        trigger: run.trigger,
        asOf: run.asOf.toISOString(),
        horizonDays: run.horizonDays,
        params: run.params,
        createdAt: run.createdAt.toISOString(),
        startedAt: run.startedAt?.toISOString() ?? null,
        finishedAt: run.finishedAt?.toISOString() ?? null,
        summary: run.summary,
        error: run.error,
        driver: run.driver,
        parts: run.parts.map(({ seconds: _, ...part }) => ({
          ...part,
          startedAt: part.startedAt?.toISOString() ?? null,
          finishedAt: part.finishedAt?.toISOString() ?? null,
        })),
      },
      200,
    );
  });
}
