import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/database.ts';
import type { ModelTable, ModelVersionStatus } from './registry.table.ts';

/*
 * The reads of the model registry shared by `cible models` and the HTTP API. The registry
 * holds no personal data (targets, metrics, lineage, counts); what is read here keeps it so.
 */

export type TargetKind = ModelTable['target_kind'];

export interface ModelTarget {
  kind: TargetKind;
  key: string;
}

/** "SKU", "any", "category:NAME" or "product:SKU" → the registry's kind and key. */
export function parseModelTarget(value: string): ModelTarget {
  const text = value.trim();
  if (text === 'any') return { kind: 'any', key: 'any' };
  const match = /^(category|product):(.+)$/.exec(text);
  return match ? { kind: match[1] as TargetKind, key: match[2] as string } : { kind: 'product', key: text };
}

/** "product:SKU", "category:NAME" or "any", as the pipeline names targets. */
export function targetLabel(target: ModelTarget): string {
  return target.kind === 'any' ? 'any' : `${target.kind}:${target.key}`;
}

/** One figure for the model and each baseline (null when it could not be computed). */
export interface Comparison {
  model: number | null;
  rfm: number | null;
  bgnbd: number | null;
}

export interface ChampionSummary {
  version: number;
  algorithm: string;
  trainedAt: Date;
  horizonDays: number;
  populationSize: number;
  /** ROC AUC on the evaluation window */
  auc: Comparison;
  /** lift in the top decile on the evaluation window */
  liftTopDecile: Comparison;
}

export interface ModelSummary {
  target: ModelTarget;
  /** how many versions the model has, whatever their status */
  versions: number;
  champion: ChampionSummary | null;
}

const finite = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) ? value : null);

/** Every model with its champion (if any), ordered by kind and key. */
export async function listModels(db: Kysely<Database>): Promise<ModelSummary[]> {
  // only the figures are read out of the metrics: their documents (reliability, gains, importance) are large
  const rows = await db
    .selectFrom('models as m')
    .leftJoin('model_versions as v', (join) => join.onRef('v.model_id', '=', 'm.id').on('v.status', '=', 'champion'))
    .select([
      'm.target_kind',
      'm.target_key',
      'v.version',
      'v.algorithm',
      'v.trained_at',
      'v.horizon_days',
      'v.population_size',
      sql<unknown>`v.metrics #> '{evaluation,rocAuc}'`.as('model_auc'),
      sql<unknown>`v.baseline_metrics #> '{rfm,rocAuc}'`.as('rfm_auc'),
      sql<unknown>`v.baseline_metrics #> '{bgnbd,rocAuc}'`.as('bgnbd_auc'),
      sql<unknown>`v.metrics #> '{evaluation,gains,0,lift}'`.as('model_lift'),
      sql<unknown>`v.baseline_metrics #> '{rfm,gains,0,lift}'`.as('rfm_lift'),
      sql<unknown>`v.baseline_metrics #> '{bgnbd,gains,0,lift}'`.as('bgnbd_lift'),
      sql<number>`(SELECT count(*)::int FROM model_versions a WHERE a.model_id = m.id)`.as('versions'),
    ])
    .orderBy('m.target_kind')
    .orderBy('m.target_key')
    .execute();
  return rows.map((row) => ({
    target: { kind: row.target_kind, key: row.target_key },
    versions: Number(row.versions),
    champion:
      row.version === null || row.algorithm === null || row.trained_at === null || row.horizon_days === null || row.population_size === null
        ? null
        : {
            version: row.version,
            algorithm: row.algorithm,
            trainedAt: row.trained_at,
            horizonDays: row.horizon_days,
            populationSize: row.population_size,
            auc: { model: finite(row.model_auc), rfm: finite(row.rfm_auc), bgnbd: finite(row.bgnbd_auc) },
            liftTopDecile: { model: finite(row.model_lift), rfm: finite(row.rfm_lift), bgnbd: finite(row.bgnbd_lift) },
          },
  }));
}

export interface VersionLineage {
  runId: number | null;
  consentSnapshotAt: Date;
  populationSize: number;
  trainingCutoff: Date;
  horizonDays: number;
  codeVersion: string;
  trainingDataHash: string;
  features: string[];
}

export interface VersionDetail {
  version: number;
  status: ModelVersionStatus;
  algorithm: string;
  trainedAt: Date;
  promotedAt: Date | null;
  decisionReason: string | null;
  lineage: VersionLineage;
  /** the evaluation (metrics, reliability, gains), importance, champion comparison, training windows */
  metrics: Record<string, unknown>;
  /** the RFM and BG/NBD baselines on the same window */
  baselineMetrics: Record<string, unknown>;
}

export interface ModelDetail {
  target: ModelTarget;
  /** how many versions the model has */
  versionCount: number;
  champion: VersionDetail | null;
  /** the most recent versions first */
  versions: VersionDetail[];
}

/**
 * One model with its champion and its most recent versions (all of them when `recent` is
 * omitted); null when the registry has no model for this target.
 */
export async function findModel(db: Kysely<Database>, target: ModelTarget, options: { recent?: number } = {}): Promise<ModelDetail | null> {
  const model = await db
    .selectFrom('models')
    .select(['id', 'target_kind', 'target_key'])
    .where('target_kind', '=', target.kind)
    .where('target_key', '=', target.key)
    .executeTakeFirst();
  if (!model) return null;
  const versionColumns = [
    'version',
    'status',
    'algorithm',
    'run_id',
    'trained_at',
    'promoted_at',
    'decision_reason',
    'consent_snapshot_at',
    'population_size',
    'training_cutoff',
    'horizon_days',
    'code_version',
    'training_data_hash',
    'feature_list',
    'metrics',
    'baseline_metrics',
  ] as const;
  let recentQuery = db.selectFrom('model_versions').select(versionColumns).where('model_id', '=', model.id).orderBy('version', 'desc');
  if (options.recent !== undefined) recentQuery = recentQuery.limit(options.recent);
  const recent = await recentQuery.execute();
  // the champion may be older than the recent versions
  const championRow =
    recent.find((row) => row.status === 'champion') ??
    (await db
      .selectFrom('model_versions')
      .select(versionColumns)
      .where('model_id', '=', model.id)
      .where('status', '=', 'champion')
      .executeTakeFirst());
  const count = await db
    .selectFrom('model_versions')
    .select(sql<number>`count(*)::int`.as('n'))
    .where('model_id', '=', model.id)
    .executeTakeFirstOrThrow();
  const detail = (row: (typeof recent)[number]): VersionDetail => ({
    version: row.version,
    status: row.status,
    algorithm: row.algorithm,
    trainedAt: row.trained_at,
    promotedAt: row.promoted_at,
    decisionReason: row.decision_reason,
    lineage: {
      runId: row.run_id,
      consentSnapshotAt: row.consent_snapshot_at,
      populationSize: row.population_size,
      trainingCutoff: row.training_cutoff,
      horizonDays: row.horizon_days,
      codeVersion: row.code_version,
      trainingDataHash: row.training_data_hash,
      features: row.feature_list,
    },
    metrics: row.metrics,
    baselineMetrics: row.baseline_metrics,
  });
  return {
    target: { kind: model.target_kind, key: model.target_key },
    versionCount: Number(count.n),
    champion: championRow ? detail(championRow) : null,
    versions: recent.map(detail),
  };
}
