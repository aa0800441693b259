import type { Generated, JSONColumnType } from 'kysely';

export interface TargetExportTable {
  id: Generated<string>;
  created_at: Generated<Date>;
  api_key_id: number | null;
  actor: string;
  model_id: number;
  model_version_id: number;
  score_set_id: number;
  channel: string;
  params: JSONColumnType<Record<string, unknown>>;
  funnel: JSONColumnType<Record<string, number>>;
  member_count: number;
  holdout_count: Generated<number>;
  holdout_seed: string | null;
  manifest_hash: string;
  delivery: ListDelivery;
  delivery_settled_at: Date | null;
}

/** pending while the list is being sent (it counts towards pressure), then delivered or undelivered (released) */
export type ListDelivery = 'pending' | 'delivered' | 'undelivered';

/** A list's members in list order, one array per field; see the migration that made them one row per list. */
export interface TargetExportManifestTable {
  export_id: string;
  hash_scheme: 1 | 2;
  contact_ids: number[];
  scores: number[];
  ranks: number[];
  percentiles: number[];
  holdout: boolean[];
  profiling_event_ids: number[];
  channel_event_ids: number[];
  /** 32 bytes per member */
  member_hashes: Buffer;
}

/** The lists a contact was sent within the pressure window, as (export_id, sent_at) pairs: written only in SQL. */
export interface ContactPressureTable {
  contact_id: number;
  sends: string;
}
