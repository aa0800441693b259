import { type OpenAPIHono, z } from '@hono/zod-openapi';
import { verifyExport } from '../../targeting/export.service.ts';
import type { AppEnv } from '../api-env.ts';
import { problemResponses } from '../problem.ts';
import { securedRoute } from '../secured-route.ts';
import { ExportIdParams } from './exports.get.ts';

const VerificationSchema = z
  .object({
    exportId: z.string(),
    valid: z.boolean(),
    storedHash: z.string(),
    recomputedHash: z.string(),
    memberCount: z.number().int(),
    alteredPositions: z.array(z.number().int()),
    erasedMembers: z.number().int(),
  })
  .openapi('ExportVerification');

const route = securedRoute(['dpo'], {
  method: 'get',
  path: '/v1/exports/{id}/verification',
  summary: "Recomputes a list's manifest hash from its stored lines (what `cible exports verify` does)",
  request: { params: ExportIdParams },
  responses: {
    200: { description: 'the verification', content: { 'application/json': { schema: VerificationSchema } } },
    ...problemResponses(400, 404),
  },
});

export function registerExportVerificationRoute(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const { id } = c.req.valid('param');
    const verification = await verifyExport(c.var.db, id);
    return c.json(verification, 200);
  });
}
