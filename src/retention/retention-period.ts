/** A retention period as written on the command line: 3y, 18m or 90d. */
export interface RetentionPeriod {
  amount: number;
  unit: 'y' | 'm' | 'd';
}

export class InvalidPeriodError extends Error {}

const PERIOD = /^(\d{1,4})([ymd])$/;
/** at most a century, in each unit */
const MAX_AMOUNT = { y: 100, m: 1200, d: 36_525 };

export function parseRetentionPeriod(text: string): RetentionPeriod {
  const match = PERIOD.exec(text.trim());
  const expected = 'expects a period such as 3y, 18m or 90d (years, months, days)';
  if (!match) throw new InvalidPeriodError(`${expected}, got "${text}"`);
  const period = { amount: Number(match[1]), unit: match[2] as RetentionPeriod['unit'] };
  if (period.amount < 1 || period.amount > MAX_AMOUNT[period.unit]) {
    throw new InvalidPeriodError(`${expected}, between 1 day and 100 years, got "${text}"`);
  }
  return period;
}

/** The instant `period` before `now`, by the calendar (UTC); a day that does not exist becomes the month's last day. */
export function periodBefore(now: Date, period: RetentionPeriod): Date {
  if (period.unit === 'd') return new Date(now.getTime() - period.amount * 86_400_000);
  const months = period.unit === 'y' ? period.amount * 12 : period.amount;
  const target = new Date(now);
  target.setUTCDate(1);
  target.setUTCMonth(target.getUTCMonth() - months);
  const lastDay = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(now.getUTCDate(), lastDay));
  return target;
}
