import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';

const CHUNK_CHARS = 1 << 16;
const NEEDS_QUOTES = /[",\r\n]/;

export type CsvValue = string | number | null;

/** RFC 4180 quoting: only fields holding a comma, quote or line break are quoted. */
export function csvField(value: CsvValue): string {
  if (value === null) return '';
  if (typeof value === 'number') return String(value);
  return NEEDS_QUOTES.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

export function csvLine(fields: readonly CsvValue[]): string {
  let line = csvField(fields[0] ?? null);
  for (let i = 1; i < fields.length; i++) line += `,${csvField(fields[i] ?? null)}`;
  return `${line}\n`;
}

/**
 * Appends rows to an in-memory chunk and hands full chunks to the file stream,
 * waiting for 'drain' when the stream asks to: memory stays bounded however
 * many rows are written.
 */
export class CsvFile {
  rows = 0;
  private buffer: string;
  private readonly stream: WriteStream;
  private error: Error | null = null;

  constructor(path: string, header: readonly string[]) {
    this.stream = createWriteStream(path);
    this.stream.on('error', (error) => {
      this.error ??= error;
    });
    this.buffer = csvLine(header);
  }

  add(fields: readonly CsvValue[]): void {
    this.buffer += csvLine(fields);
    this.rows++;
  }

  get full(): boolean {
    return this.buffer.length >= CHUNK_CHARS;
  }

  async flushIfFull(): Promise<void> {
    if (this.full) await this.flush();
  }

  async close(): Promise<void> {
    await this.flush();
    this.stream.end();
    await finished(this.stream);
  }

  destroy(): void {
    this.stream.destroy();
  }

  private async flush(): Promise<void> {
    if (this.error) throw this.error;
    if (this.buffer.length === 0) return;
    const chunk = this.buffer;
    this.buffer = '';
    if (!this.stream.write(chunk)) await once(this.stream, 'drain');
  }
}
