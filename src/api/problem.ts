import { z } from '@hono/zod-openapi';
import type { DomainError, DomainErrorKind } from '../errors.ts';

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

const STATUS_OF_KIND: Record<DomainErrorKind, 400 | 404 | 409> = { invalid: 400, notFound: 404, conflict: 409 };

/** Domain field names the API spells otherwise; '' names the part itself (the rectification's changes are the body). */
const API_FIELD_NAMES: Record<string, string> = { first_name: 'firstName', last_name: 'lastName', changes: '' };

/**
 * A domain refusal as a problem, for every route: the kind gives the status, and the field at
 * fault is located in the request: a path parameter of that name, else the query string of a
 * request without a body, else the JSON body.
 */
export function domainProblem(error: DomainError, request: { method: string; param: (name: string) => string | undefined }): ApiError {
  const status = STATUS_OF_KIND[error.kind];
  if (error.field === null) return new ApiError(status, error.title, error.problem);
  const name = API_FIELD_NAMES[error.field] ?? error.field;
  const part = request.param(error.field) !== undefined ? 'path' : ['GET', 'HEAD', 'DELETE'].includes(request.method) ? 'query' : 'body';
  const where = name === '' ? part : `${part}.${name}`;
  return new ApiError(status, error.title, `${where}: ${error.problem}`, [{ where, problem: error.problem }]);
}
