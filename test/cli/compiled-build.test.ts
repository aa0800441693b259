import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminPool, databaseUrlFor } from '../helpers/postgres.ts';

/*
 * The compiled build (what `npm ci` builds and `bin/cible.js` runs) and the TypeScript sources
 * (tests, tsx) share one database: the build must record its migrations under the same names
 * and never apply one the sources already applied, nor the other way round.
 */

const run = promisify(execFile);
// inside the project, so that the build resolves node_modules as dist/ does
const buildDir = resolve('test/artifacts', `build-${randomBytes(4).toString('hex')}`);
const dataDir = mkdtempSync(join(tmpdir(), 'cible-build-'));
const databaseName = `cible_test_build_${randomBytes(6).toString('hex')}`;
const serverUrl = process.env.DATABASE_URL;
// a new empty database on the test run's engine
const env = serverUrl
  ? { ...process.env, DATABASE_URL: databaseUrlFor(serverUrl, databaseName) }
  : { ...process.env, DATABASE_URL: '', CIBLE_DATA_DIR: dataDir };

const sourceMigrations = readdirSync('migrations')
  .filter((file) => file.endsWith('.ts'))
  .map((file) => file.slice(0, -'.ts'.length))
  .sort();

/** `cible ARGS` run by the compiled main module, or by the sources through tsx. */
async function cible(from: 'build' | 'sources', ...args: string[]): Promise<string> {
  const main = from === 'build' ? pathToFileURL(join(buildDir, 'src/cli/main.js')).href : './src/cli/main.ts';
  const script = `const { main } = await import(${JSON.stringify(main)}); await main(['node', 'cible', ...${JSON.stringify(args)}]);`;
  const loader = from === 'sources' ? ['--import', 'tsx'] : [];
  const { stdout } = await run('node', [...loader, '--input-type=module', '-e', script], { env, timeout: 120_000 });
  return stdout;
}

beforeAll(async () => {
  mkdirSync('test/artifacts', { recursive: true });
  await run('node', ['scripts/build.js', buildDir], { timeout: 180_000 });
  if (serverUrl) {
    const admin = adminPool(serverUrl);
    await admin.query(`CREATE DATABASE ${databaseName}`);
    await admin.end();
  }
}, 240_000);

afterAll(async () => {
  rmSync(buildDir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
  if (serverUrl) {
    const admin = adminPool(serverUrl);
    await admin.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
    await admin.end();
  }
});

describe('the compiled build', () => {
  it('holds one compiled file per migration', () => {
    const compiled = readdirSync(join(buildDir, 'migrations')).sort();
    expect(compiled).toEqual(sourceMigrations.map((name) => `${name}.js`));
  });

  it('records the migrations under the names the sources use, and neither applies one the other applied', {
    timeout: 240_000,
  }, async () => {
    const applied = await cible('build', 'db', 'migrate');
    expect(applied).toMatch(new RegExp(`^applied ${sourceMigrations.length} migration\\(s\\) on \\w+: ${sourceMigrations.join(', ')}\\n$`));
    expect(await cible('sources', 'db', 'migrate')).toMatch(/^schema up to date/);
    expect(await cible('build', 'db', 'migrate')).toMatch(/^schema up to date/);
  });
});
