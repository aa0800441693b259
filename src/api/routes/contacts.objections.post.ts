import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { apiKeyActor } from '../../auth/actor.ts';
import { object } from '../../rights/rights.service.ts';
import { tombstoneKeys } from '../../rights/tombstone-keys.ts';
import type { AppEnv } from '../api-env.ts';
import { problemResponses } from '../problem.ts';
import { securedRoute } from '../secured-route.ts';
import { ContactRefParamsSchema } from './rights.shared.ts';

export const ObjectionRequestSchema = z
  .strictObject({
    purpose: z
      .string()
      .min(1)
      .max(100)
      .openapi({ description: 'a purpose code, e.g. profiling or direct_marketing', example: 'direct_marketing' }),
    channel: z
      .string()
      .max(100)
      .nullable()
      .optional()
      .openapi({ description: 'for a per-channel purpose only; left out, the objection stands against every channel', example: 'sms' }),
  })
  .openapi('ObjectionRequest');

export const ObjectionSchema = z
  .object({
    contactId: z.number().int().openapi({ description: 'the record whose ledger holds the objection: the one named' }),
    personId: z
      .number()
      .int()
      .openapi({ description: "the person it stands for: their consent is decided over all their records' events" }),
    eventId: z.number().int().openapi({ description: 'the objection event in the consent ledger' }),
    purpose: z.string(),
    channel: z.string().nullable().openapi({ description: 'null: every channel (or a purpose without channel)' }),
    capturedAt: z.string().openapi({ format: 'date-time' }),
    scoresDeleted: z.number().int().openapi({ description: 'scores deleted at once because profiling stopped counting' }),
  })
  .openapi('Objection');

export type ObjectionResponse = z.infer<typeof ObjectionSchema>;

const route = securedRoute(['dpo'], {
  method: 'post',
  path: '/v1/contacts/{ref}/objections',
  tags: ['data-subject rights'],
  summary: 'Record an objection (GDPR art. 21): to profiling, or to direct marketing',
  description:
    'Recorded on the named record, it stands for the whole person and takes effect at once: the person leaves every list served afterwards, ' +
    'and an objection to profiling deletes their scores.',
  request: {
    params: ContactRefParamsSchema,
    body: { required: true, content: { 'application/json': { schema: ObjectionRequestSchema } } },
  },
  responses: {
    201: { description: 'the objection, recorded', content: { 'application/json': { schema: ObjectionSchema } } },
    ...problemResponses(400, 404, 413, 415),
  },
});

export function registerObjectToContact(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const { ref } = c.req.valid('param');
    const { purpose, channel } = c.req.valid('json');
    const { deps, apiKey } = c.var;
    const result = await object(
      c.var.db,
      ref,
      { purpose, channel },
      apiKeyActor(apiKey),
      deps.clock.now(),
      tombstoneKeys(deps.config.tombstones),
    );
    return c.json(result, 201);
  });
}
