/** Starts pipeline runs for the HTTP API: in-process, or through the job queue where workers exist. */
export interface PipelineLauncher {
  /** queues a run and returns its id at once; throws PipelineBusyError when one is already running */
  start(request: { products: string[] | 'all'; asOf?: Date; horizonDays?: number; actor: string }): Promise<number>;
}

export { PipelineBusyError } from './registry.repository.ts';
