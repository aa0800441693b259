import type { Generated } from 'kysely';

export interface OppositionListTable {
  id: Generated<number>;
  name: string;
  channel: string;
  list_date: Date;
  imported_at: Date;
  entry_count: number;
}

export interface OppositionEntryTable {
  list_id: number;
  value_hash: string;
}
