import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { listModels } from '../../registry/model-catalog.repository.ts';
import type { AppEnv } from '../api-env.ts';
import { securedRoute } from '../secured-route.ts';

const Figure = z.number().nullable();
const ComparisonSchema = z.object({ model: Figure, rfm: Figure, bgnbd: Figure }).openapi('Comparison', {
  description: 'one figure for the model and each baseline, on the same evaluation window; null when it could not be computed',
});

export const TargetSchema = z
  .object({
    kind: z.enum(['product', 'category', 'any']),
    key: z.string().openapi({ example: 'PL-REFILL', description: 'the SKU, the category name, or "any"' }),
  })
  .openapi('ModelTarget');

const ModelSummarySchema = z
  .object({
    target: TargetSchema,
    versions: z.number().int().openapi({ description: 'versions registered for this model, whatever their status' }),
    champion: z
      .object({
        version: z.number().int(),
        algorithm: z.string().openapi({ example: 'logistic' }),
        trainedAt: z.string().openapi({ format: 'date-time' }),
        horizonDays: z.number().int(),
        populationSize: z.number().int().openapi({ description: 'people in the consent snapshot the model was trained on' }),
        auc: ComparisonSchema.openapi({ description: 'ROC AUC' }),
        liftTopDecile: ComparisonSchema.openapi({ description: 'lift in the top decile' }),
      })
      .nullable()
      .openapi({ description: 'null while no version was promoted' }),
  })
  .openapi('ModelSummary');

const route = securedRoute(['data_scientist', 'marketer', 'scheduler', 'dpo'], {
  method: 'get',
  path: '/v1/models',
  tags: ['models'],
  summary: 'Every model with its champion, compared with the RFM and BG/NBD baselines',
  responses: {
    200: {
      description: 'the models, by target kind and key',
      content: { 'application/json': { schema: z.object({ models: z.array(ModelSummarySchema) }) } },
    },
  },
});

export function registerListModels(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const models = await listModels(c.var.db);
    return c.json(
      {
        models: models.map((model) => ({
          ...model,
          champion: model.champion ? { ...model.champion, trainedAt: model.champion.trainedAt.toISOString() } : null,
        })),
      },
      200,
    );
  });
}
