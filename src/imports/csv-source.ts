import { closeSync, openSync, readSync } from 'node:fs';
import { createReadStream } from 'node:fs';
import { pipeline, type Readable, Transform } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { parse } from 'csv-parse';

/** A problem with the file as a whole (not one row): nothing is imported. */
export class ImportFileError extends Error {}

export interface CsvRow {
  /** 1-based line number in the file (the header is line 1). */
  line: number;
  /** Values by contract column name, after the column mapping; absent columns are missing. */
  values: Record<string, string>;
  /** The row's fields as read, for the rejects file. */
  raw: string[];
}

export interface CsvSourceOptions {
  required: readonly string[];
  optional: readonly string[];
  /** file column name -> contract column name */
  columnMap?: Record<string, string>;
}

export interface CsvSource {
  header: string[];
  /** A row with the wrong number of fields carries `__shape_error` in its values. */
  rows: AsyncIterable<CsvRow>;
}

const GZIP_MAGIC = [0x1f, 0x8b];

function isGzip(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(2);
    const read = readSync(fd, head, 0, 2, 0);
    return read === 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1];
  } finally {
    closeSync(fd);
  }
}

/** Refuses binary content early instead of reporting thousands of nonsense rows. */
function rejectBinaryContent(): Transform {
  let inspected = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (inspected < 65_536) {
        const nul = chunk.indexOf(0);
        if (nul !== -1) {
          callback(new ImportFileError(`the file is not CSV text: it holds binary content (a NUL byte at offset ${inspected + nul})`));
          return;
        }
        inspected += chunk.length;
      }
      callback(null, chunk);
    },
  });
}

/** Opens a CSV file (gzip accepted, detected by content) as a stream of rows keyed by contract column names. */
export async function openCsv(path: string, options: CsvSourceOptions): Promise<CsvSource> {
  let gzip: boolean;
  try {
    gzip = isGzip(path);
  } catch (error) {
    throw new ImportFileError(`cannot read ${path}: ${(error as Error).message}`);
  }
  const stages: Array<Readable | Transform> = [createReadStream(path)];
  if (gzip) stages.push(createGunzip());
  stages.push(rejectBinaryContent());
  const parser = parse({ bom: true, relax_column_count: true, skip_empty_lines: true, info: true });
  // pipeline, unlike pipe, destroys the parser with any earlier stage's error
  pipeline([...stages, parser], () => undefined);

  const records = parser[Symbol.asyncIterator]() as AsyncIterator<{ record: string[]; info: { lines: number } }>;
  const first = await nextRecord(records);
  if (first.done) {
    throw new ImportFileError(
      `the file is empty: expected a header line with the columns ${options.required.join(',')}`,
    );
  }
  const header = first.value.record.map((name) => name.trim());
  const columnIndex = resolveColumns(header, options);

  async function* rows(): AsyncIterable<CsvRow> {
    for (;;) {
      const next = await nextRecord(records);
      if (next.done) return;
      const { record, info } = next.value;
      const values: Record<string, string> = {};
      for (const [name, index] of columnIndex) {
        const value = record[index];
        if (value !== undefined) values[name] = value;
      }
      if (record.length !== header.length) {
        values.__shape_error = `expected ${header.length} fields as in the header, found ${record.length}`;
      }
      yield { line: info.lines, values, raw: record };
    }
  }
  return { header, rows: rows() };
}

async function nextRecord<T>(records: AsyncIterator<T>): Promise<IteratorResult<T>> {
  try {
    return await records.next();
  } catch (error) {
    if (error instanceof ImportFileError) throw error;
    const message = (error as Error).message;
    const line = /line (\d+)/i.exec(message)?.[1];
    throw new ImportFileError(`the file is not valid CSV${line ? ` at line ${line}` : ''}: ${message}`);
  }
}

function resolveColumns(header: string[], options: CsvSourceOptions): Map<string, number> {
  const columnMap = options.columnMap ?? {};
  for (const source of Object.keys(columnMap)) {
    if (!header.includes(source)) {
      throw new ImportFileError(`line 1: --map names column "${source}", which the header does not have (it has: ${header.join(', ')})`);
    }
  }
  const known = new Set([...options.required, ...options.optional]);
  const index = new Map<string, number>();
  header.forEach((name, position) => {
    const target = columnMap[name] ?? name;
    if (!known.has(target)) return; // extra columns are allowed and ignored
    if (index.has(target)) throw new ImportFileError(`line 1: column "${target}" appears twice in the header (after mapping)`);
    index.set(target, position);
  });
  const missing = options.required.filter((name) => !index.has(name));
  if (missing.length > 0) {
    throw new ImportFileError(
      `line 1: missing required column(s) ${missing.join(', ')}; the header has: ${header.join(', ')}` +
        ' (use --map FileColumn=column to rename)',
    );
  }
  return index;
}
