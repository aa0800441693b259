import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsentAuditReport } from '../../src/audit/consent-audit.service.ts';
import { tempFolder } from '../helpers/files.ts';
import { AUDIT_CONSENTS_CSV, AUDIT_CONTACTS_CSV } from './consent-audit.fixtures.ts';

const run = promisify(execFile);
const dataDir = mkdtempSync(join(tmpdir(), 'cible-audit-cli-'));
const files = tempFolder();
// the embedded database whatever the test run's own engine; debug logs, to check that they hold no personal data
const env = { ...process.env, DATABASE_URL: '', CIBLE_DATA_DIR: dataDir, LOG_LEVEL: 'debug' };

function cible(...args: string[]) {
  return run('node', ['bin/cible.js', ...args], { env, timeout: 120_000 });
}

beforeAll(async () => {
  await cible('import', 'contacts', files.write('contacts.csv', AUDIT_CONTACTS_CSV));
  await cible('import', 'consents', files.write('consents.csv', AUDIT_CONSENTS_CSV));
});
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

// The command runs on the system clock, so only what does not depend on the date is checked here
// (expiries are checked against a fixed instant in consent-audit.test.ts).
describe('cible audit consents', () => {
  it('prints a summary with the lists of contacts to ask again, and logs none of them', async () => {
    const { stdout, stderr } = await cible('audit', 'consents');
    expect(stdout).toMatch(/ledger: 25 consent events/);
    expect(stdout).toMatch(
      /without proof of means, to ask again \(4 collected before 2018-05-25\): 5 consents of 4 contacts\n\s+A03\s+direct_marketing\s+email/,
    );
    expect(stdout).toMatch(/non-explicit method, never consent \(bundled 1, pre_ticked 1, implied 1\): 3 consents of 2 contacts/);
    expect(stderr).not.toMatch(/A\d\d/);
  });

  it('writes the full JSON report to a file readable by its owner only, and prints the same with --json', async () => {
    const out = join(files.dir, 'audit.json');
    const { stdout, stderr } = await cible('audit', 'consents', '--json', '--out', out, '--expiring-days', '365');
    const printed = JSON.parse(stdout) as ConsentAuditReport;
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(printed);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(stderr).toMatch(/full report written to/);
    expect(printed.expiring.withinDays).toBe(365);
    expect(printed.withoutProof.contacts.map((c) => c.externalId)).toEqual(['A03', 'A03', 'A04', 'A06', 'A14']);
  });

  it('refuses bad options with a clear message and exit code 2, before touching the database', async () => {
    const cases = [
      [['--expiring-days', '0'], /--expiring-days expects a whole number of days from 1 to 3650, got "0"/],
      [['--out', files.dir], /is a directory: give a file name/],
      [['--out', join(files.dir, 'missing', 'audit.json')], /folder .*missing does not exist/],
    ] as const;
    const failures = await Promise.all(cases.map(([args]) => cible('audit', 'consents', ...args).catch((error) => error)));
    cases.forEach(([args, message], index) => {
      expect(failures[index].code, args.join(' ')).toBe(2);
      expect(failures[index].stderr).toMatch(message);
    });
  });
});
