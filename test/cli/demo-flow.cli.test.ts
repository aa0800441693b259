import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/cible-serve.ts';
import { adminPool, databaseUrlFor } from '../helpers/postgres.ts';

/*
 * The demo as a newcomer runs it: load, train, print a request with a key; then that very
 * request against `cible serve`, and the same list from the CLI with its manifest verified.
 * On the embedded database, or on a fresh PostgreSQL database when the run uses PostgreSQL.
 */

const run = promisify(execFile);
const dataDir = mkdtempSync(join(tmpdir(), 'cible-demo-flow-'));
const serverUrl = process.env.DATABASE_URL;
const databaseName = `cible_demo_${randomBytes(5).toString('hex')}`;
const env = {
  ...process.env,
  DATABASE_URL: serverUrl ? databaseUrlFor(serverUrl, databaseName) : '',
  CIBLE_DATA_DIR: dataDir,
  LOG_LEVEL: 'warn',
};
const cible = (...args: string[]) => run('node', ['bin/cible.js', ...args], { env, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 });

beforeAll(async () => {
  if (!serverUrl) return;
  const admin = adminPool(serverUrl);
  await admin.query(`CREATE DATABASE ${databaseName}`);
  await admin.end();
});

afterAll(async () => {
  rmSync(dataDir, { recursive: true, force: true });
  if (!serverUrl) return;
  const admin = adminPool(serverUrl);
  await admin.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
  await admin.end();
});

describe('npm run demo, then the printed request', () => {
  let key = '';
  let sku = '';
  let printedUrl = '';

  it('loads the base, trains, and prints a ready-to-paste request with a marketer key', { timeout: 300_000 }, async () => {
    const { stdout } = await cible('demo', '--contacts', '5000', '--no-serve');
    expect(stdout).toMatch(serverUrl ? /demo base loaded into the postgres database/ : /demo base loaded into the pglite database/);
    expect(stdout).toMatch(/running the propensity pipeline/);
    const request =
      /curl -s -H "Authorization: Bearer (cible_\S+)" "(http:\/\/127\.0\.0\.1:3000\/v1\/products\/([^/]+)\/targets\?channel=email&top=5)"/.exec(
        stdout,
      );
    expect(request, stdout).not.toBeNull();
    [, key, printedUrl, sku] = request as unknown as [string, string, string, string];
    sku = decodeURIComponent(sku);

    const again = await cible('demo', '--contacts', '5000', '--no-serve');
    expect(again.stdout).toMatch(/already holds 5,000 contacts: nothing loaded/);
    expect(again.stdout).toMatch(/the pipeline has already run on this base: not run again/);
  });

  it('answers the printed request from `cible serve`', { timeout: 120_000 }, async () => {
    const port = await freePort();
    const server = spawn('node', ['bin/cible.js', 'serve'], { env: { ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const base = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const ready = await fetch(`${base}/ready`).catch(() => null);
        if (ready?.ok) break;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      const response = await fetch(printedUrl.replace('http://127.0.0.1:3000', base), { headers: { authorization: `Bearer ${key}` } });
      expect(response.status).toBe(200);
      const list = (await response.json()) as {
        members: Array<{ externalId: string; contact: string; rank: number }>;
        funnel: Record<string, number>;
      };
      expect(list.members).toHaveLength(5);
      expect(list.members[0]!.contact).toMatch(/@/);
      expect(list.funnel.returned).toBe(5);
    } finally {
      server.kill('SIGTERM');
      await new Promise((resolve) => server.once('exit', resolve));
    }
  });

  it('gives the same kind of list from the CLI, written to a file, and its manifest verifies', { timeout: 120_000 }, async () => {
    const out = join(dataDir, 'list.csv');
    const { stdout } = await cible('targets', sku, '--channel', 'email', '--top', '20', '--holdout', '10', '--out', out);
    const lines = readFileSync(out, 'utf8').trim().split('\n');
    expect(lines[0]).toMatch(/^group,position,external_id,contact,score/);
    expect(lines).toHaveLength(21);
    expect(lines.filter((line) => line.startsWith('holdout,'))).toHaveLength(2);
    const exportId = /target list (\S+) for/.exec(stdout)?.[1];
    expect(exportId).toBeTruthy();
    const verified = await cible('exports', 'verify', exportId!);
    expect(verified.stdout).toMatch(/^valid: export/);

    const refused = await cible('targets', sku, '--channel', 'email', '--top', '5', '--percentile', '10').catch((error) => error);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/give one of --top, --percentile, --min-score, --expected-buyers, not --top and --percentile/);
  });
});
