import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, revokeApiKey } from '../../src/auth/api-key.repository.ts';
import type { Clock } from '../../src/clock.ts';
import { type ApiHarness, createApiHarness } from '../api/api.fixtures.ts';

/*
 * Review-page sessions (issue 16, finding 8): the cookie holds a random id, never the API key;
 * the database holds only the id's SHA-256; signing out, expiry and revoking the key end it.
 */

let now = new Date('2026-06-01T09:00:00Z');
const clock: Clock = { now: () => now };
let api: ApiHarness;

beforeAll(async () => {
  api = await createApiHarness({ clock });
});
afterAll(() => api?.close());

function form(fields: Record<string, string>): RequestInit {
  return { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() };
}

/** Signs in with `key`: the Set-Cookie header and the cookie to send back. */
async function signIn(key: string, url = 'http://localhost/ui/login'): Promise<{ setCookie: string; cookie: string }> {
  const response = await api.app.request(url, { ...form({ key, next: '/ui/models' }), redirect: 'manual' });
  expect(response.status).toBe(303);
  const setCookie = response.headers.get('set-cookie') ?? '';
  return { setCookie, cookie: setCookie.split(';')[0]! };
}

/** The overview page with this cookie: 200 when signed in, 303 to the login form otherwise. */
async function overview(cookie: string): Promise<number> {
  const response = await api.app.request('/ui/models', { headers: { cookie }, redirect: 'manual' });
  return response.status;
}

describe('review-page sessions', () => {
  it('the cookie holds a random session id, not the key; the database holds only its SHA-256', async () => {
    const { setCookie, cookie } = await signIn(api.keys.data_scientist);
    const token = cookie.split('=')[1]!;
    expect(setCookie).toMatch(/^cible_ui_session=[A-Za-z0-9_-]{43};/);
    expect(setCookie).not.toContain(api.keys.data_scientist);
    expect(setCookie).not.toContain(api.keys.data_scientist.split('_')[2]!);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).toMatch(/Path=\/ui/);
    expect(setCookie).toMatch(/Max-Age=28800/);
    expect(setCookie).not.toMatch(/Secure/);
    expect(await overview(cookie)).toBe(200);

    const { rows } = await api.database.pool.query<{ token_hash: string }>('SELECT token_hash FROM ui_sessions');
    const { createHash } = await import('node:crypto');
    expect(rows.map((row) => row.token_hash)).toContain(createHash('sha256').update(token).digest('hex'));
    expect(JSON.stringify(rows)).not.toContain(token);
  });

  it('two sign-ins with the same key are two sessions', async () => {
    const first = await signIn(api.keys.dpo);
    const second = await signIn(api.keys.dpo);
    expect(first.cookie).not.toBe(second.cookie);
  });

  it('the raw API key in the cookie no longer signs anyone in', async () => {
    expect(await overview(`cible_ui_session=${api.keys.data_scientist}`)).toBe(303);
    expect(await overview(`cible_ui_key=${api.keys.data_scientist}`)).toBe(303);
  });

  it('signing out revokes the session: a copy of the cookie is refused afterwards', async () => {
    const { cookie } = await signIn(api.keys.data_scientist);
    expect(await overview(cookie)).toBe(200);
    const out = await api.app.request('/ui/logout', { method: 'POST', headers: { cookie }, redirect: 'manual' });
    expect(out.status).toBe(303);
    expect(out.headers.get('set-cookie')).toMatch(/cible_ui_session=;.*Max-Age=0/);
    expect(await overview(cookie)).toBe(303);
  });

  it('revoking the key revokes its sessions', async () => {
    const key = await createApiKey(api.database.db, 'soon revoked', 'data_scientist');
    const { cookie } = await signIn(key.key);
    expect(await overview(cookie)).toBe(200);
    await revokeApiKey(api.database.db, key.id, now);
    const response = await api.app.request('/ui/models', { headers: { cookie }, redirect: 'manual' });
    expect(response.status).toBe(303);
    expect(response.headers.get('set-cookie')).toMatch(/cible_ui_session=;.*Max-Age=0/);
    const { rows } = await api.database.pool.query(
      'SELECT count(*)::int AS open FROM ui_sessions WHERE api_key_id = $1 AND revoked_at IS NULL',
      [key.id],
    );
    expect(rows).toEqual([{ open: 0 }]);
  });

  it('a session expires after 8 hours', async () => {
    const { cookie } = await signIn(api.keys.dpo);
    now = new Date(now.getTime() + 8 * 3600_000 - 1000);
    expect(await overview(cookie)).toBe(200);
    now = new Date(now.getTime() + 1000);
    expect(await overview(cookie)).toBe(303);
  });

  it('the cookie is Secure when the pages are served over https', async () => {
    const direct = await signIn(api.keys.dpo, 'https://cible.example/ui/login');
    expect(direct.setCookie).toMatch(/; Secure/);
    const proxied = await api.app.request('/ui/login', {
      ...form({ key: api.keys.dpo, next: '/ui/models' }),
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-proto': 'https' },
      redirect: 'manual',
    });
    expect(proxied.headers.get('set-cookie')).toMatch(/; Secure/);
  });
});
