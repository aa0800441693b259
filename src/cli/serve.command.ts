import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAdaptorServer } from '@hono/node-server';
import type { Command } from 'commander';
import { createPipelineLauncher } from '../../pipelines/pipeline-launcher.ts';
import { createApp } from '../api/app.ts';
import { loadConfig } from '../config.ts';
import { createContext } from '../context.ts';
import { finishRun } from '../registry/registry.repository.ts';
import { UserError } from './cli-context.ts';

const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
/** in-flight requests get this long to finish once a stop is asked */
const REQUEST_GRACE_MS = 10_000;

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('start the HTTP API on HOST:PORT (default 127.0.0.1:3000), after applying pending migrations; stops on Ctrl-C or SIGTERM')
    .action(() => serveApi());
}

/** The next SIGINT or SIGTERM. */
function nextSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handler = (signal: NodeJS.Signals) => {
      for (const name of STOP_SIGNALS) process.off(name, handler);
      resolve(signal);
    };
    for (const name of STOP_SIGNALS) process.on(name, handler);
  });
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (error: Error) => reject(error);
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), REQUEST_GRACE_MS);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}

export async function serveApi(): Promise<void> {
  const config = loadConfig();
  const context = await createContext(config, { migrate: true, defaultLogLevel: 'info' });
  const { logger } = context;
  const pipeline = createPipelineLauncher(context);
  const app = createApp({ database: context.database, clock: context.clock, logger, config, pipeline });
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  // signals are caught from here on: a stop during start-up still closes the database
  const stop = nextSignal();
  try {
    await listen(server, config.port, config.host);
  } catch (error) {
    await context.stop();
    const code = (error as { code?: string }).code;
    if (code === 'EADDRINUSE') throw new UserError(`${config.host}:${config.port} is already in use: set PORT (or HOST) to listen elsewhere`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new UserError(`cannot listen on HOST ${config.host}: not an address of this machine`);
    if (code === 'EACCES') throw new UserError(`not allowed to listen on port ${config.port}: use a port above 1023`);
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  console.log(`cible API listening on ${url} (${context.database.engine} database); OpenAPI at ${url}/openapi.json, docs at ${url}/docs`);
  logger.info({ url, engine: context.database.engine }, 'listening');

  const signal = await stop;
  logger.info({ signal }, 'stopping');
  await closeServer(server);
  const runId = pipeline.activeRunId();
  if (runId !== null) {
    console.log(`waiting for pipeline run ${runId} to finish; ${signal} again to stop now (the run is then recorded as failed)`);
    const outcome = await Promise.race([pipeline.idle().then(() => 'finished' as const), nextSignal().then(() => 'abort' as const)]);
    if (outcome === 'abort') {
      await finishRun(context.database.db, runId, {
        status: 'failed',
        finishedAt: context.clock.now(),
        summary: {},
        error: 'the server was stopped during the run',
      }).catch(() => undefined);
      logger.warn({ runId }, 'pipeline run abandoned by a stop');
      await context.stop().catch(() => undefined);
      // the run's work is still on the stack: nothing else would end the process
      process.exit(1);
    }
  }
  await context.stop();
  console.log('stopped');
}
