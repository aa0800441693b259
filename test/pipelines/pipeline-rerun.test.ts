import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXPLANATION_GROUPS } from '../../pipelines/feature-spec.ts';
import { type PipelineReport, runPipeline } from '../../pipelines/run-pipeline.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { allValid, DAY_MS, movableClock, pipelineContext, seedBase, smallOptions } from './pipeline.fixtures.ts';

/*
 * Running the pipeline again is safe: each run adds versions, every model keeps exactly one
 * champion and exactly one live score set, the score partitions of retired sets are dropped,
 * and every promoted version carries its evaluation (metrics, reliability, gains, importance,
 * both baselines) and is at least as good as both baselines (a baseline may be the champion). A backtest registers versions that never become
 * champions and writes no scores.
 */

process.env.CIBLE_CODE_VERSION = 'pipeline-rerun-test';

const FIRST_RUN = new Date('2026-11-01T06:00:00Z');
const SECOND_RUN = new Date(FIRST_RUN.getTime() + DAY_MS);
const BACKTEST_AS_OF = new Date(FIRST_RUN.getTime() - 60 * DAY_MS);
const CONTACTS = 300;

let database: DatabaseHandle;
const clock = movableClock(FIRST_RUN);
let first: PipelineReport;
let second: PipelineReport;
let backtest: PipelineReport;

interface State {
  versions: Array<{ id: number; model_id: number; version: number; status: string; run_id: number | null; promoted_at: Date | null }>;
  sets: Array<{ id: number; model_id: number; model_version_id: number; run_id: number | null; status: string; row_count: number }>;
  partitions: string[];
  scoreRows: number;
  scoreSetsWithRows: number[];
}

async function state(): Promise<State> {
  const { db } = database;
  const versions = await db
    .selectFrom('model_versions')
    .select(['id', 'model_id', 'version', 'status', 'run_id', 'promoted_at'])
    .orderBy('id')
    .execute();
  const sets = await db
    .selectFrom('score_sets')
    .select(['id', 'model_id', 'model_version_id', 'run_id', 'status', 'row_count'])
    .orderBy('id')
    .execute();
  const { rows: partitions } = await sql<{ name: string }>`
    SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'scores'::regclass ORDER BY 1`.execute(db);
  const { rows: counts } = await sql<{ score_set_id: number; n: number }>`
    SELECT score_set_id, count(*)::int AS n FROM scores GROUP BY score_set_id ORDER BY 1`.execute(db);
  return {
    versions,
    sets,
    partitions: partitions.map((row) => row.name),
    scoreRows: counts.reduce((sum, row) => sum + row.n, 0),
    scoreSetsWithRows: counts.map((row) => row.score_set_id),
  };
}

let afterFirst: State;
let afterSecond: State;
let afterBacktest: State;

beforeAll(async () => {
  database = await createTestDatabase();
  await seedBase(database, { seed: 777, from: new Date(FIRST_RUN.getTime() - 400 * DAY_MS), to: FIRST_RUN, consents: allValid(CONTACTS) });
  const context = pipelineContext(database, clock);
  first = await runPipeline(context, smallOptions({ trigger: 'test:first' }));
  afterFirst = await state();
  clock.set(SECOND_RUN);
  second = await runPipeline(context, smallOptions({ trigger: 'test:second' }));
  afterSecond = await state();
  clock.set(new Date(SECOND_RUN.getTime() + 3_600_000));
  backtest = await runPipeline(context, smallOptions({ kind: 'backtest', trigger: 'test:backtest', asOf: BACKTEST_AS_OF }));
  afterBacktest = await state();
}, 150_000);
afterAll(() => database?.close());

/** Per model: how many versions have each status. */
function championsPerModel(current: State): Map<number, number> {
  const models = new Map<number, number>();
  for (const version of current.versions)
    models.set(version.model_id, (models.get(version.model_id) ?? 0) + (version.status === 'champion' ? 1 : 0));
  return models;
}

function expectConsistent(current: State, label: string, scoredBy: number): void {
  const everPromoted = new Set(current.versions.filter((version) => version.promoted_at !== null).map((version) => version.model_id));
  expect(everPromoted.size, `${label}: some model was promoted`).toBeGreaterThan(0);
  for (const [modelId, champions] of championsPerModel(current)) {
    // exactly one champion for a model that was ever promoted, none for the others
    expect(champions, `${label}: champions of model ${modelId}`).toBe(everPromoted.has(modelId) ? 1 : 0);
    const live = current.sets.filter((set) => set.model_id === modelId && set.status === 'live');
    expect(live.length, `${label}: live score sets of model ${modelId}`).toBe(everPromoted.has(modelId) ? 1 : 0);
    const champion = current.versions.find((version) => version.model_id === modelId && version.status === 'champion');
    if (champion) {
      // the live set is the champion's, scored by the latest pipeline run (which may have kept it)
      expect(live[0]?.model_version_id, `${label}: live set of model ${modelId}`).toBe(champion.id);
      expect(live[0]?.run_id, `${label}: run that scored model ${modelId}`).toBe(scoredBy);
      expect(live[0]?.row_count).toBe(CONTACTS);
    }
  }
  expect(
    current.sets.filter((set) => set.status === 'building'),
    `${label}: no set left building`,
  ).toEqual([]);
  // the only partitions of scores are the live sets; retired sets were dropped with their rows
  const live = current.sets.filter((set) => set.status === 'live');
  expect(current.partitions, `${label}: partitions of scores`).toEqual(live.map((set) => `scores_${set.id}`).sort());
  expect(current.scoreSetsWithRows).toEqual(live.map((set) => set.id));
  expect(current.scoreRows).toBe(live.length * CONTACTS);
}

describe('a second run', () => {
  it('the first run promoted at least one model, with its scores', () => {
    expect(first.targets.filter((target) => target.status === 'champion').map((target) => target.target)).toContain('product:PL-REFILL');
    expectConsistent(afterFirst, 'after the first run', first.runId);
  });

  it('adds new versions after the existing ones, keeps one champion and one live score set per model, and drops the old partitions', async () => {
    const firstVersions = afterFirst.versions.filter((version) => version.run_id === first.runId);
    const secondVersions = afterSecond.versions.filter((version) => version.run_id === second.runId);
    expect(secondVersions.length).toBeGreaterThan(0);
    expect(afterSecond.versions.length).toBe(afterFirst.versions.length + secondVersions.length);
    for (const version of secondVersions) {
      const previous = firstVersions.filter((old) => old.model_id === version.model_id);
      expect(version.version, `model ${version.model_id}`).toBe(previous.length + 1);
    }
    // nothing of the first run was rewritten except the status of replaced champions
    for (const old of afterFirst.versions) {
      const now = afterSecond.versions.find((version) => version.id === old.id);
      expect(now?.version).toBe(old.version);
      if (old.status !== 'champion') expect(now?.status).toBe(old.status);
      else expect(['champion', 'retired']).toContain(now?.status);
    }
    expectConsistent(afterSecond, 'after the second run', second.runId);

    // some model was promoted again: its previous champion and score set retired, the set's partition dropped
    const replaced = afterFirst.sets.filter(
      (set) => set.status === 'live' && afterSecond.sets.find((s) => s.id === set.id)?.status === 'retired',
    );
    expect(replaced.length).toBeGreaterThan(0);
    for (const set of replaced) {
      const { rows } = await sql<{ table: string | null }>`SELECT to_regclass(${`scores_${set.id}`})::text AS table`.execute(database.db);
      expect(rows[0]?.table ?? null, `partition of retired set ${set.id}`).toBeNull();
      expect(afterSecond.versions.find((version) => version.id === set.model_version_id)?.status).toBe('retired');
    }
  });

  it('judged each first-run champion on its own window before deciding', async () => {
    const versions = await database.db
      .selectFrom('model_versions')
      .select(['model_id', 'metrics', 'status', 'decision_reason'])
      .where('run_id', '=', second.runId)
      .execute();
    const firstChampions = afterFirst.versions.filter((version) => version.status === 'champion');
    for (const champion of firstChampions) {
      const next = versions.find((version) => version.model_id === champion.model_id);
      if (!next || next.status === 'rejected') continue;
      expect(next.metrics.champion, `model ${champion.model_id}`).toMatchObject({ version: champion.version, auc: expect.any(Number) });
      expect(next.decision_reason).toMatch(next.status === 'champion' ? /not worse than champion v\d+/ : /champion v\d+ stays/);
    }
  });

  it('every promoted version carries its metrics, reliability, 10-decile gains, interval, design, importance (networks) and both baselines, and is at least as good as both', async () => {
    const promoted = await database.db
      .selectFrom('model_versions')
      .select(['id', 'model_id', 'version', 'algorithm', 'metrics', 'baseline_metrics', 'feature_list'])
      .where('promoted_at', 'is not', null)
      .execute();
    expect(promoted.length).toBeGreaterThan(0);
    const groupNames = [...Object.keys(EXPLANATION_GROUPS), 'category history', 'product history'].sort();
    for (const version of promoted) {
      const label = `model ${version.model_id} v${version.version}`;
      const evaluation = version.metrics.evaluation as Record<string, unknown>;
      for (const name of ['rocAuc', 'prAuc', 'logLoss', 'brier', 'expectedCalibrationError']) {
        expect(Number.isFinite(evaluation[name]), `${label}: ${name}`).toBe(true);
      }
      const reliability = evaluation.reliability as Array<Record<string, number>>;
      expect(reliability.length, `${label}: reliability bins`).toBeGreaterThan(1);
      for (const bin of reliability)
        expect(bin).toEqual(expect.objectContaining({ lower: expect.any(Number), upper: expect.any(Number), count: expect.any(Number) }));
      expect(reliability.reduce((sum, bin) => sum + (bin.count ?? 0), 0)).toBe(evaluation.rows);
      const gains = evaluation.gains as Array<Record<string, number>>;
      expect(
        gains.map((row) => row.decile),
        `${label}: gains`,
      ).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(gains[9]?.cumulativeGain).toBeCloseTo(1, 6);
      const interval = version.metrics.aucInterval as { auc: number; low: number; high: number };
      expect(interval.auc, `${label}: interval`).toBeCloseTo(evaluation.rocAuc as number, 9);
      expect(interval.low).toBeLessThan(interval.auc);
      expect(interval.high).toBeGreaterThan(interval.auc);
      expect(version.metrics.evaluationDesign, `${label}: design`).toMatchObject({ kind: 'out-of-time', test: 'DeLong paired' });
      if (version.algorithm === 'logistic' || version.algorithm === 'mlp') {
        const importance = version.metrics.importance as Array<{ group: string; aucDrop: number | null }>;
        expect(importance.map((entry) => entry.group).sort(), `${label}: importance groups`).toEqual(groupNames);
        for (const entry of importance) expect(Number.isFinite(entry.aucDrop), `${label}: importance of ${entry.group}`).toBe(true);
      }

      const baselines = version.baseline_metrics as Record<string, Record<string, unknown> | null>;
      for (const name of ['rfm', 'bgnbd']) {
        const metrics = baselines[name];
        expect(metrics, `${label}: ${name} baseline`).toBeTruthy();
        for (const field of ['rocAuc', 'prAuc', 'logLoss', 'brier', 'expectedCalibrationError'])
          expect(Number.isFinite(metrics?.[field]), `${label}: ${name}.${field}`).toBe(true);
        expect((metrics!.gains as unknown[]).length).toBe(10);
        // the champion is the best candidate on the evaluation window: no baseline is above it
        expect(evaluation.rocAuc as number, `${label}: AUC vs ${name}`).toBeGreaterThanOrEqual(metrics?.rocAuc as number);
      }
    }
  });
});

describe('a backtest', () => {
  it('judges the production networks on what happened after as-of', () => {
    expect(backtest).toMatchObject({ kind: 'backtest', asOf: BACKTEST_AS_OF.toISOString(), population: CONTACTS });
    expect(backtest.cutoffs.scoring).toBe(BACKTEST_AS_OF.toISOString().slice(0, 10));
    const judged = backtest.targets.filter((target) => target.status === 'candidate');
    expect(judged.length).toBeGreaterThan(0);
    for (const target of judged) {
      expect(target.backtest?.model?.rocAuc, target.target).toEqual(expect.any(Number));
      expect(target.backtest?.rfm?.rocAuc, target.target).toEqual(expect.any(Number));
      expect(target.backtest?.bgnbd?.rocAuc, target.target).toEqual(expect.any(Number));
    }
  });

  it('registers versions that are never champions and writes no score sets; champions and live scores are untouched', async () => {
    const versions = await database.db
      .selectFrom('model_versions')
      .select(['status', 'promoted_at', 'decision_reason', 'consent_snapshot_at', 'training_cutoff'])
      .where('run_id', '=', backtest.runId)
      .execute();
    expect(versions.length).toBeGreaterThan(0);
    for (const version of versions) {
      expect(['candidate', 'rejected']).toContain(version.status);
      expect(version.promoted_at).toBeNull();
      expect(version.consent_snapshot_at.toISOString()).toBe(BACKTEST_AS_OF.toISOString());
      expect(version.training_cutoff.toISOString()).toBe(new Date(BACKTEST_AS_OF.getTime() - 30 * DAY_MS).toISOString());
      if (version.status === 'candidate') expect(version.decision_reason).toMatch(/backtest run, never promoted/);
    }
    expect(afterBacktest.sets.filter((set) => set.run_id === backtest.runId)).toEqual([]);
    expect(afterBacktest.sets).toEqual(afterSecond.sets);
    expect(afterBacktest.partitions).toEqual(afterSecond.partitions);
    expect(afterBacktest.scoreRows).toBe(afterSecond.scoreRows);
    const statusOf = (current: State) => current.versions.filter((v) => v.run_id !== backtest.runId).map((v) => `${v.id}:${v.status}`);
    expect(statusOf(afterBacktest)).toEqual(statusOf(afterSecond));
    expectConsistent(afterBacktest, 'after the backtest', second.runId);
  });
});
