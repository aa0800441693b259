import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reserveScoreSetId } from '../../pipelines/kept-champions.ts';
import { publishRun } from '../../pipelines/publish-part.ts';
import type { TrainingPlan } from '../../pipelines/run-types.ts';
import { buildScoreSetTable, scoreSetTable, switchLive, writeScoreSet, writeScoreTable } from '../../pipelines/scoring.ts';
import type { AppContext } from '../../src/context.ts';
import type { Database } from '../../src/db/database.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { createRun, ensureModel, finishRun, insertVersion, promoteVersion } from '../../src/registry/registry.repository.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { allValid, type Base, DAY_MS, pipelineContext, seedBase } from './pipeline.fixtures.ts';

/*
 * Publishing a run never makes a target list, a person page or an erasure wait for it, and
 * never waits for them: the publish takes no lock on `scores` stronger than the one ATTACH
 * PARTITION needs (SHARE UPDATE EXCLUSIVE, which reads and row writes pass), and the retired
 * partitions are detached and dropped after it commits, each in a short transaction that
 * gives up after a lock timeout and is retried by the next publish (or a sweep).
 * Score set tables are written in rank order, with the partition's CHECK from the start.
 */

const NOW = new Date('2026-11-20T06:00:00Z');
const CONTACTS = 60;
/** generous for a loaded machine: an unblocked publish of this size takes well under a second */
const PUBLISH_BOUND_MS = 30_000;
const READ_LOCK_TIMEOUT = '5s';

let database: DatabaseHandle;
let context: AppContext;
let base: Base;
let modelId: number;
let versionId: number;

function scoresFor(people: readonly number[], seed: number) {
  const count = people.length;
  return {
    contactIds: Float64Array.from(people),
    scores: Float32Array.from(people, (id) => ((id * 7919 + seed * 104_729) % 1000) / 1000),
    reasonCodes: new Uint8Array(count * 3).fill(255),
    contributions: new Float32Array(count * 3),
  };
}

async function liveSet(): Promise<number> {
  const row = await database.db
    .selectFrom('score_sets')
    .select('id')
    .where('model_id', '=', modelId)
    .where('status', '=', 'live')
    .executeTakeFirstOrThrow();
  return Number(row.id);
}

async function partitions(): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'scores'::regclass ORDER BY 1`.execute(database.db);
  return rows.map((row) => row.name);
}

async function tableExists(name: string): Promise<boolean> {
  const { rows } = await sql<{ found: boolean }>`SELECT to_regclass(${name}) IS NOT NULL AS found`.execute(database.db);
  return rows[0]?.found === true;
}

/** A run that rescored the model's champion: its ranked table is built, ready for publishRun. */
async function rescoringRun(seed: number): Promise<{ plan: TrainingPlan; scoreSetId: number; rows: number }> {
  const runId = await createRun(database.db, { kind: 'pipeline', trigger: 'test', asOf: NOW, horizonDays: 30, params: {}, startedAt: NOW });
  const scoreSetId = await reserveScoreSetId(database.db);
  const part = `score_part_${scoreSetId}_0_a1`;
  await writeScoreTable(
    database,
    part,
    scoreSetId,
    scoresFor(
      base.people.map((person) => person.id),
      seed,
    ),
  );
  const rows = await buildScoreSetTable(database, scoreSetId, [part]);
  const at = NOW.toISOString();
  const plan: TrainingPlan = {
    runId,
    kind: 'pipeline',
    asOf: at,
    horizonDays: 30,
    seed,
    layout: null,
    scoringFit: null,
    trainingProfile: null,
    versions: [
      {
        target: { kind: 'product', key: 'PL-REFILL', productId: base.productIds['PL-REFILL'], category: null },
        outputIndex: 0,
        status: 'champion',
        algorithm: 'logistic',
        scoreSetId,
        scorer: null,
        kept: { modelId, versionId, version: 1 },
        version: {
          algorithm: 'logistic',
          runId,
          trainedAt: at,
          consentSnapshotAt: at,
          trainingCutoff: at,
          populationSize: CONTACTS,
          horizonDays: 30,
          featureList: [],
          codeVersion: 'test',
          trainingDataHash: 'test',
          metrics: {},
          baselineMetrics: {},
          decisionReason: 'test',
          networkId: null,
          evaluationNetworkId: null,
        },
      },
    ],
    report: {
      runId,
      kind: 'pipeline',
      asOf: at,
      horizonDays: 30,
      backend: 'cpu',
      population: CONTACTS,
      cutoffs: { evaluationTraining: [], evaluation: at, productionTraining: [], scoring: at },
      targets: [],
      stages: [],
      peakRssMb: 0,
    },
  };
  return { plan, scoreSetId, rows };
}

/** Locks the current transaction holds on `scores` itself. */
async function locksOnScores(trx: Kysely<Database>) {
  const { rows } = await sql<{ mode: string }>`
    SELECT mode FROM pg_locks WHERE relation = 'scores'::regclass AND pid = pg_backend_pid() ORDER BY 1`.execute(trx);
  return rows.map((row) => row.mode);
}

beforeAll(async () => {
  database = await createTestDatabase();
  base = await seedBase(database, { seed: 5, from: new Date(NOW.getTime() - 200 * DAY_MS), to: NOW, consents: allValid(CONTACTS) });
  context = pipelineContext(database, NOW);
  const { db } = database;
  const runId = await createRun(db, { kind: 'pipeline', trigger: 'test', asOf: NOW, horizonDays: 30, params: {}, startedAt: NOW });
  modelId = await ensureModel(db, { kind: 'product', key: 'PL-REFILL', productId: base.productIds['PL-REFILL'] });
  const version = await insertVersion(db, {
    modelId,
    algorithm: 'logistic',
    status: 'candidate',
    runId,
    trainedAt: NOW,
    consentSnapshotAt: NOW,
    populationSize: CONTACTS,
    trainingCutoff: NOW,
    horizonDays: 30,
    featureList: [],
    codeVersion: 'test',
    trainingDataHash: 'test',
    metrics: {},
    baselineMetrics: {},
    decisionReason: 'test',
    networkId: null,
    evaluationNetworkId: null,
    outputIndex: 0,
  });
  versionId = version.id;
  await promoteVersion(db, modelId, versionId, NOW);
  const set = await db
    .insertInto('score_sets')
    .values({ model_id: modelId, model_version_id: versionId, run_id: runId, status: 'building', scored_at: NOW })
    .returning('id')
    .executeTakeFirstOrThrow();
  await writeScoreSet(
    database,
    Number(set.id),
    scoresFor(
      base.people.map((person) => person.id),
      1,
    ),
  );
  await switchLive(db, modelId, Number(set.id), NOW);
  await finishRun(db, runId, { status: 'succeeded', finishedAt: NOW, summary: {} });
}, 120_000);

afterAll(async () => {
  await database?.close();
});

describe('a score set table', () => {
  it('is written in rank order and carries its partition CHECK, on one part and on several', async () => {
    const people = base.people.map((person) => person.id);
    const one = await reserveScoreSetId(database.db);
    await writeScoreTable(database, `score_part_${one}_0_a1`, one, scoresFor(people, 3));
    await buildScoreSetTable(database, one, [`score_part_${one}_0_a1`]);
    const several = await reserveScoreSetId(database.db);
    const shards = [0, 1, 2].map((shard) => people.filter((id) => id % 3 === shard));
    for (const [shard, ids] of shards.entries())
      await writeScoreTable(database, `score_part_${several}_${shard}_a1`, several, scoresFor(ids, 3));
    await buildScoreSetTable(
      database,
      several,
      shards.map((_, shard) => `score_part_${several}_${shard}_a1`),
    );
    for (const id of [one, several]) {
      const { rows } = await sql<{ rank: number }>`SELECT rank FROM ${sql.table(scoreSetTable(id))} ORDER BY ctid`.execute(database.db);
      expect(rows.map((row) => row.rank)).toEqual(people.map((_, index) => index + 1));
      const { rows: checks } = await sql<{ definition: string }>`
        SELECT pg_get_constraintdef(oid) AS definition FROM pg_constraint
        WHERE conrelid = ${scoreSetTable(id)}::regclass AND contype = 'c' AND pg_get_constraintdef(oid) ~ 'score_set_id'`.execute(
        database.db,
      );
      expect(checks.map((check) => check.definition)).toEqual([`CHECK ((score_set_id = ${id}))`]);
    }
  });

  it.runIf(process.env.DATABASE_URL)('is attached without a validation scan (its CHECK implies the partition constraint)', async () => {
    const people = base.people.map((person) => person.id);
    const id = await reserveScoreSetId(database.db);
    await writeScoreTable(database, `score_part_${id}_0_a1`, id, scoresFor(people, 4));
    await buildScoreSetTable(database, id, [`score_part_${id}_0_a1`]);
    const client = await database.pool.connect();
    const messages: string[] = [];
    client.on('notice', (notice) => messages.push(notice.message ?? ''));
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL client_min_messages = debug1');
      await client.query(`ALTER TABLE scores ATTACH PARTITION ${scoreSetTable(id)} FOR VALUES IN (${id})`);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    expect(messages).toContain(`partition constraint for table "${scoreSetTable(id)}" is implied by existing constraints`);
  });
});

describe('publishing a run', () => {
  it('takes no lock on scores stronger than ATTACH PARTITION needs, and drops the retired set only after it commits', async () => {
    const previous = await liveSet();
    const { plan, scoreSetId, rows } = await rescoringRun(11);
    const seen: { locks: string[]; previousAttached: boolean; previousStatus: string } = {
      locks: [],
      previousAttached: false,
      previousStatus: '',
    };
    await publishRun(context, {
      plan,
      shards: [],
      ranked: new Map([[scoreSetId, rows]]),
      attempt: {
        fence: async () => undefined,
        complete: async (trx) => {
          seen.locks = await locksOnScores(trx);
          const { rows: attached } = await sql<{ found: boolean }>`
            SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = 'scores'::regclass
              AND inhrelid = to_regclass(${scoreSetTable(previous)})) AS found`.execute(trx);
          seen.previousAttached = attached[0]?.found === true;
          const status = await trx.selectFrom('score_sets').select('status').where('id', '=', previous).executeTakeFirstOrThrow();
          seen.previousStatus = status.status;
        },
      },
    });
    expect(seen.locks).not.toContain('AccessExclusiveLock');
    expect(seen.locks).not.toContain('ExclusiveLock');
    expect(seen.locks).toContain('ShareUpdateExclusiveLock');
    // inside the publishing transaction: already retired (readers pick the live set), still attached
    expect(seen.previousStatus).toBe('retired');
    expect(seen.previousAttached).toBe(true);
    // after it: detached and dropped
    expect(await liveSet()).toBe(scoreSetId);
    expect(await tableExists(scoreSetTable(previous))).toBe(false);
    expect(await partitions()).toEqual([scoreSetTable(scoreSetId)]);
  });

  it.runIf(process.env.DATABASE_URL)(
    'does not wait for a target-list read held open across it; the retired set is dropped by the next publish',
    async () => {
      const previous = await liveSet();
      const { plan, scoreSetId, rows } = await rescoringRun(12);
      const reader = await database.pool.connect();
      let outcome: 'published' | 'still waiting' = 'still waiting';
      let publish: Promise<'published'> | undefined;
      try {
        await reader.query('BEGIN');
        const before = await reader.query(`SELECT contact_id FROM scores WHERE score_set_id = $1 AND rank > 0 ORDER BY rank LIMIT 10`, [
          previous,
        ]);
        expect(before.rows).toHaveLength(10);
        let timer: NodeJS.Timeout | undefined;
        const bound = new Promise<'still waiting'>((resolve) => {
          timer = setTimeout(() => resolve('still waiting'), PUBLISH_BOUND_MS);
        });
        publish = publishRun(context, { plan, shards: [], ranked: new Map([[scoreSetId, rows]]) }).then(() => 'published' as const);
        outcome = await Promise.race([publish, bound]);
        clearTimeout(timer);
        // the reader's list goes on from where it was, on the set it started with
        const after = await reader.query(`SELECT count(*)::int AS n FROM scores WHERE score_set_id = $1 AND rank > 10`, [previous]);
        expect(after.rows[0].n).toBe(CONTACTS - 10);
      } finally {
        await reader.query('COMMIT').catch(() => undefined);
        reader.release();
        await publish;
      }
      expect(outcome).toBe('published');
      expect(await liveSet()).toBe(scoreSetId);
      // the reader kept the old partition: its drop gave up on the lock timeout, and it is retired, not live
      const status = await database.db.selectFrom('score_sets').select('status').where('id', '=', previous).executeTakeFirstOrThrow();
      expect(status.status).toBe('retired');
      expect(await tableExists(scoreSetTable(previous))).toBe(true);

      const next = await rescoringRun(13);
      await publishRun(context, { plan: next.plan, shards: [], ranked: new Map([[next.scoreSetId, next.rows]]) });
      expect(await tableExists(scoreSetTable(previous))).toBe(false);
      expect(await tableExists(scoreSetTable(scoreSetId))).toBe(false);
      expect(await partitions()).toEqual([scoreSetTable(next.scoreSetId)]);
    },
    PUBLISH_BOUND_MS * 3,
  );

  it.runIf(process.env.DATABASE_URL)('lets a target list, a person page and an erasure started during it run without waiting', async () => {
    const previous = await liveSet();
    const { plan, scoreSetId, rows } = await rescoringRun(14);
    const person = base.people[0]!.id;
    const results: Record<string, string> = {};
    await publishRun(context, {
      plan,
      shards: [],
      ranked: new Map([[scoreSetId, rows]]),
      attempt: {
        fence: async () => undefined,
        // inside the publishing transaction, after every ATTACH, switch and drop it makes
        complete: async () => {
          const reader = await database.pool.connect();
          const attempt = async (name: string, statement: string, values: unknown[]) => {
            try {
              const result = await reader.query(statement, values);
              results[name] = `${result.rowCount} rows`;
            } catch (error) {
              results[name] = error instanceof Error ? error.message : String(error);
            }
          };
          try {
            await reader.query(`SET lock_timeout = '${READ_LOCK_TIMEOUT}'`);
            await attempt('target list', `SELECT contact_id FROM scores WHERE score_set_id = $1 AND rank > 0 ORDER BY rank LIMIT 10`, [
              previous,
            ]);
            await attempt(
              'person page',
              `SELECT s.score, s.rank FROM scores s JOIN score_sets ss ON ss.id = s.score_set_id AND ss.status = 'live' WHERE s.contact_id = $1`,
              [person],
            );
            await reader.query('BEGIN');
            await attempt('erasure', `DELETE FROM scores WHERE contact_id = $1`, [person]);
            await reader.query('ROLLBACK');
            await reader.query('RESET lock_timeout');
          } finally {
            reader.release();
          }
        },
      },
    });
    expect(results).toEqual({ 'target list': '10 rows', 'person page': '1 rows', erasure: '1 rows' });
    expect(await liveSet()).toBe(scoreSetId);
    expect(await partitions()).toEqual([scoreSetTable(scoreSetId)]);
  });
});
