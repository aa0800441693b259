import { hostname } from 'node:os';
import type { Kysely } from 'kysely';
import type PgBoss from 'pg-boss';
import { loadTensorflow, type Tensorflow } from '../../models/tensorflow.ts';
import { logProgress } from '../../pipelines/progress.ts';
import { publishRun } from '../../pipelines/publish-part.ts';
import { defaultOptionsFor, type PipelineOptions, runParams } from '../../pipelines/run-pipeline.ts';
import { type ShardOutput, scoreShard } from '../../pipelines/score-part.ts';
import { buildScoreSetTable } from '../../pipelines/scoring.ts';
import { type TrainingPlan, trainRun } from '../../pipelines/train-part.ts';
import type { AppContext } from '../context.ts';
import type { Database } from '../db/database.ts';
import { describeError } from '../logger.ts';
import { runStatus } from '../registry/pipeline-runs.repository.ts';
import { createRun, finishRun, startHeartbeat } from '../registry/registry.repository.ts';
import { type JobQueue, QUEUES } from './job-queue.ts';
import { claimPart, completePart, failPart, lockAttempt, lockRun, partsOf } from './run-parts.repository.ts';

export interface RunRequest {
  trigger: string;
  products?: string[] | null;
  asOf?: Date | null;
  horizonDays?: number;
}

/** Pipeline options other than the run's own (training settings...), over the defaults. */
export type RunDefaults = Partial<Omit<PipelineOptions, 'kind' | 'trigger' | 'asOf' | 'products'>>;

interface RunJob {
  runId: number;
}
interface ScoreJob extends RunJob {
  shard: number;
  shards: number;
}
interface RankJob extends RunJob {
  scoreSetId: number;
}

/** Who a worker is in the parts table and in logs: host and process. */
export const WORKER_ID = `${hostname()}:${process.pid}`;

/**
 * Queues a pipeline run for the workers: the run is recorded as 'queued' (refused with
 * PipelineBusyError while another run is queued or running, on any machine), then its
 * training job is sent. Returns the run id.
 */
export async function enqueueRun(context: AppContext, queue: JobQueue, request: RunRequest, defaults: RunDefaults = {}): Promise<number> {
  const { db } = context.database;
  const now = context.clock.now();
  const base = { ...defaultOptionsFor(context), ...defaults };
  const options: PipelineOptions = {
    ...base,
    kind: 'pipeline',
    trigger: request.trigger,
    asOf: request.asOf ?? null,
    horizonDays: request.horizonDays ?? base.horizonDays,
    products: request.products ?? null,
  };
  const shards = context.config.jobs.scoreShards;
  const runId = await createRun(
    db,
    {
      kind: 'pipeline',
      trigger: request.trigger,
      asOf: options.asOf ?? now,
      horizonDays: options.horizonDays,
      params: { ...runParams(options), options: { ...options, asOf: options.asOf?.toISOString() ?? null } },
      startedAt: now,
      driver: 'queue',
      shards,
    },
    context.config.jobs.staleRunSeconds,
  );
  try {
    await queue.send(QUEUES.train, { runId } satisfies RunJob);
  } catch (error) {
    await finishRun(db, runId, { status: 'failed', finishedAt: context.clock.now(), summary: {}, error: 'could not be queued' });
    throw error;
  }
  context.logger.info({ runId, trigger: request.trigger, shards }, 'pipeline run queued');
  return runId;
}

type Job<T> = PgBoss.JobWithMetadata<T>;

/** The handlers of the pipeline's queues, for one worker process. */
export function pipelineHandlers(context: AppContext, queue: JobQueue) {
  const { db } = context.database;
  let tensorflow: Promise<Tensorflow> | null = null;
  const tf = () => (tensorflow ??= loadTensorflow({ prefer: context.config.tfBackend, logger: context.logger }));

  /**
   * The common frame of a part: skip a run that is over, claim the attempt, keep the run's
   * heartbeat, log start and end (ids and counts only), and on the last failed attempt
   * record the failure: for a rank part the run goes on without that target's scores,
   * for any other part the run fails.
   */
  async function asPart<T extends RunJob>(
    job: Job<T>,
    part: string,
    work: (attempt: number, log: AppContext['logger']) => Promise<void>,
  ): Promise<void> {
    const { runId } = job.data;
    const log = context.logger.child({ job: job.name, jobId: job.id, runId, part, worker: WORKER_ID });
    const status = await runStatus(db, runId);
    if (status !== 'queued' && status !== 'running') {
      log.info({ status: status ?? 'missing' }, 'job skipped: its run is over');
      return;
    }
    const attempt = await claimPart(db, runId, part, WORKER_ID, context.clock.now());
    if (attempt === null) {
      log.info('job skipped: part already done');
      return;
    }
    const began = performance.now();
    log.info({ attempt, retry: job.retryCount }, 'job started');
    const heartbeat = startHeartbeat(db, runId, () => context.clock.now());
    try {
      await work(attempt, log.child({ attempt }));
      log.info({ attempt, seconds: Number(((performance.now() - began) / 1000).toFixed(2)) }, 'job done');
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      await failPart(db, runId, part, attempt, context.clock.now(), message).catch(() => undefined);
      const last = job.retryCount >= job.retryLimit;
      log.error({ attempt, last, err: describeError(error) }, 'job failed; its error is in the run part');
      if (last) {
        if (part.startsWith('rank:')) await afterRank(runId);
        else
          await finishRun(db, runId, {
            status: 'failed',
            finishedAt: context.clock.now(),
            summary: {},
            error: `${part} failed: ${message}`,
          });
      }
      throw error;
    } finally {
      heartbeat.stop();
    }
  }

  // inside a transaction, read through it: PGlite serves one transaction at a time
  async function trainingPlan(runId: number, executor: Kysely<Database> = db): Promise<TrainingPlan> {
    const [train] = await partsOf(executor, runId, 'train');
    if (train?.status !== 'succeeded' || !train.output) throw new Error(`run ${runId} has no training plan`);
    return train.output as unknown as TrainingPlan;
  }

  /** Once every rank part is over (done or failed for good), the run publishes. */
  async function afterRank(runId: number, within?: Kysely<Database>): Promise<void> {
    const decide = async (trx: Kysely<Database>) => {
      await lockRun(trx, runId);
      const plan = await trainingPlan(runId, trx);
      const expected = plan.versions.filter((entry) => entry.scoreSetId !== null).length;
      const parts = await partsOf(trx, runId, 'rank:');
      const over = parts.filter((part) => part.status === 'succeeded' || part.status === 'failed').length;
      const publishing = await partsOf(trx, runId, 'publish');
      if (over === expected && publishing.length === 0) await queue.send(QUEUES.publish, { runId } satisfies RunJob, trx);
    };
    await (within ? decide(within) : db.transaction().execute(decide));
  }

  return {
    async train(job: Job<RunJob>): Promise<void> {
      await asPart(job, 'train', async (attempt, log) => {
        const { runId } = job.data;
        const run = await db.selectFrom('pipeline_runs').select(['params', 'shards']).where('id', '=', runId).executeTakeFirstOrThrow();
        const startedAt = context.clock.now();
        await db.updateTable('pipeline_runs').set({ status: 'running', started_at: startedAt }).where('id', '=', runId).execute();
        // what an earlier attempt left: its snapshot and its networks (never referenced by a version)
        await db.deleteFrom('profiling_snapshots').where('run_id', '=', runId).execute();
        await db.deleteFrom('model_networks').where('run_id', '=', runId).execute();
        const saved = (run.params as { options: PipelineOptions & { asOf: string | null } }).options;
        const options: PipelineOptions = { ...defaultOptionsFor(context), ...saved, asOf: saved.asOf ? new Date(saved.asOf) : null };
        const plan = await trainRun(context, await tf(), runId, options, logProgress(log), startedAt);
        const shards = run.shards ?? 1;
        const scoring = plan.versions.some((entry) => entry.scoreSetId !== null);
        await db.transaction().execute(async (trx) => {
          await completePart(trx, runId, 'train', attempt, context.clock.now(), {
            rows: plan.report.population,
            output: plan as unknown as Record<string, unknown>,
          });
          await trx
            .updateTable('pipeline_runs')
            .set({ as_of: new Date(plan.asOf) })
            .where('id', '=', runId)
            .execute();
          if (!scoring) await queue.send(QUEUES.publish, { runId } satisfies RunJob, trx);
          else
            for (let shard = 0; shard < shards; shard++) await queue.send(QUEUES.score, { runId, shard, shards } satisfies ScoreJob, trx);
        });
      });
    },

    async score(job: Job<ScoreJob>): Promise<void> {
      const { runId, shard, shards } = job.data;
      await asPart(job, `score:${shard}`, async (attempt, log) => {
        const plan = await trainingPlan(runId);
        const output = await scoreShard(context, await tf(), plan, { index: shard, count: shards }, `a${attempt}`, logProgress(log));
        await db.transaction().execute(async (trx) => {
          await completePart(trx, runId, `score:${shard}`, attempt, context.clock.now(), {
            rows: output.rows,
            output: output as unknown as Record<string, unknown>,
          });
          await lockRun(trx, runId);
          const done = (await partsOf(trx, runId, 'score:')).filter((part) => part.status === 'succeeded').length;
          if (done !== shards) return;
          for (const entry of plan.versions) {
            if (entry.scoreSetId !== null) await queue.send(QUEUES.rank, { runId, scoreSetId: entry.scoreSetId } satisfies RankJob, trx);
          }
        });
      });
    },

    async rank(job: Job<RankJob>): Promise<void> {
      const { runId, scoreSetId } = job.data;
      await asPart(job, `rank:${scoreSetId}`, async (attempt) => {
        const shards = await shardOutputs(runId);
        const tables = shards.map((shard) => shard.tables[String(scoreSetId)]).filter((table): table is string => table !== undefined);
        const rows = await buildScoreSetTable(context.database, scoreSetId, tables);
        await db.transaction().execute(async (trx) => {
          await completePart(trx, runId, `rank:${scoreSetId}`, attempt, context.clock.now(), { rows, output: { scoreSetId, rows } });
          await afterRank(runId, trx);
        });
      });
    },

    async publish(job: Job<RunJob>): Promise<void> {
      const { runId } = job.data;
      await asPart(job, 'publish', async (attempt, log) => {
        const plan = await trainingPlan(runId);
        const shards = await shardOutputs(runId);
        const ranks = await partsOf(db, runId, 'rank:');
        const ranked = new Map<number, number>();
        const failedScoreSets = new Map<number, string>();
        for (const part of ranks) {
          const id = Number(part.part.slice('rank:'.length));
          if (part.status === 'succeeded') ranked.set(id, part.rows ?? 0);
          else failedScoreSets.set(id, part.error ?? 'failed');
        }
        const report = await publishRun(context, {
          plan,
          shards,
          ranked,
          failedScoreSets,
          stages: shards.flatMap((shard) => shard.stages.map((stage) => ({ ...stage, stage: `${stage.stage} [shard ${shard.shard}]` }))),
          attempt: {
            fence: (trx) => lockAttempt(trx, runId, 'publish', attempt),
            complete: (trx) =>
              completePart(trx, runId, 'publish', attempt, context.clock.now(), { rows: plan.versions.length, output: {} }),
          },
        });
        const champions = report.targets.filter((target) => target.status === 'champion').length;
        log.info(
          { targets: report.targets.length, champions, failedTargets: failedScoreSets.size, population: report.population },
          'pipeline run published',
        );
      });
    },
  };

  async function shardOutputs(runId: number): Promise<ShardOutput[]> {
    return (await partsOf(db, runId, 'score:'))
      .filter((part) => part.status === 'succeeded' && part.output)
      .map((part) => part.output as unknown as ShardOutput)
      .sort((a, b) => a.shard - b.shard);
  }
}
