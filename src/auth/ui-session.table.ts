import type { Generated } from 'kysely';

/** A review-page session: the browser's cookie holds a random id, this table only its SHA-256. */
export interface UiSessionTable {
  id: Generated<number>;
  token_hash: string;
  api_key_id: number;
  created_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
}
