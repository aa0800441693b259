import type { Generated, JSONColumnType } from 'kysely';

export type PipelineRunStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
export type ModelVersionStatus = 'candidate' | 'champion' | 'retired' | 'rejected';

export interface PipelineRunTable {
  id: Generated<number>;
  status: PipelineRunStatus;
  trigger: string;
  as_of: Date;
  params: JSONColumnType<Record<string, unknown>>;
  created_at: Generated<Date>;
  started_at: Date | null;
  finished_at: Date | null;
  error: string | null;
  kind: Generated<'pipeline' | 'backtest'>;
  horizon_days: number | null;
  summary: JSONColumnType<Record<string, unknown>, string | undefined, string>;
  driver: Generated<'inline' | 'queue'>;
  shards: number | null;
  heartbeat_at: Date | null;
  /** where an inline run works (null for a queued run): its death is recognised at once on that host */
  host: string | null;
  pid: number | null;
}

export type RunPartStatus = 'running' | 'succeeded' | 'failed';

/** One job of a run: 'train', 'score:<shard>', 'rank:<score set id>' or 'publish'. */
export interface PipelineRunPartTable {
  run_id: number;
  part: string;
  status: RunPartStatus;
  attempt: Generated<number>;
  worker: string | null;
  started_at: Date | null;
  finished_at: Date | null;
  rows: number | null;
  output: JSONColumnType<Record<string, unknown> | null, string | null, string | null>;
  error: string | null;
}

/** What the light consent job found and did, each time it ran (counts only). */
export interface ConsentSweepTable {
  id: Generated<number>;
  ran_at: Date;
  scores_deleted: number;
  contacts_affected: number;
  report: JSONColumnType<Record<string, unknown>, string, string>;
}

/** Who could be profiled at a run's instant, and the consent event that allowed it. */
export interface ProfilingSnapshotTable {
  run_id: number;
  contact_id: number;
  consent_event_id: number;
  known_since: Date;
}

export interface ModelTable {
  id: Generated<number>;
  target_kind: 'product' | 'category' | 'any';
  target_key: string;
  product_id: number | null;
  created_at: Generated<Date>;
}

export interface ModelVersionTable {
  id: Generated<number>;
  model_id: number;
  version: number;
  algorithm: string;
  status: ModelVersionStatus;
  run_id: number | null;
  trained_at: Date;
  consent_snapshot_at: Date;
  population_size: number;
  training_cutoff: Date;
  horizon_days: number;
  feature_list: JSONColumnType<string[]>;
  code_version: string;
  training_data_hash: string;
  metrics: JSONColumnType<Record<string, unknown>>;
  baseline_metrics: JSONColumnType<Record<string, unknown>>;
  decision_reason: string | null;
  promoted_at: Date | null;
  network_id: number | null;
  evaluation_network_id: number | null;
  output_index: number | null;
}

export type NetworkRole = 'evaluation' | 'production';

/** A tfjs network stored by the registry's IOHandler; one network serves every target of a run. */
export interface ModelNetworkTable {
  id: Generated<number>;
  run_id: number | null;
  role: NetworkRole;
  algorithm: string;
  feature_list: JSONColumnType<string[]>;
  metadata: JSONColumnType<Record<string, unknown>>;
  format: string;
  model_topology: JSONColumnType<Record<string, unknown>>;
  weight_specs: JSONColumnType<unknown[]>;
  weight_data: Buffer;
  created_at: Generated<Date>;
}
