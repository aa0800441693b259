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
      stream.write(
        `✓ ${stage.padEnd(22)} ${seconds.toFixed(1).padStart(7)} s${rows > 0 ? `  ${rows} rows (${Math.round(rows / Math.max(seconds, 1e-3))}/s)` : ''}\n`,
      );
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

export interface StageTimer {
  /** each stage run so far: seconds and rows */
  stages: Array<{ stage: string; seconds: number; rows: number }>;
  /** the largest resident set seen at the end of a stage */
  peakRss(): number;
  /** runs one stage, reporting its start and end to `progress` */
  timed<T>(stage: string, work: () => Promise<{ value: T; rows: number }>): Promise<T>;
}

/** Times the stages of one part of a run, for its report and its progress display. */
export function stageTimer(progress: Progress): StageTimer {
  const stages: StageTimer['stages'] = [];
  let peak = process.memoryUsage().rss;
  return {
    stages,
    peakRss: () => peak,
    async timed(stage, work) {
      progress.stage(stage);
      const began = performance.now();
      const { value, rows } = await work();
      const seconds = (performance.now() - began) / 1000;
      peak = Math.max(peak, process.memoryUsage().rss);
      stages.push({ stage, seconds, rows });
      progress.done(stage, seconds, rows);
      return value;
    },
  };
}
