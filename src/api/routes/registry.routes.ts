import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../api-env.ts';
import { registerCreateKey } from './keys.create.ts';
import { registerListKeys } from './keys.list.ts';
import { registerRevokeKey } from './keys.revoke.ts';
import { registerGetModel } from './models.get.ts';
import { registerListModels } from './models.list.ts';
import { registerCancelPipelineRun } from './pipeline-runs.cancel.ts';
import { registerGetPipelineRun } from './pipeline-runs.get.ts';
import { registerStartPipelineRun } from './pipeline-runs.post.ts';

/** The model registry: models and their versions. */
export function registerModelRoutes(app: OpenAPIHono<AppEnv>): void {
  registerListModels(app);
  registerGetModel(app);
}

/** Pipeline runs: start one, follow it, cancel it. */
export function registerPipelineRunRoutes(app: OpenAPIHono<AppEnv>): void {
  registerStartPipelineRun(app);
  registerGetPipelineRun(app);
  registerCancelPipelineRun(app);
}

/** API keys, for admins. */
export function registerKeyRoutes(app: OpenAPIHono<AppEnv>): void {
  registerCreateKey(app);
  registerListKeys(app);
  registerRevokeKey(app);
}
