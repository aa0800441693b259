import { standardisationFromJson } from '../models/standardisation.ts';
import type { Tensorflow } from '../models/tensorflow.ts';
import type { AppContext } from '../src/context.ts';
import { loadNetwork } from '../src/registry/model-store.ts';
import { type BaselineScorer, scoreWithBaseline } from './baseline-scoring.ts';
import { applyBuyTillYouDie } from './buy-till-you-die.ts';
import { type FeatureProfile, type ScoringProfile, scoringProfile } from './feature-profile.ts';
import { computeFeatures, type FeatureLayout, type FeatureMatrix } from './features.ts';
import { type Progress, stageTimer } from './progress.ts';
import type { PlannedVersion, Scorer, StageFigure, TrainingPlan } from './run-types.ts';
import { writeScoreTable } from './scoring.ts';
import { explainMatrix, type InferenceNetwork, predictMatrix } from './training.ts';

const REASONS = 3;

export interface Shard {
  index: number;
  count: number;
}

/** What one scoring shard wrote: a table of scores per score set, and its people's feature profile. */
export interface ShardOutput {
  shard: number;
  /** score set id → the table holding this shard's rows (ranked within the shard) */
  tables: Record<string, string>;
  rows: number;
  profile: ScoringProfile | null;
  stages: StageFigure[];
}

/**
 * Scores one shard of the people (contact id modulo the shard count) who are in the run's
 * snapshot and still consent to profiling now, with the production networks the training
 * part stored: probability and the top three reasons, for each champion target. Rows go to
 * tables of their own named after the attempt (`tag`), so an attempt presumed dead cannot
 * write into a retry's tables; nothing is visible until the run publishes.
 */
export async function scoreShard(
  context: AppContext,
  t: Tensorflow,
  plan: TrainingPlan,
  shard: Shard,
  tag: string,
  progress: Progress,
): Promise<ShardOutput> {
  const { db } = context.database;
  const champions = plan.versions.filter((entry) => entry.scoreSetId !== null && entry.scorer !== null);
  const { stages, timed } = stageTimer(progress);
  // one feature matrix per layout: this run's, and that of any kept champion trained on another
  const layouts = new Map<string, FeatureLayout>();
  if (plan.layout) layouts.set(layoutKey(plan.layout), plan.layout);
  for (const entry of champions) {
    const layout = (entry.scorer as Scorer).layout;
    if (!layouts.has(layoutKey(layout))) layouts.set(layoutKey(layout), layout);
  }
  const matrices = new Map<string, FeatureMatrix>();
  await timed('features (scoring)', async () => {
    let rows = 0;
    for (const [key, layout] of layouts) {
      const value = await computeFeatures(
        db,
        {
          runId: plan.runId,
          cutoff: new Date(plan.asOf),
          horizonDays: plan.horizonDays,
          layout,
          liveConsentAt: context.clock.now(),
          shard,
        },
        (done, total) => progress.step('people', done, total),
      );
      if (plan.scoringFit) applyBuyTillYouDie(value, plan.scoringFit);
      matrices.set(key, value);
      rows += value.rows;
    }
    return { value: undefined, rows };
  });
  const main = matrices.get(layoutKey(plan.layout)) ?? [...matrices.values()][0];
  const reference = plan.trainingProfile as FeatureProfile | null;
  const profile = reference && main && main.rows > 0 ? scoringProfile(main, reference, plan.seed) : null;

  const tables: Record<string, string> = {};
  let done = 0;
  const write = async (
    member: PlannedVersion,
    matrix: FeatureMatrix,
    data: { scores: Float32Array; reasonCodes: Uint8Array; contributions: Float32Array },
  ) => {
    const scoreSetId = member.scoreSetId as number;
    const table = `score_part_${scoreSetId}_${shard.index}_${tag}`;
    const rows = await writeScoreTable(context.database, table, scoreSetId, { contactIds: matrix.contactIds, ...data });
    tables[String(scoreSetId)] = table;
    progress.step('targets', ++done, champions.length);
    return rows;
  };
  // two writers on PostgreSQL: loading a table is the server's work, on its own core
  const inParallel = async (count: number, work: (index: number) => Promise<number>) => {
    const writers = context.database.engine === 'postgres' ? 2 : 1;
    let next = 0;
    let rows = 0;
    await Promise.all(
      Array.from({ length: writers }, async () => {
        while (next < count) rows += await work(next++);
      }),
    );
    return rows;
  };
  await timed('score', async () => {
    let rows = 0;
    const byNetwork = new Map<number, PlannedVersion[]>();
    const baselineMembers: PlannedVersion[] = [];
    for (const entry of champions) {
      const scorer = entry.scorer as Scorer;
      if (scorer.kind === 'network') byNetwork.set(scorer.networkId, [...(byNetwork.get(scorer.networkId) ?? []), entry]);
      else baselineMembers.push(entry);
    }
    for (const [networkId, members] of byNetwork) {
      const matrix = matrices.get(layoutKey((members[0]!.scorer as Scorer).layout)) as FeatureMatrix;
      const network = await loadInference(t, context, networkId);
      try {
        const outputs = network.logPositiveWeights.length;
        const outputOf = (member: PlannedVersion) => (member.scorer as Scorer & { kind: 'network' }).outputIndex;
        const probabilities = await predictMatrix(t, network, matrix);
        const reasons = members.map(() => ({
          codes: new Uint8Array(matrix.rows * REASONS),
          contributions: new Float32Array(matrix.rows * REASONS),
        }));
        await explainMatrix(t, network, matrix, (start, end, explanations) => {
          for (const [m, member] of members.entries()) {
            const own = reasons[m] as { codes: Uint8Array; contributions: Float32Array };
            for (let row = start; row < end; row++) {
              const source = ((row - start) * outputs + outputOf(member)) * REASONS;
              own.codes.set(explanations.codes.subarray(source, source + REASONS), row * REASONS);
              own.contributions.set(explanations.contributions.subarray(source, source + REASONS), row * REASONS);
            }
          }
        });
        rows += await inParallel(members.length, (m) => {
          const member = members[m] as PlannedVersion;
          const scores = new Float32Array(matrix.rows);
          for (let row = 0; row < matrix.rows; row++) scores[row] = probabilities[row * outputs + outputOf(member)] as number;
          const own = reasons[m] as { codes: Uint8Array; contributions: Float32Array };
          return write(member, matrix, { scores, reasonCodes: own.codes, contributions: own.contributions });
        });
      } finally {
        network.model.dispose();
      }
    }
    rows += await inParallel(baselineMembers.length, (m) => {
      const member = baselineMembers[m] as PlannedVersion;
      const scorer = member.scorer as BaselineScorer & { layout: FeatureLayout };
      const matrix = matrices.get(layoutKey(scorer.layout)) as FeatureMatrix;
      return write(member, matrix, scoreWithBaseline(scorer, matrix, plan.scoringFit?.params ?? null));
    });
    return { value: undefined, rows };
  });
  return { shard: shard.index, tables, rows: main?.rows ?? 0, profile, stages };
}

function layoutKey(layout: FeatureLayout | null): string {
  return layout ? JSON.stringify([layout.names, layout.specialCategories]) : '';
}

async function loadInference(t: Tensorflow, context: AppContext, networkId: number): Promise<InferenceNetwork> {
  const stored = await loadNetwork(context.database.db, networkId);
  const metadata = stored.metadata as { logPositiveWeights: number[]; standardisation: { mean: number[]; scale: number[] } };
  return {
    model: await t.tf.loadLayersModel(stored.handler),
    logPositiveWeights: Float32Array.from(metadata.logPositiveWeights),
    standardisation: standardisationFromJson(metadata.standardisation),
  };
}

/** The scored population's profile over every shard: each shard's bin shares weighted by its sample. */
export function mergeScoringProfiles(profiles: ReadonlyArray<ScoringProfile | null>): ScoringProfile | null {
  const present = profiles.filter((profile): profile is ScoringProfile => profile !== null && profile.rows > 0);
  if (present.length === 0) return null;
  if (present.length === 1) return present[0] as ScoringProfile;
  const rows = present.reduce((sum, profile) => sum + profile.rows, 0);
  const bins: ScoringProfile['bins'] = {};
  const weighted = (value: (profile: ScoringProfile) => number) =>
    present.reduce((sum, profile) => sum + value(profile) * profile.rows, 0) / rows;
  for (const [name, first] of Object.entries((present[0] as ScoringProfile).bins)) {
    bins[name] = {
      shares: first.shares.map((_, bin) => weighted((profile) => profile.bins[name]?.shares[bin] ?? 0)),
      missing: weighted((profile) => profile.bins[name]?.missing ?? 0),
    };
  }
  return { rows, population: present.reduce((sum, profile) => sum + profile.population, 0), bins };
}
