import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { cancelRun, RunRequestError } from '../../registry/pipeline-runs.repository.ts';
import type { AppEnv } from '../api-env.ts';
import { ApiError, problemResponses } from '../problem.ts';
import { securedRoute } from '../secured-route.ts';

const CancelledRunSchema = z
  .object({
    runId: z.number().int(),
    was: z.enum(['queued', 'running']).openapi({ description: 'the status the run had' }),
    tablesDropped: z
      .number()
      .int()
      .openapi({ description: 'score tables the run (or an earlier dead one) wrote and never published, dropped' }),
  })
  .openapi('CancelledPipelineRun');

const route = securedRoute(['scheduler', 'admin'], {
  method: 'post',
  path: '/v1/pipeline/runs/{id}/cancel',
  tags: ['pipeline'],
  summary: 'Cancel a queued or running pipeline run (one whose process was killed, say)',
  description:
    'The run is marked cancelled and can no longer publish; the score tables, networks and consent snapshot rows it wrote are dropped, ' +
    'and a new run may start at once. 409 when the run has already ended, or still works in a live process on this host.',
  request: {
    params: z.object({
      id: z
        .string()
        .regex(/^[1-9]\d{0,14}$/, 'must be a positive whole number')
        .openapi({ param: { name: 'id', in: 'path' }, example: '42' }),
    }),
  },
  responses: {
    200: { description: 'cancelled', content: { 'application/json': { schema: CancelledRunSchema } } },
    ...problemResponses(400, 404, 409),
  },
});

export function registerCancelPipelineRun(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const id = Number(c.req.valid('param').id);
    const { deps, requestId, apiKey } = c.var;
    try {
      const cancelled = await cancelRun(c.var.db, id, deps.clock.now());
      deps.logger.info({ requestId, keyId: apiKey.id, runId: id, tablesDropped: cancelled.tablesDropped }, 'pipeline run cancelled');
      return c.json(cancelled, 200);
    } catch (error) {
      if (error instanceof RunRequestError)
        throw new ApiError(error.status, error.status === 404 ? 'Not found' : 'Conflict', error.message);
      throw error;
    }
  });
}
