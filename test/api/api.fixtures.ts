import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv, PipelineLauncher } from '../../src/api/api-env.ts';
import { createApp } from '../../src/api/app.ts';
import { createApiKey, ROLES } from '../../src/auth/api-key.repository.ts';
import type { Role } from '../../src/auth/api-key.table.ts';
import { type Clock, systemClock } from '../../src/clock.ts';
import { type Config, loadConfig } from '../../src/config.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import type { Logger } from '../../src/logger.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { captureLogger } from '../helpers/silent-logger.ts';

export interface ApiHarness {
  app: OpenAPIHono<AppEnv>;
  database: DatabaseHandle;
  config: Config;
  logLines: string[];
  /** one active key per role */
  keys: Record<Role, string>;
  /** fetch-like call through the app in-process, with the key of `role` (none when null) */
  call(role: Role | null, path: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  clock?: Clock;
  config?: Partial<Config>;
  pipeline?: PipelineLauncher;
  logger?: Logger;
  /** reuse a database already filled by the test; closed by close() */
  database?: DatabaseHandle;
}

const refusingPipeline: PipelineLauncher = {
  async start() {
    throw new Error('no pipeline launcher in this test');
  },
};

/** The real app over a fresh migrated database (PostgreSQL or PGlite, as the run chooses), with a key per role. */
export async function createApiHarness(options: HarnessOptions = {}): Promise<ApiHarness> {
  const database = options.database ?? (await createTestDatabase());
  // a fixed tombstone secret: no secret file is written into the working directory
  const config: Config = { ...loadConfig({ CIBLE_TOMBSTONE_SECRET: 'test-tombstone-secret-0123456789abcdef' }), ...options.config };
  const captured = captureLogger();
  const app = createApp({
    database,
    clock: options.clock ?? systemClock,
    logger: options.logger ?? captured.logger,
    config,
    pipeline: options.pipeline ?? refusingPipeline,
  });
  const keys = {} as Record<Role, string>;
  for (const role of ROLES) keys[role] = (await createApiKey(database.db, `test ${role}`, role)).key;
  return {
    app,
    database,
    config,
    logLines: captured.lines,
    keys,
    call(role, path, init = {}) {
      const headers = new Headers(init.headers);
      if (role) headers.set('authorization', `Bearer ${keys[role]}`);
      return Promise.resolve(app.request(path, { ...init, headers }));
    },
    close: () => database.close(),
  };
}

/** A JSON body with its content type. */
export function jsonBody(method: string, body: unknown): RequestInit {
  return { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) };
}

/** The parsed JSON body, loosely typed for assertions. */
// biome-ignore lint: tests read arbitrary JSON
export async function bodyOf(response: Response): Promise<any> {
  return response.json();
}
