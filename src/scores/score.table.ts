import type { ColumnType, Generated } from 'kysely';

export interface ScoreSetTable {
  id: Generated<number>;
  model_id: number;
  model_version_id: number;
  run_id: number | null;
  status: 'building' | 'live' | 'retired';
  scored_at: Date;
  row_count: Generated<number>;
  created_at: Generated<Date>;
  /**
   * the scored population's features on a sample, in the training profile's bins (see
   * pipelines/feature-profile.ts); null for sets written before it was recorded
   */
  feature_profile: ColumnType<Record<string, unknown> | null, string | null | undefined, string | null>;
}

export interface ScoreReason {
  feature: string;
  contribution: number;
}

export interface ScoreTable {
  score_set_id: number;
  contact_id: number;
  score: number;
  rank: number;
  percentile: number;
  /** codes into the network's explanation groups, strongest first */
  reason_1: number | null;
  reason_2: number | null;
  reason_3: number | null;
  contribution_1: number | null;
  contribution_2: number | null;
  contribution_3: number | null;
}
