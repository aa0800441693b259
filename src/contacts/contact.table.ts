import type { ColumnType, Generated } from 'kysely';

export interface ContactTable {
  id: Generated<number>;
  external_id: string | null;
  /** the person this record belongs to: the id of the person's first record (itself when alone) */
  person_id: ColumnType<number, number | undefined, number>;
  /** set on records a reviewer split apart: resolution links records of the same partition only */
  identity_partition: ColumnType<number | null, number | null | undefined, number | null>;
  created_at: Date;
  imported_at: ColumnType<Date, Date | undefined, Date>;
  updated_at: ColumnType<Date, Date | undefined, Date>;
  erased_at: Date | null;
}

export interface ContactPersonalDataTable {
  contact_id: number;
  email: string | null;
  phone: string | null;
  first_name: string | null;
  last_name: string | null;
  country: string | null;
  email_hash: string | null;
  phone_hash: string | null;
  /** libphonenumber's type of the number (MOBILE, FIXED_LINE, FIXED_LINE_OR_MOBILE, ...), null when it has none */
  phone_line_type: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface ErasureTombstoneTable {
  id: Generated<number>;
  /** HMAC-SHA-256 of the case-folded external id under the tombstone secret (see src/rights/tombstone-keys.ts) */
  external_id_key: string | null;
  /** which secret: a fingerprint, never the secret */
  key_id: string | null;
  /** tombstones made before keyed hashes: SHA-256 of the exact external id */
  legacy_external_id_sha256: string | null;
  erased_at: Date;
  receipt: ColumnType<unknown, string, string>;
}

export interface IdentitySplitTable {
  id: Generated<number>;
  person_id: number;
  record_ids: number[];
  partition: number;
  reason: string;
  actor: string;
  split_at: ColumnType<Date, Date | undefined, never>;
}
