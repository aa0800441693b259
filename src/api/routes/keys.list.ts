import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { listApiKeys } from '../../auth/api-key.repository.ts';
import type { AppEnv } from '../api-env.ts';
import { securedRoute } from '../secured-route.ts';
import { ApiKeySchema, apiKeyJson } from './keys.schemas.ts';

const route = securedRoute(['admin'], {
  method: 'get',
  path: '/v1/keys',
  tags: ['keys'],
  summary: 'Every API key, revoked ones included; never the secrets',
  responses: {
    200: { description: 'the keys, by id', content: { 'application/json': { schema: z.object({ keys: z.array(ApiKeySchema) }) } } },
  },
});

export function registerListKeys(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => c.json({ keys: (await listApiKeys(c.var.db)).map(apiKeyJson) }, 200));
}
