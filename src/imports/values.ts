import { isValid, parse as parseWithFormat } from 'date-fns';

/** Each parser returns the value, or a message saying what is wrong with it. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = (error: string): Parsed<never> => ({ ok: false, error });

// ISO 8601 / RFC 3339: a date, or a date and time (T or a space) with an optional offset.
const ISO_8601 = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/**
 * Reads a timestamp. Without an offset it is taken as UTC (documented in the README);
 * with `format` (date-fns tokens such as `dd/MM/yyyy HH:mm`) the text must match that format.
 */
export function parseTimestamp(raw: string, format?: string): Parsed<Date> {
  const text = raw.trim();
  if (text === '') return fail('is empty');
  if (format) {
    const local = parseWithFormat(text, format, new Date(0));
    if (!isValid(local)) return fail(`"${text}" does not match the date format ${format}`);
    return ok(
      new Date(
        Date.UTC(
          local.getFullYear(),
          local.getMonth(),
          local.getDate(),
          local.getHours(),
          local.getMinutes(),
          local.getSeconds(),
          local.getMilliseconds(),
        ),
      ),
    );
  }
  const match = ISO_8601.exec(text);
  if (!match) return fail(`"${text}" is not an ISO 8601 date (expected e.g. 2024-03-31 or 2024-03-31T14:05:00Z)`);
  const [, year, month, day, hour = '00', minute = '00', second = '00', fraction = '0', offset] = match;
  const monthIndex = Number(month) - 1;
  const utc = Date.UTC(
    Number(year),
    monthIndex,
    Number(day),
    Number(hour),
    Number(minute),
    Number(second),
    Number(fraction.padEnd(3, '0').slice(0, 3)),
  );
  const check = new Date(utc);
  if (
    check.getUTCMonth() !== monthIndex ||
    check.getUTCDate() !== Number(day) ||
    Number(hour) > 23 ||
    Number(minute) > 59 ||
    Number(second) > 59
  ) {
    return fail(`"${text}" is not a real date`);
  }
  return ok(new Date(utc - offsetMinutes(offset) * 60_000));
}

function offsetMinutes(offset: string | undefined): number {
  if (!offset || offset === 'Z') return 0;
  const sign = offset.startsWith('-') ? -1 : 1;
  const digits = offset.slice(1).replace(':', '');
  return sign * (Number(digits.slice(0, 2)) * 60 + Number(digits.slice(2, 4)));
}

const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)$/;

export function parsePositiveInteger(raw: string): Parsed<number> {
  const text = raw.trim();
  if (!INTEGER.test(text)) return fail(`"${text}" is not a whole number`);
  const value = Number(text);
  if (value <= 0) return fail(`${text} must be positive (a cancellation or a return is not a purchase)`);
  if (value > 2_147_483_647) return fail(`${text} is too large`);
  return ok(value);
}

/** A money amount, rounded to cents, never negative. */
export function parseAmount(raw: string): Parsed<number> {
  const text = raw.trim();
  if (!DECIMAL.test(text)) return fail(`"${text}" is not a number (use a dot as decimal separator)`);
  const value = Number(text);
  if (value < 0) return fail(`${text} must not be negative`);
  if (value >= 1e10) return fail(`${text} is too large`);
  return ok(Math.round(value * 100) / 100);
}

/** A required text field: trimmed, non-empty, bounded. */
export function parseText(raw: string | undefined, maxLength = 500): Parsed<string> {
  const text = (raw ?? '').trim();
  if (text === '') return fail('is empty');
  if (text.length > maxLength) return fail(`is longer than ${maxLength} characters`);
  return ok(text);
}

/** An optional text field: empty becomes null. */
export function parseOptionalText(raw: string | undefined, maxLength = 500): Parsed<string | null> {
  const text = (raw ?? '').trim();
  if (text === '') return ok(null);
  if (text.length > maxLength) return fail(`is longer than ${maxLength} characters`);
  return ok(text);
}

/** An optional timestamp: empty becomes null. */
export function parseOptionalTimestamp(raw: string | undefined, format?: string): Parsed<Date | null> {
  return (raw ?? '').trim() === '' ? ok(null) : parseTimestamp(raw ?? '', format);
}
