import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Clock } from '../../src/clock.ts';
import {
  dueSlot,
  nextSlotAfter,
  type PipelineSchedule,
  startScheduleTicker,
  validateSchedule,
} from '../../src/schedule/pipeline-schedule.ts';
import { captureLogger } from '../helpers/silent-logger.ts';

const PARIS: PipelineSchedule = { cron: '0 2 * * *', timeZone: 'Europe/Paris' };
const MINUTE = 60_000;

/** A clock the test moves by hand. */
function manualClock(start: string): Clock & { set(instant: Date): void; advance(ms: number): void } {
  let current = new Date(start).getTime();
  return {
    now: () => new Date(current),
    set: (instant) => {
      current = instant.getTime();
    },
    advance: (ms) => {
      current += ms;
    },
  };
}

/** Starts a ticker at `from`, ticks every `stepMs` until `to`, and returns the slots it started. */
async function slotsFired(schedule: PipelineSchedule, from: string, to: string, stepMs = 15 * MINUTE): Promise<string[]> {
  const clock = manualClock(from);
  const slots: string[] = [];
  const ticker = startScheduleTicker({
    clock,
    schedule,
    intervalMs: 3_600_000,
    logger: captureLogger().logger,
    onSlot: async (slot) => {
      slots.push(slot.toISOString());
    },
  });
  try {
    while (clock.now().getTime() < new Date(to).getTime()) {
      clock.advance(stepMs);
      await ticker.tick();
    }
  } finally {
    ticker.stop();
  }
  return slots;
}

const localDate = (iso: string, timeZone: string) => new Date(iso).toLocaleDateString('en-CA', { timeZone });

describe('the nightly schedule across daylight-saving changes (0 2 * * *, Europe/Paris)', () => {
  it('spring forward (2026-03-29, 02:00 does not exist): one run each night, at 03:00 CEST that night', async () => {
    // from midnight local on 26 March to midnight local on 1 April, a tick every 15 minutes
    const slots = await slotsFired(PARIS, '2026-03-25T23:00:00Z', '2026-03-31T22:00:00Z');
    expect(slots).toEqual([
      '2026-03-26T01:00:00.000Z', // 02:00 CET
      '2026-03-27T01:00:00.000Z',
      '2026-03-28T01:00:00.000Z',
      '2026-03-29T01:00:00.000Z', // 03:00 CEST: the first instant after the missing 02:00
      '2026-03-30T00:00:00.000Z', // 02:00 CEST
      '2026-03-31T00:00:00.000Z',
    ]);
    expect(new Set(slots.map((slot) => localDate(slot, 'Europe/Paris'))).size).toBe(slots.length);
  });

  it('fall back (2026-10-25, 02:00 happens twice): one run each night, at the first 02:00', async () => {
    const slots = await slotsFired(PARIS, '2026-10-21T22:00:00Z', '2026-10-27T23:00:00Z');
    expect(slots).toEqual([
      '2026-10-22T00:00:00.000Z', // 02:00 CEST
      '2026-10-23T00:00:00.000Z',
      '2026-10-24T00:00:00.000Z',
      '2026-10-25T00:00:00.000Z', // the first 02:00 (CEST); the second one (01:00Z, CET) does not fire
      '2026-10-26T01:00:00.000Z', // 02:00 CET
      '2026-10-27T01:00:00.000Z',
    ]);
    expect(new Set(slots.map((slot) => localDate(slot, 'Europe/Paris'))).size).toBe(slots.length);
  });

  it('fires once on the DST nights whatever the tick spacing (1 minute, 7 minutes, 2 hours)', async () => {
    for (const step of [MINUTE, 7 * MINUTE, 120 * MINUTE]) {
      // midnight to 06:00 local on each night
      expect(await slotsFired(PARIS, '2026-03-28T23:00:00Z', '2026-03-29T04:00:00Z', step), `step ${step}`).toEqual([
        '2026-03-29T01:00:00.000Z',
      ]);
      expect(await slotsFired(PARIS, '2026-10-24T22:00:00Z', '2026-10-25T05:00:00Z', step), `step ${step}`).toEqual([
        '2026-10-25T00:00:00.000Z',
      ]);
    }
  });

  it('a process started between the two 02:00 of the autumn night does not run at the second one', async () => {
    expect(await slotsFired(PARIS, '2026-10-25T00:30:00Z', '2026-10-26T02:00:00Z')).toEqual(['2026-10-26T01:00:00.000Z']);
    expect(await slotsFired(PARIS, '2026-10-25T00:00:00Z', '2026-10-25T23:00:00Z')).toEqual([]);
  });
});

describe('another zone and expression (30 6 * * 1-5, America/New_York)', () => {
  it('fires at 06:30 local on weekdays only, before and after the US change (2026-03-08)', async () => {
    const slots = await slotsFired(
      { cron: '30 6 * * 1-5', timeZone: 'America/New_York' },
      '2026-03-05T00:00:00Z',
      '2026-03-17T00:00:00Z',
      30 * MINUTE,
    );
    expect(slots).toEqual([
      '2026-03-05T11:30:00.000Z', // Thu, EST (UTC-5)
      '2026-03-06T11:30:00.000Z', // Fri
      '2026-03-09T10:30:00.000Z', // Mon, EDT (UTC-4)
      '2026-03-10T10:30:00.000Z',
      '2026-03-11T10:30:00.000Z',
      '2026-03-12T10:30:00.000Z',
      '2026-03-13T10:30:00.000Z',
      '2026-03-16T10:30:00.000Z',
    ]);
  });

  it('and back to EST after 2026-11-01', async () => {
    const slots = await slotsFired({ cron: '30 6 * * 1-5', timeZone: 'America/New_York' }, '2026-10-29T12:00:00Z', '2026-11-03T12:00:00Z');
    expect(slots).toEqual(['2026-10-30T10:30:00.000Z', '2026-11-02T11:30:00.000Z', '2026-11-03T11:30:00.000Z']);
  });
});

describe('nextSlotAfter and dueSlot', () => {
  it('nextSlotAfter is strictly after the instant', () => {
    expect(nextSlotAfter(PARIS, new Date('2026-06-10T00:00:00Z')).toISOString()).toBe('2026-06-11T00:00:00.000Z');
    expect(nextSlotAfter(PARIS, new Date('2026-06-09T23:59:59.999Z')).toISOString()).toBe('2026-06-10T00:00:00.000Z');
    expect(nextSlotAfter(PARIS, new Date('2026-03-28T02:00:00Z')).toISOString()).toBe('2026-03-29T01:00:00.000Z');
    expect(nextSlotAfter(PARIS, new Date('2026-10-25T00:00:00Z')).toISOString()).toBe('2026-10-26T01:00:00.000Z');
  });

  it('dueSlot: the latest slot in (previousCheck, now], older missed slots are not replayed', () => {
    const at = (iso: string) => new Date(iso);
    expect(dueSlot(PARIS, at('2026-06-09T23:00:00Z'), at('2026-06-10T00:00:00Z'))?.toISOString()).toBe('2026-06-10T00:00:00.000Z');
    expect(dueSlot(PARIS, at('2026-06-10T00:00:00Z'), at('2026-06-10T01:00:00Z'))).toBeNull();
    expect(dueSlot(PARIS, at('2026-06-10T00:00:01Z'), at('2026-06-10T23:59:59Z'))).toBeNull();
    // three nights missed: only the latest
    expect(dueSlot(PARIS, at('2026-06-07T12:00:00Z'), at('2026-06-10T12:00:00Z'))?.toISOString()).toBe('2026-06-10T00:00:00.000Z');
    // a clock that went back
    expect(dueSlot(PARIS, at('2026-06-10T12:00:00Z'), at('2026-06-10T11:00:00Z'))).toBeNull();
  });

  it('dueSlot stays cheap over long gaps, and finds slots rarer than yearly', () => {
    const started = performance.now();
    const minutely = dueSlot(
      { cron: '* * * * *', timeZone: 'Europe/Paris' },
      new Date('2025-06-10T12:00:30Z'),
      new Date('2026-06-10T12:00:30Z'),
    );
    expect(minutely?.toISOString()).toBe('2026-06-10T12:00:00.000Z');
    expect(performance.now() - started).toBeLessThan(2_000);
    // 29 February at midnight, Paris: the latest before December 2026 is in 2024
    const leap = dueSlot(
      { cron: '0 0 29 2 *', timeZone: 'Europe/Paris' },
      new Date('2023-01-01T00:00:00Z'),
      new Date('2026-12-01T00:00:00Z'),
    );
    expect(leap?.toISOString()).toBe('2024-02-28T23:00:00.000Z');
  });
});

describe('validateSchedule', () => {
  it('accepts the default and other valid schedules', () => {
    expect(() => validateSchedule(PARIS)).not.toThrow();
    expect(() => validateSchedule({ cron: '30 6 * * 1-5', timeZone: 'America/New_York' })).not.toThrow();
    expect(() => validateSchedule({ cron: '*/15 1-4 * * mon', timeZone: 'UTC' })).not.toThrow();
  });

  it('names the cron field and its value when the expression is wrong', () => {
    expect(() => validateSchedule({ cron: '61 2 * * *', timeZone: 'Europe/Paris' })).toThrow(
      /schedule cron "61 2 \* \* \*" is not a valid cron expression: .*61/,
    );
    expect(() => validateSchedule({ cron: 'every night', timeZone: 'Europe/Paris' })).toThrow(
      /schedule cron "every night" must be a five-field cron expression/,
    );
    expect(() => validateSchedule({ cron: '0 0 2 * * *', timeZone: 'Europe/Paris' })).toThrow(
      /schedule cron "0 0 2 \* \* \*" must be a five-field/,
    );
    expect(() => validateSchedule({ cron: '0 2 31 2 *', timeZone: 'Europe/Paris' })).toThrow(
      /schedule cron "0 2 31 2 \*" is not a valid cron expression/,
    );
  });

  it('names the timeZone field and its value when the zone is unknown', () => {
    expect(() => validateSchedule({ cron: '0 2 * * *', timeZone: 'Mars/Olympus_Mons' })).toThrow(
      /schedule timeZone "Mars\/Olympus_Mons" is not an IANA time zone/,
    );
    expect(() => validateSchedule({ cron: '0 2 * * *', timeZone: '' })).toThrow(/schedule timeZone "" is not an IANA time zone/);
  });

  it('the ticker refuses to start on an invalid schedule', () => {
    expect(() =>
      startScheduleTicker({
        clock: manualClock('2026-06-10T00:00:00Z'),
        schedule: { cron: '0 25 * * *', timeZone: 'Europe/Paris' },
        intervalMs: 1000,
        onSlot: async () => {},
        logger: captureLogger().logger,
      }),
    ).toThrow(/schedule cron "0 25 \* \* \*"/);
  });
});

describe('the ticker', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('does not replay the past when a process starts after a slot', async () => {
    // started at 03:00 local, an hour after that night's slot
    expect(await slotsFired(PARIS, '2026-06-10T01:00:00Z', '2026-06-10T23:00:00Z')).toEqual([]);
  });

  it('retries a failed slot at each check until it starts, logging instant and error type only', async () => {
    const clock = manualClock('2026-06-09T12:00:00Z');
    const { logger, lines } = captureLogger();
    const attempts: string[] = [];
    let failuresLeft = 2;
    const ticker = startScheduleTicker({
      clock,
      schedule: PARIS,
      intervalMs: 60_000,
      logger,
      onSlot: async (slot) => {
        attempts.push(slot.toISOString());
        if (failuresLeft-- > 0) throw new TypeError('duplicate key value (email)=(jeanne.martin@example.com)');
      },
    });
    for (const instant of [
      '2026-06-10T00:00:30Z',
      '2026-06-10T00:01:30Z',
      '2026-06-10T00:02:30Z',
      '2026-06-10T00:03:30Z',
      '2026-06-10T12:00:00Z',
    ]) {
      clock.set(new Date(instant));
      await ticker.tick();
    }
    clock.set(new Date('2026-06-11T00:00:30Z'));
    await ticker.tick();
    ticker.stop();
    // two failures, then it starts once; nothing more until the next night
    expect(attempts).toEqual([...Array(3).fill('2026-06-10T00:00:00.000Z'), '2026-06-11T00:00:00.000Z']);
    const entries = lines.map((line) => JSON.parse(line));
    const failures = entries.filter((entry) => String(entry.msg).startsWith('schedule slot failed'));
    expect(failures).toEqual([
      expect.objectContaining({ level: 50, slot: '2026-06-10T00:00:00.000Z', attempt: 1, err: { type: 'TypeError' } }),
      expect.objectContaining({ level: 50, slot: '2026-06-10T00:00:00.000Z', attempt: 2, err: { type: 'TypeError' } }),
    ]);
    expect(entries.filter((entry) => entry.msg === 'schedule slot due').map((entry) => entry.attempt)).toEqual([1, 2, 3, 1]);
    expect(lines.join('')).not.toContain('example.com');
  });

  it('a slot still failing when the next one falls due is replaced by it, not run late', async () => {
    const clock = manualClock('2026-06-09T12:00:00Z');
    const attempts: string[] = [];
    let databaseUp = false;
    const ticker = startScheduleTicker({
      clock,
      schedule: PARIS,
      intervalMs: 60_000,
      logger: captureLogger().logger,
      onSlot: async (slot) => {
        attempts.push(slot.toISOString());
        if (!databaseUp) throw new Error('connect ECONNREFUSED');
      },
    });
    clock.set(new Date('2026-06-10T00:00:30Z'));
    await ticker.tick();
    clock.set(new Date('2026-06-10T18:00:00Z'));
    await ticker.tick();
    clock.set(new Date('2026-06-11T00:00:30Z'));
    databaseUp = true;
    await ticker.tick();
    clock.set(new Date('2026-06-11T00:01:30Z'));
    await ticker.tick();
    ticker.stop();
    expect(attempts).toEqual(['2026-06-10T00:00:00.000Z', '2026-06-10T00:00:00.000Z', '2026-06-11T00:00:00.000Z']);
  });

  it('ticks on its interval until stopped, and overlapping ticks start a slot once', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const clock = manualClock('2026-06-09T23:58:00Z');
    const slots: string[] = [];
    let release: () => void = () => {};
    const ticker = startScheduleTicker({
      clock,
      schedule: PARIS,
      intervalMs: 60_000,
      logger: captureLogger().logger,
      onSlot: (slot) => {
        slots.push(slot.toISOString());
        return new Promise<void>((resolve) => {
          release = resolve;
        });
      },
    });
    clock.set(new Date('2026-06-10T00:00:30Z'));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(slots).toEqual(['2026-06-10T00:00:00.000Z']);
    // onSlot still running: further ticks join it
    clock.set(new Date('2026-06-10T00:01:30Z'));
    await vi.advanceTimersByTimeAsync(60_000);
    const joined = ticker.tick();
    release();
    await joined;
    expect(slots).toHaveLength(1);

    ticker.stop();
    clock.set(new Date('2026-06-11T00:00:30Z'));
    await vi.advanceTimersByTimeAsync(180_000);
    await ticker.tick();
    expect(slots).toEqual(['2026-06-10T00:00:00.000Z']);
  });
});
