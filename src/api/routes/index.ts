import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../api-env.ts';
import { registerHealthRoutes } from './health.ts';
import { registerKeyRoutes, registerModelRoutes, registerPipelineRunRoutes } from './registry.routes.ts';
import { registerRightsRoutes } from './rights.routes.ts';
import { registerTargetingRoutes } from './targeting.routes.ts';

/** Every route of the API, in one place. */
export function registerRoutes(app: OpenAPIHono<AppEnv>): void {
  registerHealthRoutes(app);
  registerModelRoutes(app);
  registerPipelineRunRoutes(app);
  registerKeyRoutes(app);
  registerTargetingRoutes(app);
  registerRightsRoutes(app);
}
