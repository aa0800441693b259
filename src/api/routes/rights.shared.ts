import { z } from '@hono/zod-openapi';
import { InvalidRightsRequestError, SubjectNotFoundError } from '../../rights/rights.errors.ts';
import { ApiError } from '../problem.ts';

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
export const IDENTITY_FIELD_NAMES = { email: 'email', phone: 'phone', first_name: 'firstName', last_name: 'lastName', country: 'country' } as const;

/** Where a field named by InvalidRightsRequestError is in the request. */
function whereOf(field: string): string {
  if (field === 'ref') return 'path.ref';
  if (field === 'changes') return 'body';
  return `body.${IDENTITY_FIELD_NAMES[field as keyof typeof IDENTITY_FIELD_NAMES] ?? field}`;
}

/** A refused rights request as a problem: unknown or erased contact 404, invalid request 400 naming the field. */
export function rightsProblem(error: unknown): never {
  if (error instanceof SubjectNotFoundError) throw new ApiError(404, 'Contact not found', error.message);
  if (error instanceof InvalidRightsRequestError) {
    const where = whereOf(error.field);
    const problem = error.message.slice(error.field.length + 1);
    throw new ApiError(400, 'Bad request', `${where}: ${problem}`, [{ where, problem }]);
  }
  throw error;
}
