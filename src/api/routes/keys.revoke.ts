import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { appendAuditLog } from '../../audit/audit-log.repository.ts';
import { revokeApiKey } from '../../auth/api-key.repository.ts';
import type { AppEnv } from '../api-env.ts';
import { ApiError, problemResponses } from '../problem.ts';
import { securedRoute } from '../secured-route.ts';

const route = securedRoute(['admin'], {
  method: 'delete',
  path: '/v1/keys/{id}',
  tags: ['keys'],
  summary: 'Revoke an API key: it is refused (401) from now on',
  request: {
    params: z.object({
      id: z
        .string()
        .regex(/^[1-9]\d{0,14}$/, 'must be a positive whole number')
        .openapi({ param: { name: 'id', in: 'path' }, example: '3' }),
    }),
  },
  responses: {
    204: { description: 'revoked' },
    ...problemResponses(400, 404),
  },
});

export function registerRevokeKey(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const id = Number(c.req.valid('param').id);
    const now = c.var.deps.clock.now();
    const revoked = await c.var.db.transaction().execute(async (trx) => {
      if (!(await revokeApiKey(trx, id, now))) return false;
      await appendAuditLog(trx, {
        at: now,
        actor: `api-key:${c.var.apiKey.id}`,
        action: 'api_key.revoke',
        subjectType: 'api_key',
        subjectId: String(id),
        requestId: c.var.requestId,
        details: {},
      });
      return true;
    });
    if (!revoked) throw new ApiError(404, 'Not found', `no active API key ${id} (unknown or already revoked)`);
    return c.body(null, 204);
  });
}
