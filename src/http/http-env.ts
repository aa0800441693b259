import type { Kysely } from 'kysely';
import type { ApiKeyIdentity } from '../auth/api-key.repository.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { Database } from '../db/database.ts';
import type { DatabaseHandle } from '../db/engine.ts';
import type { Logger } from '../logger.ts';
import type { PipelineLauncher } from '../registry/pipeline-launcher.ts';

/*
 * What the HTTP server (the API under /v1 and the review pages under /ui, side by side) is
 * built from and what each request carries: nothing is module-global.
 */

export interface HttpDependencies {
  database: DatabaseHandle;
  clock: Clock;
  logger: Logger;
  config: Config;
  pipeline: PipelineLauncher;
}

export interface HttpEnv {
  Variables: {
    requestId: string;
    apiKey: ApiKeyIdentity;
    deps: HttpDependencies;
    db: Kysely<Database>;
  };
}
