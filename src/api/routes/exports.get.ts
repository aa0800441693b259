import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { exportManifest } from '../../targeting/export.service.ts';
import { ExportNotFoundError } from '../../targeting/targeting.errors.ts';
import type { AppEnv } from '../api-env.ts';
import { problemResponses } from '../problem.ts';
import { securedRoute } from '../secured-route.ts';

export const ExportIdParams = z.object({
  id: z
    .string()
    .uuid({ message: 'must be an export id (a UUID, as returned in X-Export-Id)' })
    .openapi({ example: '0b6c5a8e-1f0e-4c8e-9a55-3f1c2b7d9e10' }),
});

const ManifestSchema = z
  .object({
    exportId: z.string(),
    createdAt: z.string(),
    actor: z.string(),
    modelId: z.number().int(),
    modelVersionId: z.number().int(),
    scoreSetId: z.number().int(),
    channel: z.string(),
    params: z.record(z.string(), z.unknown()),
    funnel: z.record(z.string(), z.number()),
    memberCount: z.number().int(),
    holdoutCount: z.number().int(),
    holdoutSeed: z.string().nullable(),
    manifestHash: z.string(),
    hashScheme: z.union([z.literal(1), z.literal(2)]).openapi({
      description:
        'how member hashes are computed: 1 for lists recorded before manifests were one row per list (SHA-256 of a text line), 2 since (SHA-256 of a fixed binary layout)',
    }),
    delivery: z.enum(['pending', 'delivered', 'undelivered']).openapi({
      description:
        'pending while the response is being sent; undelivered when it was not fully sent: its members were released from contact pressure',
    }),
    deliverySettledAt: z.string().nullable(),
    members: z.array(
      z.object({
        position: z.number().int(),
        contactId: z.number().int(),
        externalId: z.string().nullable().openapi({ description: 'null once the person was erased' }),
        contact: z.string().nullable(),
        score: z.number(),
        rank: z.number().int(),
        percentile: z.number(),
        isHoldout: z.boolean(),
        consentEventIds: z.array(z.number().int()),
        memberHash: z.string(),
      }),
    ),
  })
  .openapi('ExportManifest');

export type ExportManifestResponse = z.infer<typeof ManifestSchema>;

const route = securedRoute(['marketer', 'dpo'], {
  method: 'get',
  path: '/v1/exports/{id}',
  summary:
    'The manifest of a served list: who asked, when, the model, the parameters, each member and the consent events that made them eligible',
  description: 'A marketer reads the lists made with their own key; the DPO reads any.',
  request: { params: ExportIdParams },
  responses: {
    200: { description: 'the manifest', content: { 'application/json': { schema: ManifestSchema } } },
    ...problemResponses(400, 404),
  },
});

export function registerExportRoute(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const { id } = c.req.valid('param');
    const manifest = await exportManifest(c.var.db, id);
    const key = c.var.apiKey;
    // another marketer's list is reported as absent: its existence is not theirs to know
    if (key.role === 'marketer' && manifest.apiKeyId !== key.id) throw new ExportNotFoundError(`no export has the id ${id}`);
    return c.json(
      {
        ...manifest.header,
        modelId: manifest.modelId,
        funnel: manifest.funnel,
        manifestHash: manifest.manifestHash,
        hashScheme: manifest.hashScheme,
        delivery: manifest.delivery,
        deliverySettledAt: manifest.deliverySettledAt,
        members: manifest.members.map(({ contactValue, ...member }) => ({ ...member, contact: contactValue })),
      },
      200,
    );
  });
}
