import { z } from '@hono/zod-openapi';

// What the /v1/contacts/{ref} routes share.

/** The contact a rights request is about, by the company's own reference (never echoed in messages). */
export const ContactRefParamsSchema = z.object({
  ref: z
    .string()
    .min(1)
    .max(200)
    .openapi({ param: { name: 'ref', in: 'path' }, example: 'C-1042', description: "the contact's external id (the company's reference)" }),
});

/** The API's name for each identity field of the rights service. */
export const IDENTITY_FIELD_NAMES = {
  email: 'email',
  phone: 'phone',
  first_name: 'firstName',
  last_name: 'lastName',
  country: 'country',
} as const;
