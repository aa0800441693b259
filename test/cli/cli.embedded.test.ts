import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const dataDir = mkdtempSync(join(tmpdir(), 'cible-cli-'));
// the embedded database whatever the test run's own engine
const env = { ...process.env, DATABASE_URL: '', CIBLE_DATA_DIR: dataDir };

function cible(...args: string[]) {
  return run('node', ['bin/cible.js', ...args], { env, timeout: 120_000 });
}

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('the cible command on the embedded database', () => {
  it('prints its help', async () => {
    const { stdout } = await cible('--help');
    expect(stdout).toMatch(/Usage: cible/);
    expect(stdout).toMatch(/import/);
    expect(stdout).toMatch(/demo/);
  });

  it('loads a demo base once, and says so instead of duplicating it', { timeout: 240_000 }, async () => {
    const first = await cible('demo', '--contacts', '300', '--seed', '7', '--no-serve');
    expect(first.stdout).toMatch(/demo base loaded into the pglite database/);
    expect(first.stdout).toMatch(/300 contacts/);
    const second = await cible('demo', '--contacts', '300', '--seed', '7', '--no-serve');
    expect(second.stdout).toMatch(/already holds 300 contacts: nothing loaded/);
  });

  it('refuses bad options with a clear message and exit code 2', async () => {
    const failure = await cible('demo', '--contacts', '-5').catch((error) => error);
    expect(failure.code).toBe(2);
    expect(failure.stderr).toMatch(/--contacts expects/);
  });

  it('refuses an invalid environment variable, naming it', async () => {
    const failure = await run('node', ['bin/cible.js', 'db', 'migrate'], {
      env: { ...env, DATABASE_URL: 'mysql://nope' },
    }).catch((error) => error);
    expect(failure.code).toBe(2);
    expect(failure.stderr).toMatch(/DATABASE_URL: must be a postgres:\/\/ or postgresql:\/\/ URL/);
  });

  it('refuses a bad schedule or time zone before a worker starts, and exits', async () => {
    const badHour = await run('node', ['bin/cible.js', 'worker'], {
      env: { ...env, CIBLE_PIPELINE_CRON: '0 25 * * *' },
      timeout: 60_000,
    }).catch((error) => error);
    expect(badHour.code).toBe(2);
    expect(badHour.stderr).toMatch(/^error: schedule cron "0 25 \* \* \*" is not a valid cron expression: .*0-23/m);
    const badZone = await run('node', ['bin/cible.js', 'worker'], {
      env: { ...env, CIBLE_PIPELINE_TIMEZONE: 'Mars/Base' },
      timeout: 60_000,
    }).catch((error) => error);
    expect(badZone.code).toBe(2);
    expect(badZone.stderr).toMatch(/CIBLE_PIPELINE_TIMEZONE: must be an IANA time zone such as Europe\/Paris/);
  });
});
