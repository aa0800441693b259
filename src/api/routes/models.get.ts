import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { findModel, parseModelTarget, targetLabel, type VersionDetail } from '../../registry/model-catalog.repository.ts';
import type { AppEnv } from '../api-env.ts';
import { ApiError, problemResponses } from '../problem.ts';
import { securedRoute } from '../secured-route.ts';
import { TargetSchema } from './models.list.ts';

/** How many versions the detail lists, most recent first (the champion is given apart when older). */
export const RECENT_VERSIONS = 10;

const DateTime = z.string().openapi({ format: 'date-time' });

const VersionSchema = z
  .object({
    version: z.number().int(),
    status: z.enum(['candidate', 'champion', 'retired', 'rejected']),
    algorithm: z.string(),
    trainedAt: DateTime,
    promotedAt: DateTime.nullable(),
    decisionReason: z.string().nullable().openapi({ description: 'why the version was promoted, kept as a candidate or rejected' }),
    lineage: z.object({
      runId: z.number().int().nullable(),
      consentSnapshotAt: DateTime.openapi({ description: 'the instant of the consent snapshot the training set was taken from' }),
      populationSize: z.number().int(),
      trainingCutoff: DateTime,
      horizonDays: z.number().int(),
      codeVersion: z.string(),
      trainingDataHash: z.string().openapi({ description: 'SHA-256 of the training matrix' }),
      features: z.array(z.string()),
    }),
    metrics: z.record(z.string(), z.unknown()).openapi({
      description:
        'evaluation (ROC AUC, PR AUC, log loss, Brier, ECE, reliability, gains by decile), importance, champion comparison, training windows',
    }),
    baselineMetrics: z.record(z.string(), z.unknown()).openapi({ description: 'the RFM and BG/NBD baselines on the same window' }),
  })
  .openapi('ModelVersion');

const ModelDetailSchema = z
  .object({
    target: TargetSchema,
    versionCount: z.number().int(),
    champion: VersionSchema.nullable(),
    versions: z.array(VersionSchema).openapi({ description: `the last ${RECENT_VERSIONS} versions, most recent first` }),
  })
  .openapi('ModelDetail');

const route = securedRoute(['data_scientist', 'dpo'], {
  method: 'get',
  path: '/v1/models/{sku}',
  tags: ['models'],
  summary: 'One model: its champion and last versions, with full metrics and lineage',
  request: {
    params: z.object({
      sku: z
        .string()
        .min(1)
        .max(300)
        .openapi({ param: { name: 'sku', in: 'path' }, example: 'PL-REFILL', description: 'a product SKU, "any", or "category:NAME"' }),
    }),
  },
  responses: {
    200: { description: 'the model', content: { 'application/json': { schema: ModelDetailSchema } } },
    ...problemResponses(404),
  },
});

function versionJson(version: VersionDetail) {
  return {
    ...version,
    trainedAt: version.trainedAt.toISOString(),
    promotedAt: version.promotedAt?.toISOString() ?? null,
    lineage: {
      ...version.lineage,
      consentSnapshotAt: version.lineage.consentSnapshotAt.toISOString(),
      trainingCutoff: version.lineage.trainingCutoff.toISOString(),
    },
  };
}

export function registerGetModel(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const target = parseModelTarget(c.req.valid('param').sku);
    const model = await findModel(c.var.db, target, { recent: RECENT_VERSIONS });
    if (!model) throw new ApiError(404, 'Not found', `no model for ${targetLabel(target)}; GET /v1/models lists them`);
    return c.json(
      {
        target: model.target,
        versionCount: model.versionCount,
        champion: model.champion ? versionJson(model.champion) : null,
        versions: model.versions.map(versionJson),
      },
      200,
    );
  });
}
