import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

/*
 * `cible --help`, and every command until it runs, must not load the heavy modules: the CLI
 * would take seconds to start. A module resolution hook in a child process records every module
 * the command loads; the test names the packages that must not be among them.
 */

const run = promisify(execFile);
const folder = mkdtempSync(join(tmpdir(), 'cible-startup-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

writeFileSync(
  join(folder, 'hooks.mjs'),
  `import { appendFileSync } from 'node:fs';
let log;
export function initialize(data) { log = data.log; }
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  appendFileSync(log, result.url + '\\n');
  return result;
}
`,
);
writeFileSync(
  join(folder, 'record.mjs'),
  `import { register } from 'node:module';
register(${JSON.stringify(pathToFileURL(join(folder, 'hooks.mjs')).href)}, { data: { log: process.env.CIBLE_TEST_MODULE_LOG } });
`,
);

/** Loaded by a command that has not run yet: training, charts, data frames, the API, the queue, a database. */
const HEAVY = [
  '@tensorflow/tfjs',
  'danfojs-node',
  'vega',
  'vega-lite',
  'pg-boss',
  'pg',
  '@electric-sql/pglite',
  'hono',
  '@hono/zod-openapi',
  '@faker-js/faker',
];
/** Fast enough for a command that runs, too slow to load for help: the query builder, validation, dates, phone numbers, logs. */
const START_UP = [...HEAVY, 'kysely', 'zod', 'date-fns', 'libphonenumber-js', 'pino'];

/** The packages loaded while `cible` parses each argument list in turn, in one process (through the TypeScript sources). */
async function packagesLoaded(name: string, ...argvs: string[][]): Promise<{ packages: string[]; stdout: string }> {
  const log = join(folder, `${name}.log`);
  writeFileSync(log, '');
  const script = `const { main } = await import('./src/cli/main.ts');
for (const argv of ${JSON.stringify(argvs)}) await main(['node', 'cible', ...argv]);`;
  const { stdout } = await run(
    'node',
    ['--import', 'tsx', '--import', pathToFileURL(join(folder, 'record.mjs')).href, '--input-type=module', '-e', script],
    {
      env: { ...process.env, CIBLE_TEST_MODULE_LOG: log },
      timeout: 120_000,
    },
  );
  const urls = readFileSync(log, 'utf8').split('\n');
  const packages = urls
    .map((url) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1])
    .filter((name): name is string => name !== undefined);
  expect(
    urls.some((url) => url.endsWith('/src/cli/main.ts')),
    'the hook records what the CLI loads',
  ).toBe(true);
  return { packages: [...new Set(packages)].sort(), stdout };
}

describe('cible start-up', () => {
  it('prints the help of every command without loading the modules the commands use when they run', { timeout: 150_000 }, async () => {
    const { packages: loaded } = await packagesLoaded(
      'help',
      ['--help'],
      ['targets', '--help'],
      ['exports', 'show', '--help'],
      ['runs', 'list', '--help'],
      ['keys', 'create', '--help'],
      ['rights', 'erase', '--help'],
      ['retention', 'purge', '--help'],
      ['audit', 'consents', '--help'],
      ['eligibility', '--help'],
      ['consent', 'sweep', '--help'],
      ['models', 'show', '--help'],
      ['demo', '--help'],
      ['serve', '--help'],
      ['worker', '--help'],
      ['db', 'migrate', '--help'],
    );
    expect(loaded).toContain('commander');
    expect(loaded.filter((name) => START_UP.includes(name))).toEqual([]);
  });

  it('completes the import and pipeline commands from their modules when they are asked for, still without the heavy ones', {
    timeout: 150_000,
  }, async () => {
    const { packages: loaded, stdout } = await packagesLoaded(
      'deferred',
      ['import', 'contacts', '--help'],
      ['pipeline', 'run', '--help'],
      ['backtest', '--help'],
    );
    expect(loaded.filter((name) => HEAVY.includes(name))).toEqual([]);
    expect(stdout).toMatch(/Usage: cible import contacts \[options\] <file>/);
    expect(stdout).toMatch(/--min-positives <n> +buyers a target needs in each window \(default \d+\)/);
    expect(stdout).toMatch(/Usage: cible backtest \[options\]/);
  });
});
