import type { Command } from 'commander';
import { positiveInteger, UserError } from './cli-context.ts';
import { nextSignal } from './serve.command.ts';

/** a job still running this long after SIGTERM is released for another worker */
export const JOB_RELEASE_GRACE_MS = 30_000;

/**
 * Started by `cible serve --with-worker` (with an IPC channel): resolves when that server is gone
 * without stopping us (killed), so that no worker is left behind. Never resolves otherwise.
 */
function parentGone(): Promise<'parent gone'> {
  return new Promise((resolve) => {
    if (!process.connected) return;
    process.once('disconnect', () => resolve('parent gone'));
  });
}

export function registerWorkerCommand(program: Command): void {
  program
    .command('worker')
    .description(
      'take pipeline jobs (training, scoring shards, ranking, publishing) and consent sweeps from the job queue; run as many as you like against one database. Also enqueues the nightly run (CIBLE_PIPELINE_CRON in CIBLE_PIPELINE_TIMEZONE) unless --no-schedule. Stops on SIGTERM: the current job finishes or, after 30 s, is released for another worker',
    )
    .option('--concurrency <n>', 'jobs of each kind this process works on at once', positiveInteger('--concurrency'), 1)
    .option('--no-schedule', 'do not enqueue scheduled runs and sweeps from this process')
    .action(async (flags: { concurrency: number; schedule: boolean }) => {
      const [{ loadConfig }, { createContext }, { startWorker }, { ScheduleError }] = await Promise.all([
        import('../config.ts'),
        import('../context.ts'),
        import('../jobs/worker.ts'),
        import('../schedule/pipeline-schedule.ts'),
      ]);
      const context = await createContext(loadConfig(), { migrate: true, defaultLogLevel: 'info' });
      const stop = Promise.race([nextSignal(), parentGone()]);
      try {
        const worker = await startWorker(context, { concurrency: flags.concurrency, schedule: flags.schedule }).catch((error: unknown) => {
          throw error instanceof ScheduleError ? new UserError(error.message) : error;
        });
        console.log(
          `cible worker started (${context.database.engine} database, concurrency ${flags.concurrency}${flags.schedule ? `, schedule ${context.config.jobs.cron} ${context.config.jobs.timeZone}` : ''})`,
        );
        const signal = await stop;
        context.logger.info({ signal }, 'stopping worker');
        await worker.stop(JOB_RELEASE_GRACE_MS);
      } finally {
        await context.stop();
      }
      // a released job's work may still be on the stack: nothing else would end the process
      process.exit(0);
    });
}
