import { createRoute, type RouteConfig } from '@hono/zod-openapi';
import { createMiddleware } from 'hono/factory';
import type { Role } from '../auth/api-key.table.ts';
import type { AppEnv } from './api-env.ts';
import { ApiError, problemResponses } from './problem.ts';

/** 403 unless the authenticated key has one of these roles (authentication itself ran before, for all of /v1). */
export function requireRole(roles: readonly Role[]) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const key = c.get('apiKey');
    if (!roles.includes(key.role)) {
      throw new ApiError(
        403,
        'Forbidden',
        `this route is for the role(s) ${roles.join(', ')}; the key "${key.name}" has the role ${key.role}`,
      );
    }
    await next();
  });
}

/**
 * A /v1 route that declares who may call it: the roles are enforced by middleware and
 * published in the OpenAPI document as `x-roles`, where the role matrix test reads them.
 */
export function securedRoute<const R extends Omit<RouteConfig, 'middleware' | 'security'>>(roles: readonly Role[], config: R) {
  return createRoute({
    ...config,
    middleware: [requireRole(roles)] as const,
    security: [{ apiKey: [] }],
    'x-roles': roles,
    responses: { ...config.responses, ...problemResponses(401, 403, 429) } as R['responses'],
  });
}
