import { createHash, createHmac, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Kysely, sql } from 'kysely';
import type { TombstoneSecrets } from '../config.ts';
import type { Database } from '../db/database.ts';

/*
 * Erasure tombstones hold one keyed hash: HMAC-SHA-256 of the erased person's external id,
 * case-folded, under a secret kept outside the database. Without the secret the hash says
 * nothing (a plain hash of a customer number or a phone is reversed by enumeration). Only the
 * external id is kept: a different, living person who shares a household phone or email is
 * never refused. Tombstones made before keyed hashes hold a SHA-256 of the exact external id.
 */

export interface TombstoneKey {
  /** a fingerprint of the secret, stored with each tombstone so a missing secret is noticed */
  id: string;
  secret: Buffer;
}

export interface TombstoneKeys {
  /** new tombstones are keyed with this one */
  current: TombstoneKey;
  /** tombstones made before a rotation */
  previous: TombstoneKey[];
}

/** Raised when tombstones exist that no configured secret can recognise: imports would let erased people back. */
export class TombstoneSecretMissingError extends Error {}

function keyOf(secret: string): TombstoneKey {
  const bytes = Buffer.from(secret, 'utf8');
  return { id: createHmac('sha256', bytes).update('cible tombstone key id').digest('hex').slice(0, 16), secret: bytes };
}

const loaded = new WeakMap<TombstoneSecrets, TombstoneKeys>();

/**
 * The keys of an installation's configuration: CIBLE_TOMBSTONE_SECRET when set, else the
 * secret file under the data directory, created once (32 random bytes, mode 0600).
 */
export function tombstoneKeys(settings: TombstoneSecrets): TombstoneKeys {
  const known = loaded.get(settings);
  if (known) return known;
  const keys = { current: keyOf(settings.secret ?? secretFromFile(settings.secretFile)), previous: settings.previousSecrets.map(keyOf) };
  loaded.set(settings, keys);
  return keys;
}

function secretFromFile(file: string): string {
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  mkdirSync(dirname(file), { recursive: true });
  const secret = randomBytes(32).toString('hex');
  try {
    // 'wx': two processes starting together cannot both write a different secret
    writeFileSync(file, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return readFileSync(file, 'utf8').trim();
    throw error;
  }
  chmodSync(file, 0o600);
  return secret;
}

/** How an external id is compared with tombstones: trimmed, case-folded (C-123 and c-123 are one person). */
export function tombstoneForm(externalId: string): string {
  return externalId.trim().normalize('NFC').toLowerCase();
}

export function tombstoneHash(key: TombstoneKey, externalId: string): string {
  return createHmac('sha256', key.secret).update(tombstoneForm(externalId), 'utf8').digest('hex');
}

/** Every hash a tombstone of this external id may hold: under each configured key. */
export function tombstoneHashes(keys: TombstoneKeys, externalId: string): string[] {
  return [keys.current, ...keys.previous].map((key) => tombstoneHash(key, externalId));
}

/** A tombstone made before keyed hashes: the SHA-256 of the exact external id. */
export function legacyTombstoneHash(externalId: string): string {
  return createHash('sha256').update(externalId, 'utf8').digest('hex');
}

/** A pg client or pool (the imports work on one). */
export interface Queryable {
  query<R extends Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: R[] }>;
}

/**
 * Refuses to go on when some tombstone was keyed with a secret this process does not hold:
 * the comparison would miss it and let an erased person back in.
 */
export async function assertTombstoneKeysHeld(client: Queryable, keys: TombstoneKeys): Promise<void> {
  const held = [keys.current, ...keys.previous].map((key) => key.id);
  const { rows } = await client.query<{ key_id: string; n: number }>(
    `SELECT key_id, count(*)::int AS n FROM erasure_tombstones
     WHERE key_id IS NOT NULL AND NOT (key_id = ANY($1::text[])) GROUP BY key_id ORDER BY key_id`,
    [held],
  );
  if (rows.length === 0) return;
  const count = rows.reduce((sum, row) => sum + Number(row.n), 0);
  throw new TombstoneSecretMissingError(
    `${count} erasure tombstone(s) were keyed with a secret this process does not hold (key id ${rows.map((row) => row.key_id).join(', ')}): ` +
      'set CIBLE_TOMBSTONE_SECRET (or CIBLE_TOMBSTONE_PREVIOUS_SECRETS after a rotation) to the secret they were made with',
  );
}

/** The latest erasure of any of these external ids, by tombstone (keyed or legacy). */
export async function erasedExternalIds(
  db: Kysely<Database>,
  keys: TombstoneKeys,
  externalIds: readonly string[],
): Promise<Map<string, Date>> {
  const erased = new Map<string, Date>();
  if (externalIds.length === 0) return erased;
  const owner = new Map<string, string>();
  for (const externalId of externalIds) {
    for (const hash of tombstoneHashes(keys, externalId)) owner.set(`k:${hash}`, externalId);
    owner.set(`l:${legacyTombstoneHash(externalId)}`, externalId);
  }
  const keyed = [...owner.keys()].filter((key) => key.startsWith('k:')).map((key) => key.slice(2));
  const legacy = [...owner.keys()].filter((key) => key.startsWith('l:')).map((key) => key.slice(2));
  const { rows } = await sql<{ external_id_key: string | null; legacy_external_id_sha256: string | null; erased_at: Date }>`
    SELECT external_id_key, legacy_external_id_sha256, erased_at FROM erasure_tombstones
    WHERE external_id_key = ANY(${keyed}::text[]) OR legacy_external_id_sha256 = ANY(${legacy}::text[])`.execute(db);
  for (const row of rows) {
    const externalId =
      row.external_id_key !== null ? owner.get(`k:${row.external_id_key}`) : owner.get(`l:${row.legacy_external_id_sha256}`);
    if (externalId === undefined) continue;
    const at = new Date(row.erased_at);
    const before = erased.get(externalId);
    if (!before || before < at) erased.set(externalId, at);
  }
  return erased;
}
