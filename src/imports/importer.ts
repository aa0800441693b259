import type pg from 'pg';
import type { BulkColumn, BulkValue } from '../db/bulk.ts';
import type { IdentityPolicy } from '../identities/resolution.repository.ts';
import type { TombstoneKeys } from '../rights/tombstone-keys.ts';
import type { CsvEncoding } from './csv-source.ts';
import type { Parsed } from './values.ts';

export type ImportKind = 'contacts' | 'consents' | 'products' | 'purchases';

export interface ImportOptions {
  /** file column name -> contract column name */
  columnMap?: Record<string, string>;
  /** date-fns format for every date column, instead of ISO 8601 */
  dateFormat?: string;
  /** import the good rows and write the bad ones to `rejectsFile` */
  skipInvalid?: boolean;
  rejectsFile?: string;
  /** purchases only: sum lines of one order for the same product instead of rejecting them */
  mergeLines?: boolean;
  /** how the file's bytes are read (default UTF-8, strictly) */
  encoding?: CsvEncoding;
}

export interface ImportSession {
  client: pg.PoolClient;
  importId: number;
  options: ImportOptions;
  defaultPhoneCountry: string;
  now: Date;
  /** the erasure tombstones' keys: the contacts import needs them once a keyed tombstone exists */
  tombstoneKeys?: TombstoneKeys;
  /** how records are linked into persons (the contacts import resolves identities) */
  identityPolicy: IdentityPolicy;
}

export interface RowError {
  field: string;
  message: string;
}

/** A rejected line found by a set-based check on the staged rows. */
export interface LineReject {
  line: number;
  field: string;
  message: string;
}

export interface ApplyCounts {
  /** new rows (contacts, products, purchases, consent events) */
  inserted: number;
  /** existing rows whose values changed (contacts, products) */
  updated: number;
  /** rows already present with the same key, left as they were */
  unchanged: number;
  /** lines folded into another line of the same order (purchases with mergeLines) */
  merged: number;
  /** contacts: records that joined the person of other records (identity resolution) */
  linked?: number;
}

/**
 * One kind of import: its columns, how a row is read, the checks that need the
 * whole file or the database, and how staged rows reach the real tables.
 * The staging table is `import_staging (line, raw, ...staging columns)`.
 */
export interface ImporterDefinition {
  kind: ImportKind;
  required: readonly string[];
  optional: readonly string[];
  staging: BulkColumn[];
  /** tables the import writes: vacuumed and analysed after commit (PGlite has no autovacuum; statistics
   *  keep plans sane, and the visibility map lets the consent gate use index-only scans) */
  writes: readonly string[];
  prepare(session: ImportSession): Promise<(values: Record<string, string>) => RowResult>;
  check(session: ImportSession): Promise<LineReject[]>;
  apply(session: ImportSession): Promise<ApplyCounts>;
}

export type RowResult = { ok: true; row: BulkValue[] } | { ok: false; error: RowError };

/** Reads each field with its parser; the first failing field rejects the row. */
export class RowBuilder {
  readonly row: BulkValue[] = [];
  error: RowError | undefined;

  add<T extends BulkValue>(field: string, parsed: Parsed<T>): T | undefined {
    if (this.error) return undefined;
    if (!parsed.ok) {
      this.error = { field, message: parsed.error };
      return undefined;
    }
    this.row.push(parsed.value);
    return parsed.value;
  }

  fail(field: string, message: string): void {
    this.error ??= { field, message };
  }

  result(): RowResult {
    return this.error ? { ok: false, error: this.error } : { ok: true, row: this.row };
  }
}
