import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { apiKeyActor } from '../../auth/actor.ts';
import { listSizeOf } from '../../targeting/list-size.ts';
import { previewTargetList } from '../../targeting/target-list.service.ts';
import type { AppEnv } from '../api-env.ts';
import { problemResponses } from '../problem.ts';
import { securedRoute } from '../secured-route.ts';
import { LIST_PARAMETERS, SELECTION_FIELDS, SkuParams, strictQuery } from './targets.shared.ts';

export const TargetPreviewSchema = z
  .object({
    recorded: z.literal(false),
    note: z.string().openapi({ example: 'a preview: no list was recorded, no manifest written and no contact pressure used' }),
    ...SELECTION_FIELDS,
  })
  .openapi('TargetPreview');

export type TargetPreviewResponse = z.infer<typeof TargetPreviewSchema>;

const route = securedRoute(['marketer'], {
  method: 'get',
  path: '/v1/products/{sku}/targets/preview',
  summary: 'What the list for these parameters would be now (funnel, size, expected buyers, score threshold), without recording it',
  description:
    'The same parameters and the same selection as the list; nothing is recorded, no manifest is written, no contact pressure is used.',
  request: { params: SkuParams, query: strictQuery(LIST_PARAMETERS) },
  responses: {
    200: { description: 'the preview', content: { 'application/json': { schema: TargetPreviewSchema } } },
    ...problemResponses(400, 404, 409),
  },
});

export function registerTargetsPreviewRoute(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const { sku } = c.req.valid('param');
    const query = c.req.valid('query');
    const { deps, apiKey } = c.var;
    const preview = await previewTargetList(
      deps.database.db,
      {
        sku,
        channel: query.channel,
        size: listSizeOf(query),
        holdoutPercent: query.holdout,
        actor: apiKeyActor(apiKey),
        apiKeyId: apiKey.id,
      },
      { consent: deps.config.consentPolicy, targeting: deps.config.targeting },
      deps.clock.now(),
    );
    return c.json(preview, 200);
  });
}
