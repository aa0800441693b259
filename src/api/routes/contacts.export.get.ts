import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { apiKeyActor } from '../../auth/actor.ts';
import { accessReport } from '../../rights/rights.service.ts';
import { tombstoneKeys } from '../../rights/tombstone-keys.ts';
import type { AppEnv } from '../api-env.ts';
import { problemResponses } from '../problem.ts';
import { securedRoute } from '../secured-route.ts';
import { ContactRefParamsSchema } from './rights.shared.ts';

// ---------------------------------------------------------------- the access report

const DateTime = z.string().openapi({ format: 'date-time' });
const RecordId = z.number().int().openapi({ description: 'the record (internal contact id) the line belongs to' });

const IdentitySchema = z.object({
  email: z.string().nullable(),
  phone: z.string().nullable().openapi({ description: 'E.164' }),
  firstName: z.string().nullable(),
  lastName: z.string().nullable(),
  country: z.string().nullable(),
});

export const AccessReportSchema = z
  .object({
    generatedAt: DateTime,
    subject: z
      .object({ contactId: z.number().int(), externalId: z.string(), createdAt: DateTime })
      .openapi({ description: 'the record the request named' }),
    identity: IdentitySchema.openapi({ description: "the named record's identity fields" }),
    person: z
      .object({
        personId: z.number().int().openapi({ description: "the id of the person's first record" }),
        records: z.array(z.object({ contactId: z.number().int(), externalId: z.string(), createdAt: DateTime, identity: IdentitySchema })),
      })
      .openapi({ description: 'the person the named record belongs to, with every record of theirs: the report covers them all' }),
    consents: z.object({
      status: z
        .array(
          z.object({
            purpose: z.string(),
            channel: z.string().nullable(),
            status: z.string(),
            eventId: z.number().int(),
            recordId: z.number().int().openapi({ description: 'the record whose event decides for the person' }),
            capturedAt: DateTime,
            expiresAt: DateTime.nullable(),
            validNow: z.boolean(),
          }),
        )
        .openapi({
          description: "per purpose x channel: the event in force over all the person's records and whether it counts as consent now",
        }),
      events: z
        .array(
          z.object({
            eventId: z.number().int(),
            contactId: RecordId,
            purpose: z.string(),
            channel: z.string().nullable(),
            status: z.string(),
            capturedAt: DateTime,
            recordedAt: DateTime,
            source: z.string().nullable(),
            method: z.string().nullable(),
            methodIsExplicit: z.boolean().nullable(),
            noticeVersion: z.string().nullable(),
            evidenceRef: z.string().nullable(),
            expiresAt: DateTime.nullable(),
          }),
        )
        .openapi({ description: 'the whole consent ledger of every record of the person, with the proof of each event' }),
    }),
    purchases: z.array(
      z.object({
        contactId: RecordId,
        orderId: z.string(),
        sku: z.string().nullable(),
        productName: z.string().nullable(),
        category: z.string().nullable(),
        quantity: z.number().int(),
        unitPrice: z.number(),
        purchasedAt: DateTime,
      }),
    ),
    scores: z.array(
      z.object({
        modelId: z.number().int(),
        targetKind: z.string(),
        targetKey: z.string(),
        modelVersion: z.number().int(),
        algorithm: z.string(),
        features: z.array(z.string()),
        horizonDays: z.number().int(),
        scoredAt: DateTime,
        score: z.number(),
        rank: z.number().int(),
        percentile: z.number(),
        reasons: z
          .array(z.object({ feature: z.string(), contribution: z.number() }))
          .openapi({ description: 'the main reasons behind the score (GDPR art. 15: meaningful information about the logic involved)' }),
      }),
    ),
    exports: z.array(
      z.object({
        exportId: z.string(),
        exportedAt: DateTime,
        channel: z.string(),
        modelId: z.number().int(),
        position: z.number().int(),
        isHoldout: z.boolean(),
        contactValue: z.string().nullable(),
        score: z.number(),
        rank: z.number().int(),
        consentEventIds: z.array(z.number().int()),
      }),
    ),
    oppositionLists: z.array(
      z.object({
        contactId: RecordId,
        listName: z.string(),
        channel: z.string(),
        listDate: z.string(),
        matchedOn: z.enum(['email', 'phone']),
      }),
    ),
  })
  .openapi('AccessReport');

export type AccessReportResponse = z.infer<typeof AccessReportSchema>;

const route = securedRoute(['dpo'], {
  method: 'get',
  path: '/v1/contacts/{ref}/export',
  tags: ['data-subject rights'],
  summary: 'Everything held on the person a contact record belongs to (GDPR art. 15 access, art. 20 portability), as JSON',
  description:
    'Identity, the consent ledger with proofs and what counts now, purchases, live scores with their reasons, list exports, ' +
    'opposition-list matches, over every record of the person the named record belongs to. ' +
    'Audited as an access request, or as a portability request with `right=portability`.',
  request: {
    params: ContactRefParamsSchema,
    query: z.object({
      right: z
        .enum(['access', 'portability'])
        .default('access')
        .openapi({ description: 'the right exercised, as recorded in the audit log' }),
    }),
  },
  responses: {
    200: { description: 'the access report', content: { 'application/json': { schema: AccessReportSchema } } },
    ...problemResponses(400, 404),
  },
});

export function registerExportContact(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const { ref } = c.req.valid('param');
    const { right } = c.req.valid('query');
    const { deps, apiKey } = c.var;
    const report = await accessReport(c.var.db, ref, apiKeyActor(apiKey), deps.clock.now(), right, tombstoneKeys(deps.config.tombstones));
    // personal data: no cache on the way may keep it
    c.header('Cache-Control', 'no-store');
    return c.json(report, 200);
  });
}
