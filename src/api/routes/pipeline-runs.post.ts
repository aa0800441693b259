import { type OpenAPIHono, z } from '@hono/zod-openapi';
import type { Kysely } from 'kysely';
import type { Database } from '../../db/database.ts';
import { runStatus } from '../../registry/pipeline-runs.repository.ts';
import { EARLIEST_RUN_DATE } from '../../registry/registry.repository.ts';
import { type AppEnv, PipelineBusyError } from '../api-env.ts';
import { ApiError, problemResponses } from '../problem.ts';
import { securedRoute } from '../secured-route.ts';
import { RunStatusSchema } from './pipeline-runs.get.ts';

const MAX_PRODUCTS = 1000;
const MAX_HORIZON_DAYS = 365;

const RunRequestSchema = z
  .strictObject({
    products: z
      .union([z.literal('all'), z.array(z.string().trim().min(1).max(200)).min(1).max(MAX_PRODUCTS)])
      .optional()
      .openapi({ description: '"all" (the default): every product with enough buyers; or the SKUs to model', example: ['PL-REFILL'] }),
    asOf: z
      .union([z.iso.date(), z.iso.datetime({ offset: true })])
      .optional()
      .openapi({
        description:
          'run as if today were this date (UTC) or instant; only data before it is used. Default: now, with the live consent state',
        example: '2026-10-01',
      }),
    horizonDays: z
      .number()
      .int()
      .min(1)
      .max(MAX_HORIZON_DAYS)
      .optional()
      .openapi({ description: 'the prediction horizon in days (default 30)', example: 30 }),
  })
  .openapi('PipelineRunRequest');

const route = securedRoute(['scheduler', 'admin'], {
  method: 'post',
  path: '/v1/pipeline/runs',
  tags: ['pipeline'],
  summary: 'Start a pipeline run (train, evaluate, promote, score) in the background',
  description: 'Answers at once with the run id; follow the run at the Location given. One run at a time: 409 while one is running.',
  request: { body: { required: false, content: { 'application/json': { schema: RunRequestSchema } } } },
  responses: {
    202: {
      description: 'the run is started',
      headers: { Location: { description: 'where to follow the run', schema: { type: 'string' } } },
      content: {
        'application/json': { schema: z.object({ runId: z.number().int(), status: RunStatusSchema }).openapi('PipelineRunStarted') },
      },
    },
    ...problemResponses(400, 409, 413, 415),
  },
});

/** A date is midnight UTC; an instant keeps its offset. */
function parseAsOf(value: string): Date {
  return new Date(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value);
}

/** Unknown SKUs would silently model nothing: they are refused, named. */
async function unknownSkus(db: Kysely<Database>, skus: string[]): Promise<string[]> {
  const known = new Set((await db.selectFrom('products').select('sku').where('sku', 'in', skus).execute()).map((row) => row.sku));
  return skus.filter((sku) => !known.has(sku));
}

function naming(values: string[], most = 20): string {
  const shown = values
    .slice(0, most)
    .map((value) => JSON.stringify(value))
    .join(', ');
  return values.length > most ? `${shown} and ${values.length - most} more` : shown;
}

export function registerStartPipelineRun(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const body = c.req.valid('json');
    const { clock, pipeline, logger } = c.var.deps;
    const asOf = body.asOf === undefined ? undefined : parseAsOf(body.asOf);
    if (asOf && asOf.getTime() > clock.now().getTime()) {
      throw new ApiError(400, 'Bad request', 'body.asOf: is in the future; a run can only look back', [
        { where: 'body.asOf', problem: 'is in the future; a run can only look back' },
      ]);
    }
    if (asOf && asOf < EARLIEST_RUN_DATE) {
      const problem = `is before ${EARLIEST_RUN_DATE.toISOString().slice(0, 10)}: not a date a run can look back to`;
      throw new ApiError(400, 'Bad request', `body.asOf: ${problem}`, [{ where: 'body.asOf', problem }]);
    }
    const products = body.products === undefined || body.products === 'all' ? ('all' as const) : [...new Set(body.products)];
    if (products !== 'all') {
      const missing = await unknownSkus(c.var.db, products);
      if (missing.length > 0) {
        const problem = `unknown SKU${missing.length > 1 ? 's' : ''} ${naming(missing)}`;
        throw new ApiError(400, 'Bad request', `body.products: ${problem}`, [{ where: 'body.products', problem }]);
      }
    }
    let runId: number;
    try {
      runId = await pipeline.start({ products, asOf, horizonDays: body.horizonDays, actor: `api-key:${c.var.apiKey.id}` });
    } catch (error) {
      if (error instanceof PipelineBusyError) throw new ApiError(409, 'Conflict', error.message);
      throw error;
    }
    const status = await runStatus(c.var.db, runId);
    logger.info({ requestId: c.var.requestId, keyId: c.var.apiKey.id, runId }, 'pipeline run requested');
    return c.json({ runId, status: status ?? ('running' as const) }, 202, { Location: `/v1/pipeline/runs/${runId}` });
  });
}
