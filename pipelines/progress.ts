import type { Logger } from '../src/logger.ts';

/** What a run reports as it goes: a live line on a terminal, plain log records otherwise. */
export interface Progress {
  /** the run's record exists: its id, before any stage */
  runStarted?(runId: number): void;
  stage(name: string): void;
  step(detail: string, done: number, total: number): void;
  done(stage: string, seconds: number, rows: number): void;
}

export function terminalProgress(stream: NodeJS.WriteStream): Progress {
  let current = '';
  let started = Date.now();
  const line = (text: string) => stream.write(`\r\x1b[2K${text}`);
  return {
    stage(name) {
      current = name;
      started = Date.now();
      line(`${name}…`);
    },
    step(detail, done, total) {
      const seconds = (Date.now() - started) / 1000;
      line(`${current}: ${detail} ${done}/${total}${seconds > 0 ? ` (${Math.round(done / seconds)}/s)` : ''}`);
    },
    done(stage, seconds, rows) {
      line('');
      stream.write(`✓ ${stage.padEnd(22)} ${seconds.toFixed(1).padStart(7)} s${rows > 0 ? `  ${rows} rows (${Math.round(rows / Math.max(seconds, 1e-3))}/s)` : ''}\n`);
    },
  };
}

export function logProgress(logger: Logger): Progress {
  return {
    stage(name) {
      logger.info({ stage: name }, 'stage started');
    },
    step(detail, done, total) {
      if (done === total) logger.info({ detail, done, total }, 'stage step');
    },
    done(stage, seconds, rows) {
      logger.info({ stage, seconds: Number(seconds.toFixed(2)), rows }, 'stage finished');
    },
  };
}

export const silentProgress: Progress = { stage() {}, step() {}, done() {} };
