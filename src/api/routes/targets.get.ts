import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { stream } from 'hono/streaming';
import { targetListCsv } from '../../targeting/target-list.csv.ts';
import { buildTargetList, type ListSize } from '../../targeting/target-list.service.ts';
import {
  ChannelClosedError,
  InvalidTargetRequestError,
  NoLiveScoresError,
  UnknownProductError,
} from '../../targeting/targeting.errors.ts';
import type { AppEnv } from '../api-env.ts';
import { ApiError, problemResponses } from '../problem.ts';
import { apiKeyActor, securedRoute } from '../secured-route.ts';

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
    exportId: z.string().uuid(),
    createdAt: z.string(),
    product: z.object({ sku: z.string(), name: z.string() }),
    model: z.object({
      id: z.number().int(), version: z.number().int(), versionId: z.number().int(), algorithm: z.string(),
      horizonDays: z.number().int(), scoredAt: z.string(),
    }),
    channel: z.string(),
    params: z.record(z.string(), z.unknown()),
    funnel: z.object({
      scored: z.number().int(), examined: z.number().int(), consentedForChannel: z.number().int(), notOpposed: z.number().int(),
      underPressureCap: z.number().int(), selected: z.number().int(), holdout: z.number().int(), returned: z.number().int(),
    }),
    expectedBuyers: z.number(),
    members: z.array(MemberSchema),
    holdout: z.array(MemberSchema).openapi({ description: 'the control group: withheld from the campaign, to measure its uplift' }),
    holdoutSeed: z.string().nullable(),
    manifestHash: z.string(),
  })
  .openapi('TargetList');

export type TargetListResponse = z.infer<typeof TargetListSchema>;

const positive = (description: string) => z.coerce.number().positive().optional().openapi({ description });

const TargetQuery = z.object({
  channel: z.string().min(1).max(50).openapi({ example: 'email', description: 'email, sms, phone, postal, push' }),
  top: z.coerce.number().int().positive().optional().openapi({ description: 'the best N reachable people (default 1000)', example: 1000 }),
  percentile: positive('the reachable people among the best-scored P percent'),
  minScore: z.coerce.number().min(0).max(1).optional().openapi({ description: 'the reachable people scored at least this' }),
  expectedBuyers: positive('the smallest top list whose summed probabilities reach this number'),
  holdout: z.coerce.number().int().min(0).max(50).default(0).openapi({ description: 'percent withheld at random as a control group' }),
  format: z.enum(['json', 'csv']).default('json'),
});

const route = securedRoute(['marketer'], {
  method: 'get',
  path: '/v1/products/{sku}/targets',
  summary: 'Who to contact about a product on a channel, checked against consent now; the list is recorded with its manifest',
  request: {
    params: z.object({ sku: z.string().min(1).max(100).openapi({ example: '85123A' }) }),
    query: TargetQuery,
  },
  responses: {
    200: {
      description: 'the list; headers X-Export-Id and X-Manifest-SHA256 identify its manifest',
      content: {
        'application/json': { schema: TargetListSchema },
        'text/csv': { schema: z.string().openapi({ description: 'group,position,external_id,contact,score,percentile,rank,reason_1..3,consent_event_ids' }) },
      },
    },
    ...problemResponses(400, 404, 409),
  },
});

function listSize(query: z.infer<typeof TargetQuery>): ListSize {
  const given = (['top', 'percentile', 'minScore', 'expectedBuyers'] as const).filter((name) => query[name] !== undefined);
  if (given.length > 1) {
    throw new ApiError(400, 'Bad request', `query: give one of top, percentile, minScore, expectedBuyers, not ${given.join(' and ')}`, [
      { where: `query.${given[1]}`, problem: `cannot be combined with ${given[0]}` },
    ]);
  }
  if (given.length === 0) return { top: 1000 };
  const name = given[0]!;
  return { [name]: query[name] as number } as ListSize;
}

export function registerTargetsRoute(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const { sku } = c.req.valid('param');
    const query = c.req.valid('query');
    const { deps, apiKey } = c.var;
    const list = await buildTargetList(
      deps.database.db,
      { sku, channel: query.channel, size: listSize(query), holdoutPercent: query.holdout, actor: apiKeyActor(apiKey), apiKeyId: apiKey.id },
      { consent: deps.config.consentPolicy, targeting: deps.config.targeting },
      deps.clock.now(),
    ).catch((error: unknown) => {
      if (error instanceof InvalidTargetRequestError) {
        throw new ApiError(400, 'Bad request', `query.${error.message}`, [{ where: `query.${error.field}`, problem: error.message.slice(error.field.length + 1) }]);
      }
      if (error instanceof UnknownProductError) throw new ApiError(404, 'Unknown product', error.message);
      if (error instanceof NoLiveScoresError) throw new ApiError(409, 'No live scores', error.message);
      if (error instanceof ChannelClosedError) throw new ApiError(409, 'Channel closed', error.message);
      throw error;
    });
    c.header('X-Export-Id', list.exportId);
    c.header('X-Manifest-SHA256', list.manifestHash);
    c.header('Link', `</v1/exports/${list.exportId}>; rel="manifest"`);
    if (query.format === 'csv') {
      c.header('Content-Type', 'text/csv; charset=utf-8');
      c.header('Content-Disposition', `attachment; filename="targets-${sku.replace(/[^A-Za-z0-9_-]/g, '_')}-${query.channel}-${list.exportId}.csv"`);
      return stream(c, async (out) => {
        for (const chunk of targetListCsv(list)) await out.write(chunk);
      });
    }
    return c.json(list, 200);
  });
}
