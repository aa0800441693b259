import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/cible-serve.ts';

const run = promisify(execFile);
const dataDir = mkdtempSync(join(tmpdir(), 'cible-keys-cli-'));
// the embedded database whatever the test run's own engine
const env = { ...process.env, DATABASE_URL: '', CIBLE_DATA_DIR: dataDir, LOG_LEVEL: 'info' };

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

/** A port free right now on 127.0.0.1. */
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

// Each spawn costs seconds: one pass through the commands, in order, on one embedded database.
describe('cible keys and cible serve', () => {
  it('creates a key shown once, lists keys without secrets, serves the API with it, stops on SIGTERM, revokes', {
    timeout: 240_000,
  }, async () => {
    const badRole = await failure('keys', 'create', '--role', 'root', '--name', 'x');
    expect(badRole.code).toBe(2);
    expect(badRole.stderr).toBe('error: --role must be one of marketer, data_scientist, scheduler, dpo, admin; got "root"\n');

    const created = await cible('keys', 'create', '--role', 'data_scientist', '--name', 'notebook');
    const lines = created.stdout.trim().split('\n');
    expect(lines[0]).toBe('API key 1 "notebook" created with the role data_scientist:');
    const key = lines[1] as string;
    expect(key).toMatch(/^cible_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    expect(lines[2]).toBe('warning: this key is shown once and cannot be shown again: store it now (only its hash is kept)');
    // once: on stdout only, never in the logs
    expect(created.stdout.split(key).length).toBe(2);
    expect(created.stderr).not.toContain(key.slice(20));

    const listed = await cible('keys', 'list');
    expect(listed.stdout).toMatch(
      new RegExp(
        `\\n\\s+1  notebook\\s+data_scientist\\s+cible_${key.slice(6, 18)}_…\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d\\s+-\\s+active\\n`,
      ),
    );
    expect(listed.stdout).not.toContain(key.slice(19));

    // the API with that key, on a real socket
    const port = await freePort();
    const server = spawn('node', ['bin/cible.js', 'serve'], { env: { ...env, PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    server.stdout.on('data', (chunk) => (stdout += chunk));
    server.stderr.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => server.on('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 90_000;
      while (!stdout.includes('listening on')) {
        if (Date.now() > deadline || server.exitCode !== null) throw new Error(`serve did not start: ${stdout} ${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      const url = `http://127.0.0.1:${port}`;
      expect(stdout).toContain(`cible API listening on ${url} (pglite database); OpenAPI at ${url}/openapi.json, docs at ${url}/docs`);
      expect((await fetch(`${url}/ready`)).status).toBe(200);
      const models = await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
      expect(models.status).toBe(200);
      expect(await models.json()).toEqual({ models: [] });
      expect((await fetch(`${url}/v1/keys`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(403);
      expect((await fetch(`${url}/v1/models`)).status).toBe(401);
    } finally {
      server.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stdout).toMatch(/stopped\n$/);
    // request logs carry the route and the key id, never the key
    expect(stderr).toMatch(/"route":"\/v1\/models"/);
    expect(stderr).not.toContain(key.slice(19));

    expect((await cible('keys', 'revoke', '1')).stdout).toBe('API key 1 revoked\n');
    const again = await failure('keys', 'revoke', '1');
    expect(again.code).toBe(2);
    expect(again.stderr).toBe('error: no active API key 1 (unknown or already revoked); see cible keys list\n');
    const badId = await failure('keys', 'revoke', 'one');
    expect(badId.code).toBe(2);
    const afterwards = JSON.parse((await cible('keys', 'list', '--json')).stdout);
    expect(afterwards).toEqual([
      expect.objectContaining({
        id: 1,
        name: 'notebook',
        role: 'data_scientist',
        revokedAt: expect.any(String),
        lastUsedAt: expect.any(String),
      }),
    ]);
    expect(JSON.stringify(afterwards)).not.toContain(key.slice(19));
  });
});
