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

export interface TargetExportMemberTable {
  export_id: string;
  position: number;
  contact_id: number | null;
  exported_at: Date;
  external_id: string | null;
  contact_value: string | null;
  score: number;
  rank: number;
  percentile: number;
  is_holdout: boolean;
  consent_event_ids: number[];
  member_hash: string;
  /** the list was not delivered: this member no longer counts towards contact pressure */
  released: Generated<boolean>;
}
