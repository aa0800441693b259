import Papa from 'papaparse';

/*
 * The one CSV writer for every CSV file the product emits (target lists, portability bundles,
 * rejects files, prepared data sets). A cell whose text starts with = + - @, a tab or a carriage
 * return is a formula to a spreadsheet (`=HYPERLINK(…)`, `+cmd|…`, `@SUM(…)`): such a cell is
 * written with a leading single quote, which spreadsheets show as text (OWASP, CSV injection).
 * A cell that is a number as a whole (an optional sign, digits, a decimal point, an exponent) is
 * written as it is: a spreadsheet reads it as a number, never as a formula. So the product's own
 * figures (negative contributions, scores) and E.164 phone numbers (+33…) stay what they are,
 * whether they come as JavaScript numbers or as text.
 */

const FORMULA_START = /^[=+\-@\t\r]/;
const PLAIN_NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** The cell as written: empty for null, JSON for lists and objects, ISO 8601 for dates, neutralised when it reads as a formula. */
export function spreadsheetSafe(value: unknown): string | number | bigint {
  if (value === null || value === undefined) return '';
  if (typeof value === 'number' || typeof value === 'bigint') return value;
  if (typeof value === 'boolean') return String(value);
  const text = value instanceof Date ? value.toISOString() : typeof value === 'object' ? JSON.stringify(value) : String(value);
  return FORMULA_START.test(text) && !PLAIN_NUMBER.test(text) ? `'${text}` : text;
}

/** Rows as CSV text (RFC 4180 quoting, one line per row), every cell through `spreadsheetSafe`. */
export function csvLines(rows: ReadonlyArray<readonly unknown[]>): string {
  if (rows.length === 0) return '';
  return `${Papa.unparse(
    rows.map((row) => row.map(spreadsheetSafe)),
    { newline: '\n' },
  )}\n`;
}
