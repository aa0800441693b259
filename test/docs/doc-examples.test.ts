import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningServe, startCibleServe } from '../helpers/cible-serve.ts';

/*
 * The examples in README.md and docs/*.md still run. A fenced block opened with ```sh runnable
 * is an example to run: each of its commands (`npx cible …` or `curl …`, a trailing backslash
 * continues a line) runs in turn on one small demo base, beside a running `cible serve` that owns
 * it, as a reader would paste them in a second terminal. `$KEY` is the demo's marketer key,
 * `$EXPORT_ID` the last list an example made; http://127.0.0.1:3000 is that server. Any example
 * that exits non-zero is reported with its file and line. Always on the embedded database.
 */

const root = resolve(import.meta.dirname, '../..');
const DOCUMENTS = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`),
];
// large enough for the README's example product to have a model, small enough to build in a few minutes
const DEMO_CONTACTS = 5000;

interface Example {
  file: string;
  line: number;
  command: string;
}

/** The commands of the runnable blocks of one Markdown text, with the line each starts on. */
function runnableExamples(file: string, text: string): Example[] {
  const examples: Example[] = [];
  let inRunnable = false;
  let inFence = false;
  let pending: Example | null = null;
  text.split('\n').forEach((raw, index) => {
    const fence = /^```(.*)$/.exec(raw.trim());
    if (fence) {
      if (inFence) {
        if (pending) throw new Error(`${file}:${pending.line}: the example ends with a backslash`);
        inFence = false;
        inRunnable = false;
      } else {
        inFence = true;
        inRunnable = /^sh\s+runnable\b/.test(fence[1]!.trim());
      }
      return;
    }
    if (!inRunnable) return;
    const line = raw.trim();
    if (pending) pending.command += ` ${line.replace(/\\$/, '').trim()}`;
    else if (line === '' || line.startsWith('#')) return;
    else pending = { file, line: index + 1, command: line.replace(/\\$/, '').trim() };
    if (!line.endsWith('\\')) {
      examples.push(pending);
      pending = null;
    }
  });
  if (inFence) throw new Error(`${file}: a fenced block is not closed`);
  return examples;
}

const run = promisify(execFile);
const dataDir = mkdtempSync(join(tmpdir(), 'cible-doc-examples-'));
const workDir = mkdtempSync(join(tmpdir(), 'cible-doc-examples-work-'));
const env = { ...process.env, DATABASE_URL: '', CIBLE_DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
const bin = join(root, 'bin/cible.js');
let server: RunningServe | null = null;
let serverUrl = '';
let demoKey = '';

/** The shell line a reader's example becomes here: this checkout's cible, this test's server. */
function shellLine(command: string): string {
  if (command.startsWith('npx cible ')) return `node ${JSON.stringify(bin)} ${command.slice('npx cible '.length)}`;
  if (command.startsWith('curl '))
    return `curl --silent --show-error --fail-with-body ${command.slice('curl '.length).replaceAll('http://127.0.0.1:3000', serverUrl)}`;
  throw new Error(`not an example this check can run (npx cible … or curl …): ${command}`);
}

beforeAll(async () => {
  const demo = await run('node', [bin, 'demo', '--contacts', String(DEMO_CONTACTS), '--no-serve'], {
    env,
    cwd: workDir,
    timeout: 600_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  demoKey = /API key was created for this demo \(shown once\): (cible_\S+)/.exec(demo.stdout)?.[1] ?? '';
  if (!demoKey) throw new Error(`cible demo printed no key:\n${demo.stdout}`);
  server = await startCibleServe({ bin, env, cwd: workDir });
  serverUrl = server.url;
}, 660_000);

afterAll(async () => {
  await server?.stop();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(workDir, { recursive: true, force: true });
});

describe('runnableExamples', () => {
  it('reads the commands of ```sh runnable blocks only, joins continued lines, and gives each its line', () => {
    const text = [
      '# t',
      '```sh',
      'npx cible nope',
      '```',
      '```sh runnable',
      '# a comment',
      'npx cible a --x \\',
      '  --y   # why',
      '',
      'curl -s "u"',
      '```',
    ].join('\n');
    expect(runnableExamples('t.md', text)).toEqual([
      { file: 't.md', line: 7, command: 'npx cible a --x --y   # why' },
      { file: 't.md', line: 10, command: 'curl -s "u"' },
    ]);
  });
});

describe('the examples of the README and docs/', () => {
  it('each runs on the demo base, beside the running server', { timeout: 900_000 }, async () => {
    const examples = DOCUMENTS.flatMap((file) => runnableExamples(file, readFileSync(join(root, file), 'utf8')));
    // every page a reader starts from has examples that are checked
    expect(new Set(examples.map((example) => example.file))).toEqual(new Set(DOCUMENTS.filter((file) => file !== 'docs/benchmarks.md')));
    let exportId = '';
    const failures: string[] = [];
    for (const example of examples) {
      const outcome = await run('bash', ['-c', shellLine(example.command)], {
        env: { ...env, KEY: demoKey, EXPORT_ID: exportId },
        cwd: workDir,
        timeout: 180_000,
        maxBuffer: 64 * 1024 * 1024,
      }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (error: { code: number; stdout: string; stderr: string }) => error,
      );
      if (outcome.code !== 0) {
        failures.push(
          `${example.file}:${example.line}: \`${example.command}\` exited with ${outcome.code}: ${outcome.stderr.trim() || outcome.stdout.trim().slice(0, 500)}`,
        );
        continue;
      }
      exportId = /target list ([0-9a-f-]{36}) for/.exec(`${outcome.stdout}\n${outcome.stderr}`)?.[1] ?? exportId;
    }
    expect(failures).toEqual([]);
  });
});
