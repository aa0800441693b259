import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import { type ApiKeyIdentity, findActiveKey } from '../auth/api-key.repository.ts';
import type { AppEnv } from '../api/api-env.ts';

/*
 * The review pages sign in with the same API keys as the API. The key is kept in a cookie that
 * scripts cannot read (HttpOnly), that no other site's page can send (SameSite=Strict, which
 * also stands in for a CSRF token on the few forms), and that only /ui requests carry.
 */

export const SESSION_COOKIE = 'cible_ui_key';
const SESSION_SECONDS = 8 * 3600;

function secure(c: Context): boolean {
  return new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto') === 'https';
}

/** The signed-in key's identity, or null (no cookie, or a key since revoked). */
export async function sessionKey(c: Context<AppEnv>): Promise<{ identity: ApiKeyIdentity | null; hadCookie: boolean }> {
  const key = getCookie(c, SESSION_COOKIE);
  if (!key) return { identity: null, hadCookie: false };
  return { identity: await findActiveKey(c.var.db, key), hadCookie: true };
}

export function startSession(c: Context, key: string): void {
  setCookie(c, SESSION_COOKIE, key, { httpOnly: true, sameSite: 'Strict', path: '/ui', maxAge: SESSION_SECONDS, secure: secure(c) });
}

export function endSession(c: Context): void {
  deleteCookie(c, SESSION_COOKIE, { path: '/ui', httpOnly: true, sameSite: 'Strict', secure: secure(c) });
}
