import type { ColumnType, Generated, JSONColumnType } from 'kysely';

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
}

export interface ModelArtifactTable {
  model_version_id: number;
  format: string;
  model_topology: JSONColumnType<Record<string, unknown>>;
  weight_specs: JSONColumnType<unknown[]>;
  weight_data: Buffer;
  created_at: Generated<Date>;
}
