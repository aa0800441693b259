import type { Context } from 'hono';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { ApiKeyIdentity } from '../auth/api-key.repository.ts';
import { findUiSession, openUiSession, revokeUiSession } from '../auth/ui-session.repository.ts';
import type { HttpEnv } from '../http/http-env.ts';

/*
 * The review pages sign in with the same API keys as the API, but the key itself never leaves
 * the login form: the cookie holds a random session id, stored hashed, that expires, that signing
 * out revokes, and that revoking the key revokes. The cookie is one scripts cannot read (HttpOnly),
 * that no other site's page can send (SameSite=Strict, which also stands in for a CSRF token on
 * the few forms), that only /ui requests carry, and that travels over https only when served so.
 */

export const SESSION_COOKIE = 'cible_ui_session';
export const SESSION_SECONDS = 8 * 3600;

function secure(c: Context): boolean {
  return new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto') === 'https';
}

/** The signed-in key's identity, or null (no cookie, or a session expired, signed out or of a revoked key). */
export async function sessionKey(c: Context<HttpEnv>): Promise<{ identity: ApiKeyIdentity | null; hadCookie: boolean }> {
  const token = getCookie(c, SESSION_COOKIE);
  if (!token) return { identity: null, hadCookie: false };
  return { identity: await findUiSession(c.var.db, token, c.var.deps.clock.now()), hadCookie: true };
}

export async function startSession(c: Context<HttpEnv>, identity: ApiKeyIdentity): Promise<void> {
  const token = await openUiSession(c.var.db, identity.id, c.var.deps.clock.now(), SESSION_SECONDS);
  setCookie(c, SESSION_COOKIE, token, { httpOnly: true, sameSite: 'Strict', path: '/ui', maxAge: SESSION_SECONDS, secure: secure(c) });
}

/** Revokes the session the cookie names (if any) and clears the cookie. */
export async function endSession(c: Context<HttpEnv>): Promise<void> {
  const token = getCookie(c, SESSION_COOKIE);
  if (token) await revokeUiSession(c.var.db, token, c.var.deps.clock.now());
  deleteCookie(c, SESSION_COOKIE, { path: '/ui', httpOnly: true, sameSite: 'Strict', secure: secure(c) });
}
