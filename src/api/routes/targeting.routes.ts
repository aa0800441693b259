import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../api-env.ts';
import { registerExportRoute } from './exports.get.ts';
import { registerExportVerificationRoute } from './exports.verification.get.ts';
import { registerTargetsRoute } from './targets.get.ts';
import { registerTargetsPreviewRoute } from './targets.preview.get.ts';

export function registerTargetingRoutes(app: OpenAPIHono<AppEnv>): void {
  registerTargetsRoute(app);
  registerTargetsPreviewRoute(app);
  registerExportRoute(app);
  registerExportVerificationRoute(app);
}
