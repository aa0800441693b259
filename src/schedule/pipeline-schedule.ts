import cronParser from 'cron-parser';
import type { Clock } from '../clock.ts';
import { isTimeZone } from '../config.ts';
import type { Logger } from '../logger.ts';

/**
 * When the nightly pipeline run is due: a five-field cron expression read as wall-clock time
 * in an IANA time zone (config.jobs.cron / config.jobs.timeZone).
 *
 * Daylight-saving changes (cron-parser 4.9, measured for `0 2 * * *` in Europe/Paris and pinned
 * by test/schedule/pipeline-schedule.test.ts):
 * - spring forward (2026-03-29, 02:00 CET jumps to 03:00 CEST, so 02:00 does not exist): the
 *   slot is 03:00 CEST (01:00Z), the first instant that exists after the missing time. A time
 *   inside the gap moves forward by the gap (02:30 becomes 03:30 CEST). One run that night.
 * - fall back (2026-10-25, 03:00 CEST goes back to 02:00 CET, so 02:00 happens twice): only the
 *   first 02:00 (CEST, 00:00Z) is a slot; the repeated 02:00 CET (01:00Z) is not, from whatever
 *   instant one starts looking. One run that night. (An expression whose hour field lists every
 *   hour, such as `0 * * * *`, does fire in both occurrences of the repeated hour: they are an
 *   hour apart in real time.)
 * So cron-parser's `next()` already gives "once per local night at the configured local time";
 * nothing is deduplicated here. Its `prev()` is wrong at both changes (it returns the repeated
 * hour twice and skips the spring-forward night), so this module only ever walks forward.
 */
export interface PipelineSchedule {
  /** five-field cron expression: minute hour day-of-month month day-of-week */
  cron: string;
  /** IANA time zone the expression is read in, e.g. Europe/Paris */
  timeZone: string;
}

export class ScheduleError extends Error {
  override name = 'ScheduleError';
}

function expressionFrom(schedule: PipelineSchedule, currentDate: Date) {
  return cronParser.parseExpression(schedule.cron, { currentDate, tz: schedule.timeZone });
}

/** Throws a ScheduleError naming the field and the value when the schedule cannot be used. */
export function validateSchedule(schedule: PipelineSchedule): void {
  const { cron, timeZone } = schedule;
  if (typeof timeZone !== 'string' || timeZone.trim() === '' || !isTimeZone(timeZone)) {
    throw new ScheduleError(`schedule timeZone ${JSON.stringify(timeZone)} is not an IANA time zone (such as Europe/Paris)`);
  }
  const fields = typeof cron === 'string' ? cron.trim().split(/\s+/) : [];
  if (fields.length !== 5 || fields[0] === '') {
    throw new ScheduleError(
      `schedule cron ${JSON.stringify(cron)} must be a five-field cron expression (minute hour day-of-month month day-of-week), such as "0 2 * * *"`,
    );
  }
  try {
    expressionFrom(schedule, new Date()).next();
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new ScheduleError(`schedule cron ${JSON.stringify(cron)} is not a valid cron expression: ${reason}`);
  }
}

/** The next instant the schedule fires, strictly after `after`. */
export function nextSlotAfter(schedule: PipelineSchedule, after: Date): Date {
  return expressionFrom(schedule, after).next().toDate();
}

/** The latest slot in (from, to], or null; walks forward from `from`. */
function latestSlotIn(schedule: PipelineSchedule, from: Date, to: Date): Date | null {
  const expression = expressionFrom(schedule, from);
  let latest: Date | null = null;
  for (;;) {
    const slot = expression.next().toDate();
    if (slot.getTime() > to.getTime()) return latest;
    latest = slot;
  }
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
// Look back in widening windows, so that a long gap between checks (a process suspended for
// days, a minutely expression) costs a few steps rather than one step per missed slot.
const LOOK_BACK_MS = [HOUR_MS, DAY_MS, 32 * DAY_MS, 367 * DAY_MS];

/**
 * The latest slot in (previousCheck, now], or null. Older slots of that interval are missed
 * runs and are not replayed: a check starts at most one run.
 */
export function dueSlot(schedule: PipelineSchedule, previousCheck: Date, now: Date): Date | null {
  if (now.getTime() <= previousCheck.getTime()) return null;
  for (const window of LOOK_BACK_MS) {
    const from = now.getTime() - window;
    if (from <= previousCheck.getTime()) break;
    const slot = latestSlotIn(schedule, new Date(from), now);
    if (slot) return slot;
  }
  return latestSlotIn(schedule, previousCheck, now);
}

export interface ScheduleTicker {
  /** checks the clock once and starts the due slot, if any; resolves when onSlot has settled */
  tick(): Promise<void>;
  /** no more ticks (one in progress finishes) */
  stop(): void;
}

export interface ScheduleTickerOptions {
  clock: Clock;
  schedule: PipelineSchedule;
  /** how often the clock is checked; a slot starts at most this long after its time */
  intervalMs: number;
  /** starts the run of a slot; should be idempotent per slot (several schedulers may run) */
  onSlot: (slot: Date) => Promise<void>;
  logger: Logger;
}

function errorFields(error: unknown): { type: string; code?: string } {
  if (!(error instanceof Error)) return { type: typeof error };
  const code = (error as Error & { code?: unknown }).code;
  return typeof code === 'string' ? { type: error.name, code } : { type: error.name };
}

/**
 * Checks the schedule every `intervalMs` and calls `onSlot` for the slot that fell due since the
 * previous check. The first check looks back only to the instant the ticker started, so starting
 * (or restarting) a process never replays past slots. A failing `onSlot` (the database down at
 * 02:00) is logged (slot and error type only: error messages may quote data) and the slot is
 * tried again at every check until it starts or the next slot falls due, which replaces it: a
 * run a whole period late would only delay the next one. Ticks never overlap: a tick asked for
 * while one is in progress joins it.
 */
export function startScheduleTicker(options: ScheduleTickerOptions): ScheduleTicker {
  const { clock, schedule, intervalMs, onSlot, logger } = options;
  validateSchedule(schedule);
  let previousCheck = clock.now();
  // the slot whose onSlot failed, with the number of its next attempt
  let retry: { slot: Date; attempt: number } | null = null;
  let inProgress: Promise<void> | null = null;
  let stopped = false;

  async function check(): Promise<void> {
    const now = clock.now();
    let slot: Date | null;
    try {
      slot = dueSlot(schedule, previousCheck, now);
    } catch (error) {
      logger.error({ err: errorFields(error) }, 'schedule check failed');
      return;
    }
    // a clock stepped back leaves previousCheck where it was, so no slot fires twice
    if (now.getTime() > previousCheck.getTime()) previousCheck = now;
    // a slot that falls due replaces one still failing
    const due = slot ? { slot, attempt: 1 } : retry;
    if (!due) return;
    const at = due.slot.toISOString();
    logger.info({ slot: at, attempt: due.attempt }, 'schedule slot due');
    try {
      await onSlot(due.slot);
      retry = null;
    } catch (error) {
      retry = { slot: due.slot, attempt: due.attempt + 1 };
      logger.error({ slot: at, attempt: due.attempt, err: errorFields(error) }, 'schedule slot failed; tried again at the next check');
    }
  }

  function tick(): Promise<void> {
    if (stopped) return Promise.resolve();
    inProgress ??= check().finally(() => {
      inProgress = null;
    });
    return inProgress;
  }

  const timer = setInterval(() => void tick(), intervalMs);
  timer.unref();
  return {
    tick,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
