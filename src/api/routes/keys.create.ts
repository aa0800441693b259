import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { appendAuditLog } from '../../audit/audit-log.repository.ts';
import { createApiKey } from '../../auth/api-key.repository.ts';
import type { AppEnv } from '../api-env.ts';
import { problemResponses } from '../problem.ts';
import { securedRoute } from '../secured-route.ts';
import { RoleSchema } from './keys.schemas.ts';

const CreateKeySchema = z
  .strictObject({
    name: z.string().trim().min(1).max(100).openapi({ description: 'what the key is for', example: 'nightly scheduler' }),
    role: RoleSchema,
  })
  .openapi('ApiKeyRequest');

const CreatedKeySchema = z
  .object({
    id: z.number().int(),
    name: z.string(),
    role: RoleSchema,
    prefix: z.string(),
    key: z.string().openapi({ description: 'the secret: shown in this response only, never again (only its hash is kept)' }),
    warning: z.string(),
  })
  .openapi('CreatedApiKey');

const route = securedRoute(['admin'], {
  method: 'post',
  path: '/v1/keys',
  tags: ['keys'],
  summary: 'Create an API key; the key is in this response only',
  request: { body: { required: true, content: { 'application/json': { schema: CreateKeySchema } } } },
  responses: {
    201: { description: 'the key, shown once', content: { 'application/json': { schema: CreatedKeySchema } } },
    ...problemResponses(400, 413, 415),
  },
});

export function registerCreateKey(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const { name, role } = c.req.valid('json');
    const { db } = c.var;
    const created = await db.transaction().execute(async (trx) => {
      const key = await createApiKey(trx, name, role);
      await appendAuditLog(trx, {
        at: c.var.deps.clock.now(),
        actor: `api-key:${c.var.apiKey.id}`,
        action: 'api_key.create',
        subjectType: 'api_key',
        subjectId: String(key.id),
        requestId: c.var.requestId,
        details: { role: key.role, prefix: key.prefix },
      });
      return key;
    });
    return c.json(
      { ...created, warning: 'store this key now: it cannot be shown again' },
      201,
      // the secret must not stay in a cache on the way
      { 'Cache-Control': 'no-store' },
    );
  });
}
