/** A worker process and its heartbeat (see worker-presence.repository.ts). */
export interface JobWorkerTable {
  /** 'host:pid' */
  worker: string;
  started_at: Date;
  heartbeat_at: Date;
  stopped_at: Date | null;
}
