import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logger.ts';

/*
 * `cible serve --with-worker` runs its worker as a child process (`cible worker`), so that
 * training and scoring never run on the event loop that answers HTTP. Why a process rather
 * than a worker thread: the `cible worker` entry already exists and is what production runs
 * (same code, same tests, same logs); a crash in native or WASM code (tfjs, out of memory)
 * takes down the worker, not the API; the API process keeps its own heap and GC; and the
 * child opens the database as any other command does (on the embedded database it connects
 * to the process that owns it).
 */

/** The exit code of a command refused for what the user gave (bad configuration): restarting cannot help. */
const USAGE_ERROR_EXIT = 2;

/** bin/cible.js of this installation, from the sources (src/jobs) or from the build (dist/src/jobs). */
export function cibleEntry(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const entry = join(dir, 'bin', 'cible.js');
    if (existsSync(entry)) return entry;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('bin/cible.js not found above the jobs module');
    dir = parent;
  }
}

export interface WorkerProcessOptions {
  logger: Logger;
  /** the arguments after `cible` (default: worker) */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** first wait before restarting a worker that died; doubles at each quick death, up to maxRestartDelayMs */
  restartDelayMs?: number;
  maxRestartDelayMs?: number;
  /** a worker that ran this long before dying is restarted after the first delay again */
  healthyRunMs?: number;
}

export interface SupervisedWorker {
  /** the current worker process, null while it is being restarted or once stopped */
  pid(): number | null;
  /** SIGTERM to the worker (its job finishes or is released); SIGKILL after `timeoutMs`; no restart */
  stop(timeoutMs: number): Promise<void>;
}

/**
 * Starts `cible worker` as a child process with this process's environment and keeps it
 * running: a worker that dies is restarted (after 1 s, doubling while it keeps dying quickly,
 * up to 30 s), except when it refused its configuration (exit code 2), which a restart would
 * only repeat. Every exit is logged with its code or signal. The child has its own process
 * group (a Ctrl-C at the terminal reaches the server only, which then stops the worker in
 * order) and an IPC channel: if the server dies without stopping it, the worker sees the
 * channel close and stops by itself.
 */
export function superviseWorkerProcess(options: WorkerProcessOptions): SupervisedWorker {
  const { logger } = options;
  const entry = cibleEntry();
  const args = options.args ?? ['worker'];
  const firstDelay = options.restartDelayMs ?? 1000;
  const maxDelay = options.maxRestartDelayMs ?? 30_000;
  const healthyRunMs = options.healthyRunMs ?? 60_000;
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let stopping = false;
  let delay = firstDelay;
  let restartTimer: NodeJS.Timeout | null = null;

  function start(): void {
    const startedAt = Date.now();
    const current = fork(entry, args, {
      env: options.env ?? process.env,
      // node options travel in NODE_OPTIONS (inherited); the server's own flags (--inspect...) are not the worker's
      execArgv: [],
      detached: true,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child = current;
    logger.info({ pid: current.pid }, 'worker process started');
    exited = new Promise((resolve) => {
      current.once('exit', (code, signal) => {
        child = null;
        const ranMs = Date.now() - startedAt;
        const fields = { pid: current.pid, code, signal, seconds: Math.round(ranMs / 100) / 10 };
        if (stopping) {
          logger.info(fields, 'worker process exited');
        } else if (code === USAGE_ERROR_EXIT) {
          logger.error(fields, 'worker process refused its configuration: not restarted (runs stay queued; see the error above)');
        } else {
          delay = ranMs >= healthyRunMs ? firstDelay : delay;
          logger.error({ ...fields, restartInMs: delay }, 'worker process died: restarting it');
          restartTimer = setTimeout(() => {
            restartTimer = null;
            if (!stopping) start();
          }, delay);
          delay = Math.min(maxDelay, delay * 2);
        }
        resolve();
      });
    });
    // a failed fork (no such file...) is reported by 'exit' as well; nothing else to do here
    current.on('error', (error) => logger.error({ pid: current.pid, err: { type: error.name } }, 'worker process error'));
  }

  start();
  return {
    pid: () => child?.pid ?? null,
    async stop(timeoutMs) {
      stopping = true;
      if (restartTimer) clearTimeout(restartTimer);
      const current = child;
      if (!current) return;
      current.kill('SIGTERM');
      const killer = setTimeout(() => {
        logger.warn({ pid: current.pid }, 'worker process still running after its grace period: killed');
        current.kill('SIGKILL');
      }, timeoutMs);
      await exited;
      clearTimeout(killer);
    },
  };
}
