import type { Generated, JSONColumnType } from 'kysely';

export interface ImportTable {
  id: Generated<number>;
  kind: string;
  file_name: string;
  status: 'committed' | 'rejected' | 'failed';
  started_at: Date;
  finished_at: Date;
  rows_read: number;
  rows_imported: number;
  rows_unchanged: Generated<number>;
  rows_rejected: number;
  options: JSONColumnType<Record<string, unknown>>;
}
