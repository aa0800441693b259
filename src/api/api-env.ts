import type { Kysely } from 'kysely';
import type { ApiKeyIdentity } from '../auth/api-key.repository.ts';
import type { Clock } from '../clock.ts';
import type { Config } from '../config.ts';
import type { Database } from '../db/database.ts';
import type { DatabaseHandle } from '../db/engine.ts';
import type { Logger } from '../logger.ts';

/** Starts pipeline runs for the API; in-process here, a job queue where workers exist. */
export interface PipelineLauncher {
  /** queues a run and returns its id at once; throws PipelineBusyError when one is already running */
  start(request: { products: string[] | 'all'; asOf?: Date; horizonDays?: number; actor: string }): Promise<number>;
}

export { PipelineBusyError } from '../registry/registry.repository.ts';

/** What the HTTP app is built from: nothing is module-global. */
export interface ApiDependencies {
  database: DatabaseHandle;
  clock: Clock;
  logger: Logger;
  config: Config;
  pipeline: PipelineLauncher;
}

export interface AppEnv {
  Variables: {
    requestId: string;
    apiKey: ApiKeyIdentity;
    deps: ApiDependencies;
    db: Kysely<Database>;
  };
}
