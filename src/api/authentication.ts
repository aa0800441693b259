import { createMiddleware } from 'hono/factory';
import { findActiveKey } from '../auth/api-key.repository.ts';
import type { AppEnv } from './api-env.ts';
import { ApiError } from './problem.ts';

const LAST_USED_EVERY_MS = 60_000;

/** Reads the key from `Authorization: Bearer …` (or `X-API-Key`): 401 when missing, unknown or revoked. */
export function authenticate() {
  const lastUsedWritten = new Map<number, number>();
  return createMiddleware<AppEnv>(async (c, next) => {
    const bearer = /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1];
    const key = bearer ?? c.req.header('x-api-key');
    if (!key) {
      c.header('WWW-Authenticate', 'Bearer');
      throw new ApiError(401, 'Unauthorized', 'an API key is required: send "Authorization: Bearer <key>"');
    }
    const identity = await findActiveKey(c.var.deps.database.control, key);
    if (!identity) {
      c.header('WWW-Authenticate', 'Bearer error="invalid_token"');
      throw new ApiError(401, 'Unauthorized', 'this API key is unknown or revoked');
    }
    c.set('apiKey', identity);
    // a write per request would cost more than the request: last use is kept to the minute
    const now = c.var.deps.clock.now();
    if (now.getTime() - (lastUsedWritten.get(identity.id) ?? 0) >= LAST_USED_EVERY_MS) {
      lastUsedWritten.set(identity.id, now.getTime());
      await c.var.deps.database.control.updateTable('api_keys').set({ last_used_at: now }).where('id', '=', identity.id).execute();
    }
    await next();
  });
}
