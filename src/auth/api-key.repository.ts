import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../db/database.ts';
import type { Role } from './api-key.table.ts';

export const ROLES: readonly Role[] = ['marketer', 'data_scientist', 'scheduler', 'dpo', 'admin'];

export interface ApiKeyIdentity {
  id: number;
  name: string;
  role: Role;
}

export interface CreatedApiKey extends ApiKeyIdentity {
  /** the secret, shown once: only its hash is stored */
  key: string;
  prefix: string;
}

// Keys are 32 random bytes: a plain SHA-256 is enough (no dictionary to guard against),
// and it keeps every authenticated request cheap.
function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export async function createApiKey(db: Kysely<Database>, name: string, role: Role): Promise<CreatedApiKey> {
  const prefix = randomBytes(6).toString('hex');
  const key = `cible_${prefix}_${randomBytes(32).toString('base64url')}`;
  const row = await db
    .insertInto('api_keys')
    .values({ name, role, key_prefix: prefix, key_hash: hashKey(key) })
    .returning(['id', 'name', 'role'])
    .executeTakeFirstOrThrow();
  return { id: Number(row.id), name: row.name, role: row.role, key, prefix };
}

const KEY_PATTERN = /^cible_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$/;

/** The key's identity when it is well formed, known and not revoked; otherwise null. */
export async function findActiveKey(db: Kysely<Database>, key: string): Promise<ApiKeyIdentity | null> {
  const match = KEY_PATTERN.exec(key);
  if (!match) return null;
  const row = await db
    .selectFrom('api_keys')
    .select(['id', 'name', 'role', 'key_hash'])
    .where('key_prefix', '=', match[1]!)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  if (!row) return null;
  const expected = Buffer.from(row.key_hash, 'hex');
  const given = Buffer.from(hashKey(key), 'hex');
  if (!timingSafeEqual(expected, given)) return null;
  return { id: Number(row.id), name: row.name, role: row.role };
}

export interface ApiKeyListing extends ApiKeyIdentity {
  prefix: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export async function listApiKeys(db: Kysely<Database>): Promise<ApiKeyListing[]> {
  const rows = await db
    .selectFrom('api_keys')
    .select(['id', 'name', 'role', 'key_prefix', 'created_at', 'last_used_at', 'revoked_at'])
    .orderBy('id')
    .execute();
  return rows.map((row) => ({
    id: Number(row.id),
    name: row.name,
    role: row.role,
    prefix: row.key_prefix,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
  }));
}

/** Revokes a key and the review-page sessions opened with it; false when no active key has this id. */
export async function revokeApiKey(db: Kysely<Database>, id: number, at: Date): Promise<boolean> {
  const result = await db
    .updateTable('api_keys')
    .set({ revoked_at: at })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  await db.updateTable('ui_sessions').set({ revoked_at: at }).where('api_key_id', '=', id).where('revoked_at', 'is', null).execute();
  return Number(result.numUpdatedRows) === 1;
}
