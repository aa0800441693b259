import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Command } from 'commander';
import type { JobQueue } from '../jobs/job-queue.ts';
import type { Worker } from '../jobs/worker.ts';
import { JOB_RELEASE_GRACE_MS } from './worker.command.ts';
import { UserError } from './cli-context.ts';

const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
/** in-flight requests get this long to finish once a stop is asked */
const REQUEST_GRACE_MS = 10_000;

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('start the HTTP API on HOST:PORT (default 127.0.0.1:3000), after applying pending migrations; stops on Ctrl-C or SIGTERM')
    .option('--with-worker', 'also work on the job queue in this process (small installs, the embedded database): pipeline runs and the schedule')
    .action((flags: { withWorker?: boolean }) => serveApi({ withWorker: flags.withWorker === true }));
}

/** The next SIGINT or SIGTERM. */
export function nextSignal(): Promise<NodeJS.Signals> {
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

export async function serveApi(options: { withWorker: boolean } = { withWorker: false }): Promise<void> {
  const [{ loadConfig }, { createContext }, { openJobQueue }, { startWorker }, { ScheduleError }] = await Promise.all([
    import('../config.ts'),
    import('../context.ts'),
    import('../jobs/job-queue.ts'),
    import('../jobs/worker.ts'),
    import('../schedule/pipeline-schedule.ts'),
  ]);
  const config = loadConfig();
  const context = await createContext(config, { migrate: true, defaultLogLevel: 'info' });
  const { logger } = context;
  // runs asked for over HTTP are queued; a worker (this process with --with-worker, or others) takes them
  let worker: Worker | null = null;
  let queue: JobQueue;
  try {
    worker = options.withWorker ? await startWorker(context, { concurrency: 1, schedule: true }) : null;
    queue = worker?.queue ?? (await openJobQueue(context));
  } catch (error) {
    await context.stop();
    throw error instanceof ScheduleError ? new UserError(error.message) : error;
  }
  const [{ createQueueLauncher }, { createApp }, { createAdaptorServer }] = await Promise.all([
    import('../jobs/queue-launcher.ts'),
    import('../api/app.ts'),
    import('@hono/node-server'),
  ]);
  const pipeline = createQueueLauncher(context, queue);
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
  if (worker) {
    console.log('stopping the worker: its current job finishes or is released for another worker');
    await worker.stop(JOB_RELEASE_GRACE_MS);
  } else {
    await queue.stop();
  }
  await context.stop();
  console.log('stopped');
  // a released job's work may still be on the stack: nothing else would end the process
  if (worker) process.exit(0);
}
