import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { apiKeyActor } from '../../auth/actor.ts';
import { type IdentityChanges, type IdentityField, rectify } from '../../rights/rights.service.ts';
import { tombstoneKeys } from '../../rights/tombstone-keys.ts';
import type { AppEnv } from '../api-env.ts';
import { problemResponses } from '../problem.ts';
import { securedRoute } from '../secured-route.ts';
import { ContactRefParamsSchema, IDENTITY_FIELD_NAMES } from './rights.shared.ts';

const NewValue = (description: string, example: string) =>
  z
    .string()
    .nullable()
    .optional()
    .openapi({ description: `${description}; null or "" clears it`, example });

export const RectificationRequestSchema = z
  .strictObject({
    email: NewValue('lower-cased and checked as an address', 'zoe.martin@example.com'),
    phone: NewValue('stored in E.164; read with the configured default country when written without +country code', '+33 6 12 34 56 78'),
    firstName: NewValue('at most 200 characters', 'Zoé'),
    lastName: NewValue('at most 200 characters', 'Martin'),
    country: NewValue('at most 56 characters', 'FR'),
  })
  .openapi('RectificationRequest');

export const RectificationSchema = z
  .object({
    contactId: z.number().int().openapi({ description: "the record rectified: the one named (the person's other records are kept)" }),
    personId: z.number().int().openapi({ description: 'the person it belongs to' }),
    changed: z
      .array(z.enum(['email', 'phone', 'firstName', 'lastName', 'country']))
      .openapi({ description: 'the fields whose value changed; a value equal to the one held is not rewritten' }),
  })
  .openapi('Rectification');

export type RectificationResponse = z.infer<typeof RectificationSchema>;

const route = securedRoute(['dpo'], {
  method: 'patch',
  path: '/v1/contacts/{ref}',
  tags: ['data-subject rights'],
  summary: "Rectify a contact's identity fields (GDPR art. 16)",
  description:
    'A JSON merge patch: fields left out are kept, null clears. Values are normalised as an import does, and their hashes recomputed.',
  request: {
    params: ContactRefParamsSchema,
    body: {
      required: true,
      content: {
        'application/json': { schema: RectificationRequestSchema },
        'application/merge-patch+json': { schema: RectificationRequestSchema },
      },
    },
  },
  responses: {
    200: { description: 'rectified (or nothing to change)', content: { 'application/json': { schema: RectificationSchema } } },
    ...problemResponses(400, 404, 413, 415),
  },
});

const API_NAME_TO_FIELD = Object.fromEntries(Object.entries(IDENTITY_FIELD_NAMES).map(([field, name]) => [name, field])) as Record<
  (typeof IDENTITY_FIELD_NAMES)[IdentityField],
  IdentityField
>;

export function registerRectifyContact(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const { ref } = c.req.valid('param');
    const body = c.req.valid('json');
    const changes: IdentityChanges = {};
    for (const [name, value] of Object.entries(body)) {
      if (value !== undefined) changes[API_NAME_TO_FIELD[name as keyof typeof API_NAME_TO_FIELD]] = value;
    }
    const { deps, apiKey } = c.var;
    const result = await rectify(c.var.db, ref, changes, apiKeyActor(apiKey), deps.clock.now(), {
      defaultPhoneCountry: deps.config.defaultPhoneCountry,
      tombstoneKeys: tombstoneKeys(deps.config.tombstones),
    });
    return c.json(
      { contactId: result.contactId, personId: result.personId, changed: result.changed.map((field) => IDENTITY_FIELD_NAMES[field]) },
      200,
    );
  });
}
