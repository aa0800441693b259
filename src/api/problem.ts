import { z } from '@hono/zod-openapi';

/**
 * The one error type of the API. Rendered as application/problem+json (RFC 9457):
 * `detail` is written for the caller and must never carry internal text or personal data.
 */
export class ApiError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 500 | 503,
    readonly title: string,
    readonly detail: string,
    /** per-field problems: where (e.g. "query.top", "body.consents[2].channel") and what */
    readonly errors: Array<{ where: string; problem: string }> = [],
  ) {
    super(detail);
  }
}

export const ProblemSchema = z
  .object({
    type: z.string().openapi({ example: 'about:blank' }),
    title: z.string().openapi({ example: 'Bad request' }),
    status: z.number().int().openapi({ example: 400 }),
    detail: z.string().openapi({ example: 'query.top: must be at most 100000' }),
    instance: z.string().optional(),
    requestId: z.string(),
    errors: z.array(z.object({ where: z.string(), problem: z.string() })).optional(),
  })
  .openapi('Problem');

export type Problem = z.infer<typeof ProblemSchema>;

export function problemBody(error: ApiError, requestId: string, instance?: string): Problem {
  return {
    type: 'about:blank',
    title: error.title,
    status: error.status,
    detail: error.detail,
    ...(instance ? { instance } : {}),
    requestId,
    ...(error.errors.length > 0 ? { errors: error.errors } : {}),
  };
}

/** Zod issues as "where: problem" pairs, `where` prefixed by the part of the request (query, path, body, header). */
export function validationError(part: string, issues: z.core.$ZodIssue[]): ApiError {
  const errors = issues.map((issue) => ({
    where: [part, ...issue.path.map((key) => (typeof key === 'number' ? `[${key}]` : String(key)))].join('.').replace(/\.\[/g, '['),
    problem: issue.message,
  }));
  const detail = errors.map((e) => `${e.where}: ${e.problem}`).join('; ');
  return new ApiError(400, 'Bad request', detail, errors);
}

/** Standard error responses to declare on a route, so the OpenAPI document lists them. */
export function problemResponses(...statuses: Array<400 | 401 | 403 | 404 | 409 | 413 | 415 | 422 | 429 | 503>) {
  const descriptions: Record<number, string> = {
    400: 'the request is invalid; `errors` says what and where',
    401: 'no API key, or an unknown or revoked one',
    403: "the key's role may not use this route",
    404: 'not found',
    409: 'conflicts with the current state',
    413: 'request body too large',
    415: 'unsupported content type',
    422: 'understood but refused',
    429: 'too many requests for this key',
    503: 'not ready',
  };
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      { description: descriptions[status] ?? 'error', content: { 'application/problem+json': { schema: ProblemSchema } } },
    ]),
  );
}
