import type { ColumnType, Generated } from 'kysely';

export interface ContactTable {
  id: Generated<number>;
  external_id: string | null;
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
  external_id_hash: string | null;
  email_hash: string | null;
  phone_hash: string | null;
  erased_at: Date;
  receipt: ColumnType<unknown, string, string>;
}
