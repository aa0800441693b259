import { sql } from 'kysely';
import type PgBoss from 'pg-boss';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TrainingPlan } from '../../pipelines/train-part.ts';
import type { AppContext } from '../../src/context.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { type JobQueue, openJobQueue, QUEUES } from '../../src/jobs/job-queue.ts';
import { enqueueRun, pipelineHandlers } from '../../src/jobs/pipeline-jobs.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { allValid, DAY_MS, pipelineContext, seedBase, smallOptions } from '../pipelines/pipeline.fixtures.ts';

/*
 * A product whose scoring fails for good does not block the others: the run's parts are driven
 * through the real handlers one by one (as workers would take them from the queue), one
 * product's scored rows are lost before it is ranked, its last attempt fails, and the run still
 * publishes every other product; that product keeps no new champion and the run says why.
 */

const NOW = new Date('2026-11-01T06:00:00Z');
const CONTACTS = 300;
let database: DatabaseHandle;
let context: AppContext;
let queue: JobQueue;

beforeAll(async () => {
  database = await createTestDatabase();
  await seedBase(database, { seed: 515, from: new Date(NOW.getTime() - 400 * DAY_MS), to: NOW, consents: allValid(CONTACTS) });
  // a clock one millisecond later at each reading, so the order of recorded instants shows
  let readings = 0;
  context = pipelineContext(database, { now: () => new Date(NOW.getTime() + readings++) });
  queue = await openJobQueue(context);
}, 120_000);
afterAll(async () => {
  await queue?.stop({ timeoutMs: 1000 });
  await database?.close();
});

/** The next job of a queue, taken as a worker would (with its retry metadata). */
async function take<T extends object>(name: string): Promise<PgBoss.JobWithMetadata<T>> {
  const [job] = await queue.boss.fetch<T>(name, { includeMetadata: true });
  if (!job) throw new Error(`no job in ${name}`);
  return job;
}

it('publishes the other products when one product fails for good, and reports it', { timeout: 120_000 }, async () => {
  const { kind: _kind, trigger: _trigger, asOf: _asOf, products: _products, ...defaults } = smallOptions();
  const runId = await enqueueRun(context, queue, { trigger: 'test:failing-product' }, defaults);
  const handlers = pipelineHandlers(context, queue);

  await handlers.train(await take(QUEUES.train));
  const train = await database.db
    .selectFrom('pipeline_run_parts')
    .select('output')
    .where('run_id', '=', runId)
    .where('part', '=', 'train')
    .executeTakeFirstOrThrow();
  const plan = train.output as unknown as TrainingPlan;
  const champions = plan.versions.filter((entry) => entry.scoreSetId !== null);
  expect(champions.length).toBeGreaterThan(1);

  const shards = context.config.jobs.scoreShards;
  for (let shard = 0; shard < shards; shard++) await handlers.score(await take(QUEUES.score));

  // one product's scored rows are lost (a shard's table dropped) before it is ranked
  const victim = champions[0] as (typeof champions)[number];
  const { rows: tables } = await sql<{ name: string }>`
    SELECT tablename AS name FROM pg_tables WHERE tablename ~ ${`^score_part_${victim.scoreSetId}_`}`.execute(database.db);
  expect(tables.length).toBe(shards);
  await sql.raw(`DROP TABLE ${tables[0]?.name}`).execute(database.db);

  for (let index = 0; index < champions.length; index++) {
    const job = await take<{ runId: number; scoreSetId: number }>(QUEUES.rank);
    if (job.data.scoreSetId === victim.scoreSetId) {
      // its last attempt: the retries are spent
      const last = { ...job, retryCount: job.retryLimit };
      await expect(handlers.rank(last)).rejects.toThrow(/1 of its 2 scored parts are missing/);
    } else {
      await handlers.rank(job);
    }
  }
  await handlers.publish(await take(QUEUES.publish));

  const run = await database.db
    .selectFrom('pipeline_runs')
    .select(['status', 'summary', 'finished_at'])
    .where('id', '=', runId)
    .executeTakeFirstOrThrow();
  expect(run.status).toBe('succeeded');
  // the publish part is recorded as done when its transaction's work is, not when it begins
  const publish = await database.db
    .selectFrom('pipeline_run_parts')
    .select(['status', 'finished_at'])
    .where('run_id', '=', runId)
    .where('part', '=', 'publish')
    .executeTakeFirstOrThrow();
  expect(publish.status).toBe('succeeded');
  expect(new Date(publish.finished_at as Date).getTime()).toBeGreaterThanOrEqual(new Date(run.finished_at as Date).getTime());
  const outcomes = (run.summary as { targets: Array<{ target: string; status: string; reason: string }> }).targets;
  const victimId = `${victim.target.kind}:${victim.target.key}`;
  const victimOutcome = outcomes.find((outcome) => outcome.target === victimId);
  expect(victimOutcome?.status).toBe('candidate');
  expect(victimOutcome?.reason).toMatch(/not promoted: scoring failed \(score set \d+: 1 of its 2 scored parts are missing\)$/);

  // every other champion is live with everyone scored; the failed one has no set at all
  const sets = await database.db.selectFrom('score_sets').select(['id', 'status', 'row_count']).where('run_id', '=', runId).execute();
  expect(sets.map((set) => set.id).sort()).toEqual(
    champions
      .slice(1)
      .map((entry) => entry.scoreSetId)
      .sort(),
  );
  expect(sets.every((set) => set.status === 'live' && set.row_count === CONTACTS)).toBe(true);
  const versions = await database.db.selectFrom('model_versions').select(['status']).where('run_id', '=', runId).execute();
  expect(versions.filter((version) => version.status === 'champion')).toHaveLength(champions.length - 1);
  const parts = await database.db
    .selectFrom('pipeline_run_parts')
    .select(['part', 'status'])
    .where('run_id', '=', runId)
    .where('status', '=', 'failed')
    .execute();
  expect(parts).toEqual([{ part: `rank:${victim.scoreSetId}`, status: 'failed' }]);
  const { rows: leftovers } = await sql<{
    name: string;
  }>`SELECT tablename AS name FROM pg_tables WHERE tablename ~ '^score_part_' OR tablename = ${`scores_${victim.scoreSetId}`}`.execute(
    database.db,
  );
  expect(leftovers).toEqual([]);
});
