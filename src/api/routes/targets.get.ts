import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { apiKeyActor } from '../../auth/actor.ts';
import { listSizeOf } from '../../targeting/list-size.ts';
import { targetListCsv } from '../../targeting/target-list.csv.ts';
import { targetListJson } from '../../targeting/target-list.json.ts';
import { recordedMembers, recordTargetList, settleDelivery } from '../../targeting/target-list.service.ts';
import type { AppEnv } from '../api-env.ts';
import { problemResponses } from '../problem.ts';
import { securedRoute } from '../secured-route.ts';
import { deliveryStream, LIST_PARAMETERS, SELECTION_FIELDS, SkuParams, strictQuery } from './targets.shared.ts';

const ReasonSchema = z.object({ feature: z.string(), contribution: z.number() });

const MemberSchema = z
  .object({
    position: z.number().int(),
    externalId: z.string(),
    contact: z.string().openapi({ description: "the channel's contact field: an email address or a phone number" }),
    score: z.number().openapi({ description: 'probability of buying the product within the horizon' }),
    percentile: z.number(),
    rank: z.number().int(),
    reasons: z.array(ReasonSchema),
    consentEventIds: z.array(z.number().int()).openapi({ description: 'ledger events that make the person eligible: profiling, channel' }),
  })
  .openapi('TargetMember');

export const TargetListSchema = z
  .object({
    recorded: z.literal(true),
    exportId: z.string().uuid(),
    createdAt: z.string(),
    ...SELECTION_FIELDS,
    members: z.array(MemberSchema),
    holdout: z.array(MemberSchema).openapi({ description: 'the control group: withheld from the campaign, to measure its uplift' }),
    holdoutSeed: z.string().nullable(),
    manifestHash: z.string(),
  })
  .openapi('TargetList');

export type TargetListResponse = z.infer<typeof TargetListSchema>;

const TargetQuery = strictQuery({ ...LIST_PARAMETERS, format: z.enum(['json', 'csv']).default('json') });

const route = securedRoute(['marketer'], {
  method: 'get',
  path: '/v1/products/{sku}/targets',
  summary: 'Who to contact about a product on a channel, checked against consent now; the list is recorded with its manifest',
  description:
    'The list counts towards contact pressure from the moment it is recorded; if its response is not fully sent (the client goes away), it is marked undelivered and its members are released. Unknown query parameters are refused. /preview answers the same without recording anything.',
  request: { params: SkuParams, query: TargetQuery },
  responses: {
    200: {
      description: 'the list; headers X-Export-Id and X-Manifest-SHA256 identify its manifest',
      content: {
        'application/json': { schema: TargetListSchema },
        'text/csv': {
          schema: z
            .string()
            .openapi({ description: 'group,position,external_id,contact,score,percentile,rank,reason_1..3,consent_event_ids' }),
        },
      },
    },
    ...problemResponses(400, 404, 409),
  },
});

export function registerTargetsRoute(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const { sku } = c.req.valid('param');
    const query = c.req.valid('query');
    const { deps, apiKey } = c.var;
    const { db } = deps.database;
    const recorded = await recordTargetList(
      db,
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
    const { list } = recorded;
    c.header('X-Export-Id', list.exportId);
    c.header('X-Manifest-SHA256', list.manifestHash);
    c.header('Link', `</v1/exports/${list.exportId}>; rel="manifest"`);
    const settle = (delivered: boolean) => settleDelivery(db, list.exportId, delivered, deps.clock.now());
    if (query.format === 'csv') {
      c.header('Content-Type', 'text/csv; charset=utf-8');
      c.header(
        'Content-Disposition',
        `attachment; filename="targets-${sku.replace(/[^A-Za-z0-9_-]/g, '_')}-${query.channel}-${list.exportId}.csv"`,
      );
      return c.body(deliveryStream(targetListCsv(deps.database, recorded), settle), 200);
    }
    c.header('Content-Type', 'application/json');
    return c.body(deliveryStream(targetListJson(recorded.list, recordedMembers(deps.database, recorded)), settle), 200);
  });
}
