import { type Kysely, sql } from 'kysely';
import { type ChannelFunnel, channelFunnel } from '../src/consent/eligibility.ts';
import type { AppContext } from '../src/context.ts';
import type { Database } from '../src/db/database.ts';
import { describeError } from '../src/logger.ts';
import { ensureModel, finishRun, insertVersion, promoteVersion } from '../src/registry/registry.repository.ts';
import type { PipelineReport, StageFigure, TrainingPlan } from './run-types.ts';
import { mergeScoringProfiles, type ShardOutput } from './score-part.ts';
import { CLEANUP_LOCK_TIMEOUT, dropRetiredScoreSets, isLockTimeout, scoreSetTable, switchLive } from './scoring.ts';
import { targetId } from './targets.ts';

export interface PublishInput {
  plan: TrainingPlan;
  shards: readonly ShardOutput[];
  /** score set id → rows in its ranked table */
  ranked: ReadonlyMap<number, number>;
  /** score set id → why its scoring failed: that target keeps its current champion */
  failedScoreSets?: ReadonlyMap<number, string>;
  /** stages of the parts after training, for the report */
  stages?: StageFigure[];
  /**
   * The publishing job's attempt, in the publishing transaction: `fence` runs first and throws
   * when this attempt may no longer publish; `complete` runs last and records the part as done.
   */
  attempt?: { fence: (trx: Kysely<Database>) => Promise<void>; complete: (trx: Kysely<Database>) => Promise<void> };
}

/**
 * The last part of a run: everything it produced becomes visible in one transaction, or
 * nothing does. Versions are numbered and written, champions promoted, each champion's
 * score set attached as a partition and switched live (people who withdrew meanwhile are
 * removed first), the run's unused networks deleted, and the run marked succeeded.
 * The transaction locks `scores` in SHARE UPDATE EXCLUSIVE mode at most (ATTACH PARTITION),
 * which target lists, person pages and erasures pass; tables are dropped only after it
 * commits, each on a short lock timeout: the retired sets' partitions (DETACH locks all of
 * `scores`) and the leftover tables of dead attempts and failed sets.
 */
export async function publishRun(context: AppContext, input: PublishInput): Promise<PipelineReport> {
  const { db } = context.database;
  const { plan } = input;
  const began = performance.now();
  const report: PipelineReport = structuredClone(plan.report);
  const scoring = plan.versions.some((entry) => entry.scoreSetId !== null && !input.failedScoreSets?.has(entry.scoreSetId));
  // who could be reached on each channel when the run scored (counts only), for the review pages
  const funnelStages: StageFigure[] = [];
  if (scoring) {
    const started = performance.now();
    report.consentFunnel = await consentFunnelNow(context);
    funnelStages.push({
      stage: 'consent funnel',
      seconds: (performance.now() - started) / 1000,
      rows: report.consentFunnel.channels.length,
    });
  }
  const profile = mergeScoringProfiles(input.shards.map((shard) => shard.profile));
  const outcomes = new Map(report.targets.map((outcome) => [outcome.target, outcome]));

  /** A score set of this run, written under its reserved id, attached as a partition and switched live for the version. */
  const attachScoreSet = async (trx: Kysely<Database>, modelId: number, versionId: number, scoreSetId: number, now: Date) => {
    await sql`
      INSERT INTO score_sets (id, model_id, model_version_id, run_id, status, scored_at, row_count, feature_profile)
      OVERRIDING SYSTEM VALUE
      VALUES (${scoreSetId}, ${modelId}, ${versionId}, ${plan.runId}, 'building', ${new Date(plan.asOf)},
        ${input.ranked.get(scoreSetId) ?? 0}, ${profile ? JSON.stringify(profile) : null}::jsonb)`.execute(trx);
    await sql.raw(`ALTER TABLE scores ATTACH PARTITION ${scoreSetTable(scoreSetId)} FOR VALUES IN (${Number(scoreSetId)})`).execute(trx);
    await switchLive(trx, modelId, scoreSetId, now);
  };

  const leftovers: string[] = [];
  await db.transaction().execute(async (trx) => {
    await input.attempt?.fence(trx);
    const now = context.clock.now();
    for (const entry of plan.versions) {
      const outcome = outcomes.get(targetId(entry.target));
      const failure = entry.scoreSetId === null ? undefined : input.failedScoreSets?.get(entry.scoreSetId);
      if (entry.kept) {
        // a champion kept from an earlier run: its new score set (scored by this run) replaces its old one
        const rescored = report.rescored?.find((item) => item.target === targetId(entry.target));
        if (failure !== undefined || entry.scoreSetId === null) {
          if (outcome)
            outcome.reason = `${outcome.reason}; champion v${entry.kept.version} keeps its previous scores: scoring failed (${failure})`;
          continue;
        }
        const stillChampion = await trx
          .selectFrom('model_versions')
          .select('id')
          .where('id', '=', entry.kept.versionId)
          .where('status', '=', 'champion')
          .executeTakeFirst();
        if (!stillChampion) {
          leftovers.push(scoreSetTable(entry.scoreSetId));
          continue;
        }
        await attachScoreSet(trx, entry.kept.modelId, entry.kept.versionId, entry.scoreSetId, now);
        if (rescored) rescored.scored = input.ranked.get(entry.scoreSetId) ?? 0;
        continue;
      }
      const modelId = await ensureModel(trx, { kind: entry.target.kind, key: entry.target.key, productId: entry.target.productId });
      let status = entry.status;
      let reason = entry.version.decisionReason;
      if (failure !== undefined) {
        status = 'candidate';
        reason = `${reason}; not promoted: scoring failed (${failure})`;
      }
      const version = await insertVersion(trx, {
        ...entry.version,
        modelId,
        status: status === 'champion' ? 'candidate' : status,
        trainedAt: new Date(entry.version.trainedAt),
        consentSnapshotAt: new Date(entry.version.consentSnapshotAt),
        trainingCutoff: new Date(entry.version.trainingCutoff),
        decisionReason: reason,
        outputIndex: entry.outputIndex,
      });
      if (outcome) {
        outcome.version = version.version;
        outcome.status = status;
        outcome.reason = reason;
      }
      if (status !== 'champion') continue;
      await promoteVersion(trx, modelId, version.id, now);
      if (entry.scoreSetId === null) continue;
      await attachScoreSet(trx, modelId, version.id, entry.scoreSetId, now);
      if (outcome) outcome.scored = input.ranked.get(entry.scoreSetId) ?? 0;
    }
    await deleteUnusedNetworks(trx, plan);
    leftovers.push(...(await leftoverTables(trx, plan, input.failedScoreSets)));
    report.stages = [
      ...report.stages,
      ...(input.stages ?? []),
      ...funnelStages,
      { stage: 'publish', seconds: (performance.now() - began) / 1000, rows: plan.versions.length },
    ];
    report.peakRssMb = Math.max(report.peakRssMb, Math.round(process.memoryUsage().rss / 2 ** 20));
    await finishRun(trx, plan.runId, { status: 'succeeded', finishedAt: context.clock.now(), summary: { ...report } });
    await input.attempt?.complete(trx);
  });
  await cleanUpAfterPublish(context, leftovers);
  return report;
}

/** Networks of dead attempts: never referenced by a version. */
async function deleteUnusedNetworks(trx: Kysely<Database>, plan: TrainingPlan): Promise<void> {
  const kept = plan.versions
    .flatMap((entry) => [entry.version.networkId, entry.version.evaluationNetworkId])
    .filter((id): id is number => id !== null);
  let networks = trx.deleteFrom('model_networks').where('run_id', '=', plan.runId);
  if (kept.length > 0) networks = networks.where('id', 'not in', kept);
  await networks.execute();
}

/** Score parts of dead attempts, and the ranked tables of sets whose scoring failed: none is attached. */
async function leftoverTables(
  trx: Kysely<Database>,
  plan: TrainingPlan,
  failed: ReadonlyMap<number, string> | undefined,
): Promise<string[]> {
  const names: string[] = [];
  for (const entry of plan.versions) {
    if (entry.scoreSetId === null) continue;
    const { rows } = await sql<{ name: string }>`
      SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema() AND tablename ~ ${`^score_part_${entry.scoreSetId}_`}`.execute(
      trx,
    );
    names.push(...rows.map((row) => row.name));
    if (failed?.has(entry.scoreSetId)) names.push(scoreSetTable(entry.scoreSetId));
  }
  return names;
}

/**
 * After the publish committed: its leftover tables and every retired set's partition are
 * dropped, each in a short transaction that gives up after the lock timeout (an erasure may be
 * deleting from a leftover, a reader may hold `scores`). What is left, the next publish
 * sweeps (retired partitions) or the next run drops (unattached tables); the publish itself
 * has succeeded either way.
 */
async function cleanUpAfterPublish(context: AppContext, leftovers: readonly string[]): Promise<void> {
  const { db } = context.database;
  try {
    const waiting: string[] = [];
    for (const table of leftovers) {
      try {
        await db.transaction().execute(async (trx) => {
          await sql.raw(`SET LOCAL lock_timeout = '${CLEANUP_LOCK_TIMEOUT}'`).execute(trx);
          await sql.raw(`DROP TABLE IF EXISTS ${table}`).execute(trx);
        });
      } catch (error) {
        if (!isLockTimeout(error)) throw error;
        waiting.push(table);
      }
    }
    const retired = await dropRetiredScoreSets(db);
    if (waiting.length > 0 || retired.left.length > 0)
      context.logger.info(
        { tablesLeft: waiting.length, retiredSetsLeft: retired.left },
        'tables in use by readers are left for the next publish to drop',
      );
  } catch (error) {
    context.logger.warn({ err: describeError(error) }, 'score tables not dropped after publish');
  }
}

async function consentFunnelNow(context: AppContext): Promise<{ at: string; channels: ChannelFunnel[] }> {
  const { db } = context.database;
  const now = context.clock.now();
  const codes = await db.selectFrom('channels').select('code').orderBy('code').execute();
  const channels: ChannelFunnel[] = [];
  for (const { code } of codes) channels.push(await channelFunnel(db, code, now, context.config.consentPolicy));
  return { at: now.toISOString(), channels };
}
