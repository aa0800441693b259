import type { Generated, JSONColumnType } from 'kysely';

export interface ScoreSetTable {
  id: Generated<number>;
  model_id: number;
  model_version_id: number;
  run_id: number | null;
  status: 'building' | 'live' | 'retired';
  scored_at: Date;
  row_count: Generated<number>;
  created_at: Generated<Date>;
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
