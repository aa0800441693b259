import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../db/database.ts';
import type { ApiKeyIdentity } from './api-key.repository.ts';

// 32 random bytes: a plain SHA-256 is enough to keep a stolen table from opening sessions
function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** Opens a session for a key; the returned id goes to the browser and is never stored. */
export async function openUiSession(db: Kysely<Database>, apiKeyId: number, now: Date, seconds: number): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  // sessions that can no longer be used are kept no longer than that
  await db
    .deleteFrom('ui_sessions')
    .where((eb) => eb.or([eb('expires_at', '<=', now), eb('revoked_at', 'is not', null)]))
    .execute();
  await db
    .insertInto('ui_sessions')
    .values({ token_hash: hashToken(token), api_key_id: apiKeyId, created_at: now, expires_at: new Date(now.getTime() + seconds * 1000) })
    .execute();
  return token;
}

/** The identity behind a session that is neither expired nor revoked, opened with a key that is not revoked; otherwise null. */
export async function findUiSession(db: Kysely<Database>, token: string, now: Date): Promise<ApiKeyIdentity | null> {
  if (!TOKEN_PATTERN.test(token)) return null;
  const row = await db
    .selectFrom('ui_sessions as s')
    .innerJoin('api_keys as k', 'k.id', 's.api_key_id')
    .select(['k.id', 'k.name', 'k.role'])
    .where('s.token_hash', '=', hashToken(token))
    .where('s.revoked_at', 'is', null)
    .where('s.expires_at', '>', now)
    .where('k.revoked_at', 'is', null)
    .executeTakeFirst();
  return row ? { id: Number(row.id), name: row.name, role: row.role } : null;
}

/** Signing out: the session id stops working at once, wherever the cookie has been copied. */
export async function revokeUiSession(db: Kysely<Database>, token: string, now: Date): Promise<void> {
  if (!TOKEN_PATTERN.test(token)) return;
  await db
    .updateTable('ui_sessions')
    .set({ revoked_at: now })
    .where('token_hash', '=', hashToken(token))
    .where('revoked_at', 'is', null)
    .execute();
}
