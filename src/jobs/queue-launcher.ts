import type { AppContext } from '../context.ts';
import type { PipelineLauncher } from '../registry/pipeline-launcher.ts';
import type { JobQueue } from './job-queue.ts';
import { enqueueRun, type RunDefaults } from './pipeline-jobs.ts';

/** What the API gives `POST /v1/pipeline/runs`: the run is queued for whichever worker takes it. */
export function createQueueLauncher(context: AppContext, queue: JobQueue, defaults: RunDefaults = {}): PipelineLauncher {
  return {
    start: (request) =>
      enqueueRun(
        context,
        queue,
        {
          trigger: `api:${request.actor}`,
          products: request.products === 'all' ? null : request.products,
          asOf: request.asOf ?? null,
          ...(request.horizonDays !== undefined ? { horizonDays: request.horizonDays } : {}),
        },
        defaults,
      ),
  };
}
