import type { Rng } from './random.ts';

export const MINUTE = 60_000;
export const DAY = 86_400_000;
export const YEAR = 365 * DAY;
/** GDPR entry into application: consents captured before it carry no usable proof. */
export const GDPR_START = Date.UTC(2018, 4, 25);

const dayPrefixes = new Map<number, string>();

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/**
 * Same output as Date#toISOString for whole milliseconds, several times
 * faster: the date part is computed once per day (a few thousand days at most).
 */
export function iso(ms: number): string {
  const day = Math.floor(ms / DAY);
  let prefix = dayPrefixes.get(day);
  if (prefix === undefined) {
    prefix = new Date(day * DAY).toISOString().slice(0, 11);
    dayPrefixes.set(day, prefix);
  }
  const inDay = ms - day * DAY;
  const hours = Math.floor(inDay / 3_600_000);
  const minutes = Math.floor(inDay / 60_000) % 60;
  const seconds = Math.floor(inDay / 1000) % 60;
  return `${prefix}${pad(hours, 2)}:${pad(minutes, 2)}:${pad(seconds, 2)}.${pad(inDay % 1000, 3)}Z`;
}

/** A whole-second instant strictly inside (after, before); callers keep the gap above two seconds. */
export function instantBetween(rng: Rng, after: number, before: number): number {
  const first = Math.floor(after / 1000) + 1;
  const last = Math.ceil(before / 1000) - 1;
  return (first + rng.int(Math.max(1, last - first + 1))) * 1000;
}

/** An instant shortly after `after` (same session), still before `before`. */
export function soonAfter(rng: Rng, after: number, before: number): number {
  return instantBetween(rng, after, Math.min(before, after + 30 * MINUTE));
}
