import type { Rng } from './random.ts';

export const MINUTE = 60_000;
export const DAY = 86_400_000;
export const YEAR = 365 * DAY;
/** GDPR entry into application: consents captured before it carry no usable proof. */
export const GDPR_START = Date.UTC(2018, 4, 25);

export function iso(ms: number): string {
  return new Date(ms).toISOString();
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
