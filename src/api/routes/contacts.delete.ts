import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { apiKeyActor } from '../../auth/actor.ts';
import { erase } from '../../rights/rights.service.ts';
import { tombstoneKeys } from '../../rights/tombstone-keys.ts';
import type { AppEnv } from '../api-env.ts';
import { problemResponses } from '../problem.ts';
import { securedRoute } from '../secured-route.ts';
import { ContactRefParamsSchema } from './rights.shared.ts';

export const ErasureReceiptSchema = z
  .object({
    contactId: z.number().int().openapi({ description: 'the record the request named' }),
    personId: z.number().int().openapi({ description: 'the person erased: the id of their first record' }),
    records: z.array(z.number().int()).openapi({ description: 'every record of the person erased (internal ids)' }),
    erasedAt: z.string().openapi({ format: 'date-time' }),
    reason: z.enum(['data_subject_request', 'retention']),
    deleted: z
      .object({
        contact_personal_data: z.number().int(),
        purchases: z.number().int(),
        scores: z.number().int(),
        contact_pressure: z.number().int(),
      })
      .openapi({ description: 'rows deleted over all the records, per table' }),
    scrubbed: z
      .object({ consent_events: z.number().int() })
      .openapi({ description: 'rows kept with their personal fields emptied, per table' }),
    manifestsKept: z.number().int().openapi({
      description:
        "served lists whose manifests keep the person's internal id, score, rank and consent event ids, and no identifier: they still verify",
    }),
    consentEventsKept: z
      .number()
      .int()
      .openapi({ description: 'ledger events kept without evidence reference, as proof that processing before the erasure was lawful' }),
    tombstoneHashes: z.array(z.enum(['external_id', 'email', 'phone'])).openapi({
      description:
        'identifiers kept only as keyed hashes (HMAC-SHA-256, secret outside the database), so that a later import cannot bring the person back: the external id of each record alone',
    }),
  })
  .openapi('ErasureReceipt');

export type ErasureReceiptResponse = z.infer<typeof ErasureReceiptSchema>;

const route = securedRoute(['dpo'], {
  method: 'delete',
  path: '/v1/contacts/{ref}',
  tags: ['data-subject rights'],
  summary: 'Erase the person a contact record belongs to, every record of theirs, for good (GDPR art. 17) and return the receipt',
  description:
    'Personal data, purchases, scores (published or not), contact pressure and consent evidence of every record of the person go in one transaction; ' +
    'list manifests are kept (they hold no identifier); a keyed-hash tombstone per record is kept so that a re-import of any of them ' +
    'cannot bring the person back. Cannot be undone; a second request answers 404.',
  request: { params: ContactRefParamsSchema },
  responses: {
    200: { description: 'erased: the receipt, with no personal data', content: { 'application/json': { schema: ErasureReceiptSchema } } },
    ...problemResponses(400, 404),
  },
});

export function registerEraseContact(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const { ref } = c.req.valid('param');
    const { deps, apiKey } = c.var;
    const receipt = await erase(c.var.db, ref, apiKeyActor(apiKey), deps.clock.now(), tombstoneKeys(deps.config.tombstones));
    return c.json(receipt, 200);
  });
}
