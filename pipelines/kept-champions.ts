import { type Kysely, sql } from 'kysely';
import type { BinnedCalibration } from '../models/baselines.ts';
import { strided } from '../models/metrics.ts';
import { standardisationFromJson } from '../models/standardisation.ts';
import type { Tensorflow } from '../models/tensorflow.ts';
import type { AppContext } from '../src/context.ts';
import type { Database } from '../src/db/database.ts';
import type { CurrentChampion } from '../src/registry/champions.repository.ts';
import { codeVersion } from '../src/registry/code-version.ts';
import { loadNetwork } from '../src/registry/model-store.ts';
import type { Choice } from './candidates.ts';
import type { BaselineKind } from './evaluation.ts';
import { type FeatureLayout, storedLayout } from './features.ts';
import type { Algorithm, PlannedVersion, Scorer } from './run-types.ts';
import { type Target, targetId } from './targets.ts';
import { type InferenceNetwork, type LabelledMatrix, predictMatrix } from './training.ts';

/*
 * Champions from earlier runs: how each scores today's people again (every run re-scores every
 * champion), and how it scores this run's evaluation rows (for a paired comparison).
 */

/**
 * A champion this run does not replace, planned to score today's people again: a network by its
 * stored production network (with the features of its own layout), a baseline by its stored
 * calibration on this run's BG/NBD fit. No version is written; its new score set names this run.
 * Null when its scorer is not stored.
 */
export async function keptChampionEntry(
  db: Kysely<Database>,
  champion: CurrentChampion,
  runLayout: FeatureLayout | null,
  run: { runId: number; trainedAt: string; consentSnapshotAt: string; populationSize: number; trainingCutoff: string; horizonDays: number },
): Promise<PlannedVersion | null> {
  const target = targetOf(champion);
  const scorer = keptScorer(champion, target, runLayout);
  if (!scorer) return null;
  return {
    target,
    outputIndex: champion.outputIndex ?? 0,
    status: 'champion',
    algorithm: champion.algorithm as Algorithm,
    scoreSetId: await reserveScoreSetId(db),
    scorer,
    kept: { modelId: champion.modelId, versionId: champion.versionId, version: champion.version },
    version: {
      algorithm: champion.algorithm,
      runId: run.runId,
      trainedAt: run.trainedAt,
      consentSnapshotAt: run.consentSnapshotAt,
      populationSize: run.populationSize,
      trainingCutoff: run.trainingCutoff,
      horizonDays: run.horizonDays,
      featureList: scorer.layout.names,
      codeVersion: codeVersion(),
      trainingDataHash: '',
      metrics: {},
      baselineMetrics: {},
      decisionReason: `champion v${champion.version} kept, scored again by run ${run.runId}`,
      networkId: champion.networkId,
      evaluationNetworkId: champion.evaluationNetworkId,
    },
  };
}

export function targetOf(champion: CurrentChampion): Target {
  const { kind, key, productId } = champion.target;
  return { kind, key, productId, category: kind === 'category' ? key : null };
}

/** How a kept champion scores: from what its version (baseline) or its network (layout, targets) stored. */
export function keptScorer(champion: CurrentChampion, target: Target, runLayout: FeatureLayout | null): Scorer | null {
  const stored = champion.metrics.layout as { categories: string[]; productIds: number[]; specialCategories: string[] } | undefined;
  if (champion.algorithm === 'bgnbd' || champion.algorithm === 'rfm') {
    const scorer = champion.metrics.scorer as { kind: BaselineKind; calibration: BinnedCalibration } | undefined;
    if (!scorer || !stored) return null;
    return {
      kind: scorer.kind,
      target,
      calibration: scorer.calibration,
      layout: runLayout && hasBlock(runLayout, target) ? runLayout : storedLayout({ names: champion.featureList, ...stored }),
    };
  }
  if (champion.networkId === null || !champion.network) return null;
  const metadata = champion.network.metadata as { layout?: { categories: string[]; productIds: number[]; specialCategories: string[] } };
  if (!metadata.layout) return null;
  const layout = storedLayout({ names: champion.network.featureList, ...metadata.layout });
  return { kind: 'network', networkId: champion.networkId, outputIndex: champion.outputIndex ?? 0, layout };
}

function hasBlock(layout: FeatureLayout, target: Target): boolean {
  if (target.kind === 'any') return true;
  return layout.names.includes(`${target.kind}:${target.key}:purchase_days`);
}

/**
 * The champion's scores on this run's evaluation rows, for a paired comparison: a network
 * champion by its own evaluation network (trained one horizon before its run, so it never saw
 * this window), a baseline champion by this run's candidate of its kind (a baseline is refitted
 * every run). Null when its features differ from this run's: the AUC it was registered with is
 * used instead. A network serves many targets: each one is loaded and run once per run.
 */
export async function championScoresOnWindow(
  t: Tensorflow,
  context: AppContext,
  champion: CurrentChampion,
  target: Target,
  choice: Choice,
  evaluated: LabelledMatrix,
  layout: FeatureLayout,
  predictions: Map<number, { targets: string[]; probabilities: Float32Array } | null>,
): Promise<Float32Array | null> {
  if (champion.algorithm === 'bgnbd' || champion.algorithm === 'rfm') {
    return choice.candidates.find((candidate) => candidate.algorithm === champion.algorithm)?.scores ?? null;
  }
  const networkId = champion.evaluationNetworkId;
  if (!networkId) return null;
  if (!predictions.has(networkId)) predictions.set(networkId, await predictWithStoredNetwork(t, context, networkId, evaluated, layout));
  const cached = predictions.get(networkId);
  const output = cached ? cached.targets.indexOf(targetId(target)) : -1;
  if (!cached || output < 0) return null;
  return strided(cached.probabilities, cached.targets.length, output);
}

async function predictWithStoredNetwork(
  t: Tensorflow,
  context: AppContext,
  networkId: number,
  evaluated: LabelledMatrix,
  layout: FeatureLayout,
): Promise<{ targets: string[]; probabilities: Float32Array } | null> {
  const network = await loadNetwork(context.database.db, networkId);
  if (JSON.stringify(network.featureList) !== JSON.stringify(layout.names)) return null;
  const metadata = network.metadata as {
    targets: string[];
    logPositiveWeights: number[];
    standardisation: { mean: number[]; scale: number[] };
  };
  const model = await t.tf.loadLayersModel(network.handler);
  try {
    const inference: InferenceNetwork = {
      model,
      logPositiveWeights: Float32Array.from(metadata.logPositiveWeights),
      standardisation: standardisationFromJson(metadata.standardisation),
    };
    return { targets: metadata.targets, probabilities: await predictMatrix(t, inference, evaluated.matrix) };
  } finally {
    model.dispose();
  }
}

/** A score set id taken now, so that scoring jobs write rows under it before the set exists. */
export async function reserveScoreSetId(db: Kysely<Database>): Promise<number> {
  const { rows } = await sql<{ id: number }>`SELECT nextval(pg_get_serial_sequence('score_sets', 'id'))::int AS id`.execute(db);
  return (rows[0] as { id: number }).id;
}
