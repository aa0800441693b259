/** Numbers and dates as the review pages print them: every figure with its unit. */

const NA = 'n/a';

const isNumber = (value: number | null | undefined): value is number => typeof value === 'number' && Number.isFinite(value);

/** 12,345 */
export function count(value: number | null | undefined): string {
  return isNumber(value) ? Math.round(value).toLocaleString('en-GB') : NA;
}

/** 12,345 people */
export function people(value: number | null | undefined): string {
  return isNumber(value) ? `${count(value)} ${Math.round(value) === 1 ? 'person' : 'people'}` : NA;
}

/** a share as 12.3 % */
export function percent(value: number | null | undefined, digits = 1): string {
  return isNumber(value) ? `${(value * 100).toFixed(digits)} %` : NA;
}

/** a difference of probabilities as 0.42 percentage points */
export function points(value: number | null | undefined, digits = 2): string {
  return isNumber(value) ? `${(value * 100).toFixed(digits)} pp` : NA;
}

/** an AUC (unitless, 0–1) */
export function auc(value: number | null | undefined): string {
  return isNumber(value) ? value.toFixed(3) : NA;
}

/** a signed difference of AUCs */
export function aucDelta(value: number | null | undefined): string {
  return isNumber(value) ? `${value >= 0 ? '+' : '−'}${Math.abs(value).toFixed(3)}` : NA;
}

/** a lift, as a multiple of the base rate */
export function lift(value: number | null | undefined): string {
  return isNumber(value) ? `${value.toFixed(2)}×` : NA;
}

export function decimal(value: number | null | undefined, digits = 3): string {
  return isNumber(value) ? value.toFixed(digits) : NA;
}

/** 2026-11-01 06:00 UTC */
export function dateTime(value: Date | string | null | undefined): string {
  if (value === null || value === undefined) return NA;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? NA : `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** 2026-11-01 */
export function day(value: Date | string | null | undefined): string {
  if (value === null || value === undefined) return NA;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? NA : date.toISOString().slice(0, 10);
}

/** 12.3 s, 4.2 min */
export function duration(seconds: number | null | undefined): string {
  if (!isNumber(seconds)) return NA;
  if (seconds < 120) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(1)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

export function secondsBetween(from: Date | null, to: Date | null): number | null {
  return from && to ? (to.getTime() - from.getTime()) / 1000 : null;
}
