import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const dataDir = mkdtempSync(join(tmpdir(), 'cible-rights-cli-'));
// the embedded database whatever the test run's own engine
const env = { ...process.env, DATABASE_URL: '', CIBLE_DATA_DIR: dataDir };

function cible(...args: string[]) {
  return run('node', ['bin/cible.js', ...args], { env, timeout: 120_000 });
}

function failure(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return cible(...args).then(
    () => {
      throw new Error(`cible ${args.join(' ')} succeeded`);
    },
    (error) => error,
  );
}

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

// Each spawn costs seconds: one pass through the commands, in order, on one embedded database.
describe('cible rights and retention commands', () => {
  // generous: four to nine seconds a spawn on a busy two-core machine
  it('access to a file, a refused rectification, erasure with --yes, a bad retention period', { timeout: 180_000 }, async () => {
    const contacts = join(dataDir, 'contacts.csv');
    writeFileSync(
      contacts,
      'external_id,email,phone,first_name,last_name,created_at\nCLI-1,aubin.texier@example.com,06 39 98 55 01,Aubin,Texier,2020-01-01\n',
    );
    await cible('import', 'contacts', contacts);

    const out = join(dataDir, 'access.json');
    const access = await cible('rights', 'access', 'CLI-1', '--out', out);
    expect(access.stdout).toMatch(/access report of contact #1 written to/);
    expect(JSON.parse(readFileSync(out, 'utf8')).identity).toMatchObject({ email: 'aubin.texier@example.com', lastName: 'Texier' });

    const rectify = await failure('rights', 'rectify', 'CLI-1', '--email', 'aubin-at-example');
    expect(rectify.code).toBe(2);
    expect(rectify.stderr).toBe('error: --email is not a valid email address\n');

    const erased = await cible('rights', 'erase', 'CLI-1', '--yes');
    expect(JSON.parse(erased.stdout)).toMatchObject({
      contactId: 1,
      deleted: { contact_personal_data: 1 },
      reason: 'data_subject_request',
    });
    expect(erased.stdout).not.toMatch(/aubin|CLI-1/i);

    const period = await failure('retention', 'purge', '--inactive', '3 years');
    expect(period.code).toBe(2);
    expect(period.stderr).toMatch(/--inactive expects a period such as 3y, 18m or 90d/);
  });
});
