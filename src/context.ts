import { type Clock, systemClock } from './clock.ts';
import type { Config } from './config.ts';
import { type DatabaseHandle, openDatabase } from './db/engine.ts';
import { migrateToLatest } from './db/migrate.ts';
import { createLogger, type Logger } from './logger.ts';

/** Everything a command or a server needs, built once and closed by stop(). */
export interface AppContext {
  config: Config;
  logger: Logger;
  clock: Clock;
  database: DatabaseHandle;
  stop(): Promise<void>;
}

export interface ContextOptions {
  migrate?: boolean;
  logger?: Logger;
  clock?: Clock;
  defaultLogLevel?: string;
}

export async function createContext(config: Config, options: ContextOptions = {}): Promise<AppContext> {
  const logger = options.logger ?? createLogger(config.logLevel ?? options.defaultLogLevel ?? 'info');
  const database = await openDatabase(config.database);
  logger.debug({ engine: database.engine }, 'database opened');
  if (options.migrate) {
    const applied = await migrateToLatest(database.db);
    if (applied.length > 0) logger.info({ applied }, 'migrations applied');
  }
  return {
    config,
    logger,
    clock: options.clock ?? systemClock,
    database,
    stop: () => database.close(),
  };
}
