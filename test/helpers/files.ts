import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

/** A temporary folder for one test file's input files. */
export function tempFolder(): { dir: string; write(name: string, content: string | Buffer): string } {
  const dir = mkdtempSync(join(tmpdir(), 'cible-test-'));
  return {
    dir,
    write(name, content) {
      const path = join(dir, name);
      writeFileSync(path, name.endsWith('.gz') && typeof content === 'string' ? gzipSync(content) : content);
      return path;
    },
  };
}

export function csv(...lines: string[]): string {
  return `${lines.join('\n')}\n`;
}
