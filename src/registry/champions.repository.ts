import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/database.ts';
import type { ModelTable } from './registry.table.ts';

/** A model's current champion, with what a run needs to judge it again and to score with it. */
export interface CurrentChampion {
  modelId: number;
  target: { kind: ModelTable['target_kind']; key: string; productId: number | null };
  versionId: number;
  version: number;
  algorithm: string;
  networkId: number | null;
  evaluationNetworkId: number | null;
  outputIndex: number | null;
  featureList: string[];
  /** the parts of the version's metrics a run reads: evaluation.rocAuc, scorer, layout */
  metrics: Record<string, unknown>;
  /** the stored network's layout and targets, when the champion is a network */
  network: { featureList: string[]; metadata: Record<string, unknown> } | null;
}

/** Every model's champion, in model order. */
export async function currentChampions(db: Kysely<Database>): Promise<CurrentChampion[]> {
  const rows = await db
    .selectFrom('model_versions as v')
    .innerJoin('models as m', 'm.id', 'v.model_id')
    .leftJoin('model_networks as n', 'n.id', 'v.network_id')
    .select([
      'm.id as modelId',
      'm.target_kind as kind',
      'm.target_key as key',
      'm.product_id as productId',
      'v.id as versionId',
      'v.version',
      'v.algorithm',
      'v.network_id as networkId',
      'v.evaluation_network_id as evaluationNetworkId',
      'v.output_index as outputIndex',
      'v.feature_list as featureList',
      // only what a run reads: metrics and network metadata hold large documents (curves, profiles)
      sql<Record<string, unknown>>`jsonb_build_object('evaluation', jsonb_build_object('rocAuc', v.metrics #> '{evaluation,rocAuc}'),
        'scorer', v.metrics -> 'scorer', 'layout', v.metrics -> 'layout')`.as('metrics'),
      'n.feature_list as networkFeatures',
      sql<Record<
        string,
        unknown
      > | null>`CASE WHEN n.id IS NULL THEN NULL ELSE jsonb_build_object('layout', n.metadata -> 'layout', 'targets', n.metadata -> 'targets') END`.as(
        'networkMetadata',
      ),
    ])
    .where('v.status', '=', 'champion')
    .orderBy('m.id')
    .execute();
  return rows.map((row) => ({
    modelId: Number(row.modelId),
    target: { kind: row.kind, key: row.key, productId: row.productId === null ? null : Number(row.productId) },
    versionId: Number(row.versionId),
    version: row.version,
    algorithm: row.algorithm,
    networkId: row.networkId === null ? null : Number(row.networkId),
    evaluationNetworkId: row.evaluationNetworkId === null ? null : Number(row.evaluationNetworkId),
    outputIndex: row.outputIndex,
    featureList: row.featureList,
    metrics: row.metrics,
    network: row.networkFeatures && row.networkMetadata ? { featureList: row.networkFeatures, metadata: row.networkMetadata } : null,
  }));
}
