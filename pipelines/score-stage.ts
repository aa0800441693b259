import type { AppContext } from '../src/context.ts';
import type { Tensorflow } from '../models/tensorflow.ts';
import type { ScoringProfile } from './feature-profile.ts';
import type { FeatureMatrix } from './features.ts';
import { switchLive, writeScoreSet } from './scoring.ts';
import { type Target, targetId } from './targets.ts';
import { explainMatrix, type FittedNetwork, predictMatrix } from './training.ts';

export interface ScoredMember {
  target: Target;
  /** the target's output in the network */
  index: number;
  modelId: number;
  versionId: number;
}

const REASONS = 3;

/**
 * Scores every row of the scoring matrix (the snapshot, still consenting now) for each
 * member target of one network: probability, rank, percentile and the top three reasons;
 * each target's set is written, then switched live on its own.
 */
export async function scoreWithNetwork(
  t: Tensorflow,
  context: AppContext,
  network: FittedNetwork,
  matrix: FeatureMatrix,
  members: readonly ScoredMember[],
  runId: number,
  onProgress: (done: number, total: number) => void,
  /** stored with each score set: the scored population's feature profile (see feature-profile.ts) */
  extras: { featureProfile?: ScoringProfile | null } = {},
): Promise<Map<string, number>> {
  const { db } = context.database;
  const outputs = network.logPositiveWeights.length;
  const probabilities = await predictMatrix(t, network, matrix);
  const reasons = members.map(() => ({ codes: new Uint8Array(matrix.rows * REASONS), contributions: new Float32Array(matrix.rows * REASONS) }));
  await explainMatrix(t, network, matrix, (start, end, explanations) => {
    for (const [m, member] of members.entries()) {
      const own = reasons[m] as { codes: Uint8Array; contributions: Float32Array };
      for (let row = start; row < end; row++) {
        const source = ((row - start) * outputs + member.index) * REASONS;
        own.codes.set(explanations.codes.subarray(source, source + REASONS), row * REASONS);
        own.contributions.set(explanations.contributions.subarray(source, source + REASONS), row * REASONS);
      }
    }
  });
  const written = new Map<string, number>();
  const writeOne = async (m: number) => {
    const member = members[m] as ScoredMember;
    const scores = new Float32Array(matrix.rows);
    for (let row = 0; row < matrix.rows; row++) scores[row] = probabilities[row * outputs + member.index] as number;
    const set = await db
      .insertInto('score_sets')
      .values({
        model_id: member.modelId,
        model_version_id: member.versionId,
        run_id: runId,
        status: 'building',
        scored_at: matrix.cutoff,
        feature_profile: extras.featureProfile ? JSON.stringify(extras.featureProfile) : null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const own = reasons[m] as { codes: Uint8Array; contributions: Float32Array };
    const count = await writeScoreSet(context.database, set.id, {
      contactIds: matrix.contactIds,
      scores,
      reasonCodes: own.codes,
      contributions: own.contributions,
    });
    await db.updateTable('score_sets').set({ row_count: count }).where('id', '=', set.id).execute();
    await switchLive(db, member.modelId, set.id, context.clock.now());
    written.set(targetId(member.target), count);
    onProgress(written.size, members.length);
  };
  // two writers on PostgreSQL: loading and indexing a set is the server's work, on its own core
  const writers = context.database.engine === 'postgres' ? 2 : 1;
  let next = 0;
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (next < members.length) await writeOne(next++);
    }),
  );
  return written;
}
