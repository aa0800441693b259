import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Command } from 'commander';
import type { JobQueue } from '../jobs/job-queue.ts';
import type { Worker } from '../jobs/worker.ts';
import type { SupervisedWorker } from '../jobs/worker-process.ts';
import { UserError } from './cli-context.ts';
import { JOB_RELEASE_GRACE_MS } from './worker.command.ts';

const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
/** in-flight requests get this long to finish once a stop is asked */
const REQUEST_GRACE_MS = 10_000;
/** a worker child still running this long after releasing its job is killed */
const WORKER_EXIT_GRACE_MS = 15_000;
/**
 * Another process may use the embedded database while this one owns it: it connects to this
 * owner (src/db/embedded-owner.ts). So the worker runs in its own process on both engines.
 */
const EMBEDDED_SERVES_OTHER_PROCESSES = true;

export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('start the HTTP API on HOST:PORT (default 127.0.0.1:3000), after applying pending migrations; stops on Ctrl-C or SIGTERM')
    .option(
      '--with-worker',
      'also start a worker (small installs, the embedded database): a `cible worker` child process, restarted if it dies and stopped with the server, takes pipeline runs and the schedule, so training and scoring never slow the API down',
    )
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
  const [{ loadConfig }, { createContext }, { openJobQueue }, { ScheduleError, validateSchedule }] = await Promise.all([
    import('../config.ts'),
    import('../context.ts'),
    import('../jobs/job-queue.ts'),
    import('../schedule/pipeline-schedule.ts'),
  ]);
  const config = loadConfig();
  // the worker's schedule is refused here, before anything starts
  if (options.withWorker) {
    try {
      validateSchedule({ cron: config.jobs.cron, timeZone: config.jobs.timeZone });
    } catch (error) {
      throw error instanceof ScheduleError ? new UserError(error.message) : error;
    }
  }
  const context = await createContext(config, { migrate: true, defaultLogLevel: 'info' });
  const { logger } = context;
  // runs asked for over HTTP are queued; a worker (the child process of --with-worker, or others) takes them
  const childWorker = options.withWorker && (context.database.engine === 'postgres' || EMBEDDED_SERVES_OTHER_PROCESSES);
  let inProcessWorker: Worker | null = null;
  let queue: JobQueue;
  try {
    if (options.withWorker && !childWorker) {
      const { startWorker } = await import('../jobs/worker.ts');
      inProcessWorker = await startWorker(context, { concurrency: 1, schedule: true });
      logger.warn(
        'the embedded database serves one process: the worker runs in the server process, so requests slow down while a run trains and scores',
      );
    }
    queue = inProcessWorker?.queue ?? (await openJobQueue(context));
  } catch (error) {
    await context.stop();
    throw error;
  }
  const stopQueue = () => (inProcessWorker ? inProcessWorker.stop(0) : queue.stop({ graceful: false }));
  let server: Server;
  try {
    const [{ createQueueLauncher }, { createApp }, { createAdaptorServer }] = await Promise.all([
      import('../jobs/queue-launcher.ts'),
      import('../api/app.ts'),
      import('@hono/node-server'),
    ]);
    const pipeline = createQueueLauncher(context, queue);
    const app = createApp({ database: context.database, clock: context.clock, logger, config, pipeline });
    server = createAdaptorServer({ fetch: app.fetch }) as Server;
  } catch (error) {
    // a server that cannot be built must not go on holding the (embedded) database
    await stopQueue();
    await context.stop();
    throw error;
  }
  // signals are caught from here on: a stop during start-up still closes the database
  const stop = nextSignal();
  try {
    await listen(server, config.port, config.host);
  } catch (error) {
    await stopQueue();
    await context.stop();
    const code = (error as { code?: string }).code;
    if (code === 'EADDRINUSE')
      throw new UserError(`${config.host}:${config.port} is already in use: set PORT (or HOST) to listen elsewhere`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND')
      throw new UserError(`cannot listen on HOST ${config.host}: not an address of this machine`);
    if (code === 'EACCES') throw new UserError(`not allowed to listen on port ${config.port}: use a port above 1023`);
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  console.log(`cible API listening on ${url} (${context.database.engine} database); OpenAPI at ${url}/openapi.json, docs at ${url}/docs`);
  logger.info({ url, engine: context.database.engine }, 'listening');
  // started once this process holds the database, so that on the embedded one the worker connects to it
  let worker: SupervisedWorker | null = null;
  if (childWorker) {
    const { superviseWorkerProcess } = await import('../jobs/worker-process.ts');
    worker = superviseWorkerProcess({ logger });
  }

  const signal = await stop;
  logger.info({ signal }, 'stopping');
  await closeServer(server);
  if (worker) {
    console.log('stopping the worker: its current job finishes or is released for another worker');
    // the worker releases a job still running after JOB_RELEASE_GRACE_MS; it is killed if it has not exited some time after that
    await worker.stop(JOB_RELEASE_GRACE_MS + WORKER_EXIT_GRACE_MS);
  }
  if (inProcessWorker) {
    console.log('stopping the worker: its current job finishes or is released for another worker');
    await inProcessWorker.stop(JOB_RELEASE_GRACE_MS);
  } else {
    await queue.stop();
  }
  await context.stop();
  console.log('stopped');
  // a released job's work may still be on the stack: nothing else would end the process
  if (inProcessWorker) process.exit(0);
}
