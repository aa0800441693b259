import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/db/engine.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { startCibleServe } from '../helpers/cible-serve.ts';
import { SCORED_SKU, seedScoredBase } from '../targeting/targeting.fixtures.ts';

/*
 * Issue 14, item 1, as a newcomer meets it: `cible serve` runs on the embedded database and, in a
 * second terminal, `cible keys create` and `cible targets` write into that same database. The
 * server accepts the new key at once, sees the list's manifest, and after a stop and a restart
 * both are still there. Always on its own embedded data dir, whatever the run's engine.
 */

const run = promisify(execFile);
const dataDir = mkdtempSync(join(tmpdir(), 'cible-beside-server-'));
const env = { ...process.env, DATABASE_URL: '', CIBLE_DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
const cible = (...args: string[]) => run('node', ['bin/cible.js', ...args], { env, timeout: 180_000 });

/** `cible serve` on the data dir; resolves once it listens. */
const serve = () => startCibleServe({ bin: 'bin/cible.js', env });

const bearer = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });

beforeAll(async () => {
  const database = await openDatabase({ kind: 'pglite', dataDir: join(dataDir, 'pgdata') });
  try {
    await migrateToLatest(database.db);
    await seedScoredBase(database, 40, new Date());
  } finally {
    await database.close();
  }
}, 120_000);

afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('the CLI beside a running server on the embedded database', () => {
  it('writes a key and a list the server sees at once, and a stop and a restart lose neither', { timeout: 600_000 }, async () => {
    let server = await serve();
    let key = '';
    let exportId = '';
    try {
      const created = await cible('keys', 'create', '--role', 'dpo', '--name', 'second terminal');
      key = created.stdout.split('\n')[1] ?? '';
      expect(key).toMatch(/^cible_[0-9a-f]{12}_/);
      // the server answers with the key a second process has just created: no restart, no 401
      const models = await fetch(`${server.url}/v1/models`, bearer(key));
      expect(models.status).toBe(200);

      const listed = await cible('targets', SCORED_SKU, '--channel', 'email', '--top', '5', '--out', join(dataDir, 'list.csv'));
      exportId = /target list (\S+) for/.exec(listed.stdout)?.[1] ?? '';
      expect(exportId, listed.stdout).toMatch(/^[0-9a-f-]{36}$/);
      const manifest = await fetch(`${server.url}/v1/exports/${exportId}`, bearer(key));
      expect(manifest.status).toBe(200);
      expect(await manifest.json()).toMatchObject({ exportId, memberCount: 5, delivery: 'delivered' });
    } finally {
      expect(await server.stop()).toBe(0);
    }

    // with no owner running, the CLI opens the files itself: the list's manifest is there
    const shown = JSON.parse((await cible('exports', 'show', exportId)).stdout) as { members: unknown[] };
    expect(shown.members).toHaveLength(5);

    server = await serve();
    try {
      expect((await fetch(`${server.url}/v1/models`, bearer(key))).status).toBe(200);
      const manifest = await fetch(`${server.url}/v1/exports/${exportId}`, bearer(key));
      expect(manifest.status).toBe(200);
      expect(((await manifest.json()) as { members: unknown[] }).members).toHaveLength(5);
      // and beside the restarted server, the CLI reads the same manifest through it
      expect((await cible('exports', 'verify', exportId)).stdout).toMatch(/^valid: export/);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });
});
