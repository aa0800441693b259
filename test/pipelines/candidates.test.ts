import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { expectedPurchasesBatch, fitBgNbd } from '../../models/bgnbd.ts';
import { rocAuc } from '../../models/metrics.ts';
import { type PipelineReport, runPipeline } from '../../pipelines/run-pipeline.ts';
import { printRun } from '../../src/cli/pipeline.command.ts';
import { DEFAULT_CONSENT_POLICY, DEFAULT_TARGETING_POLICY } from '../../src/config.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { buildTargetList } from '../../src/targeting/target-list.service.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { COHORT_SKU, type Cohort, seedCohort } from './cohort.fixtures.ts';
import { DAY_MS, movableClock, pipelineContext, smallOptions } from './pipeline.fixtures.ts';

/*
 * A cohort that all arrived within one quarter, 18 months of log, horizon 181 days: at T−2H
 * almost nobody had a history, so candidates are judged by a split by person at T−H. Every
 * product gets its best honest model (a baseline when the network loses), every run scores
 * every champion again, and the same data and seed make the same decisions.
 */

process.env.CIBLE_CODE_VERSION = 'candidates-test';

const START = new Date('2025-01-01T00:00:00Z');
const END = new Date(START.getTime() + 547 * DAY_MS);
const HORIZON = 181;
const CUSTOMERS = 700;
const POLICIES = { consent: DEFAULT_CONSENT_POLICY, targeting: { ...DEFAULT_TARGETING_POLICY, pressureMaxLists: 100 } };

let database: DatabaseHandle;
let cohort: Cohort;
const clock = movableClock(new Date(END.getTime() + 3_600_000));
let crippled: PipelineReport;
let normal: PipelineReport;
let kept: PipelineReport;
const backtests: PipelineReport[] = [];
let crippledReasons: Array<string | undefined> = [];
let crippledList: Awaited<ReturnType<typeof buildTargetList>>;

const options = (overrides: Parameters<typeof smallOptions>[0] = {}) =>
  smallOptions({ asOf: END, horizonDays: HORIZON, minPositives: 50, minNegatives: 50, products: [COHORT_SKU], ...overrides });

beforeAll(async () => {
  database = await createTestDatabase();
  cohort = await seedCohort(database, {
    seed: 181,
    customers: CUSTOMERS,
    acquisitionFrom: new Date(START.getTime() + 180 * DAY_MS),
    acquisitionTo: new Date(START.getTime() + 270 * DAY_MS),
    end: END,
    futureDays: HORIZON,
  });
  const context = pipelineContext(database, clock);
  // a network that cannot learn (one epoch at a negligible learning rate) loses to BG/NBD
  const base = options();
  crippled = await runPipeline(
    context,
    options({ trigger: 'test:crippled', training: { ...base.training, learningRate: 1e-9, epochs: 1, maxEpochs: 1, minSamples: 1 } }),
  );
  crippledReasons = await reasonNames(crippled.runId);
  crippledList = await buildTargetList(
    database.db,
    { sku: COHORT_SKU, channel: 'email', size: { top: 50 }, holdoutPercent: 0, actor: 'test', apiKeyId: null },
    POLICIES,
    clock.now(),
  );
  clock.set(new Date(clock.now().getTime() + 3_600_000));
  normal = await runPipeline(context, options({ trigger: 'test:normal' }));
  clock.set(new Date(clock.now().getTime() + 3_600_000));
  // nothing can reach 0.99: every new version is rejected, the champion stays and is scored again
  kept = await runPipeline(context, options({ trigger: 'test:kept', minimumAuc: 0.99 }));
  for (const trigger of ['test:backtest-1', 'test:backtest-2']) {
    clock.set(new Date(clock.now().getTime() + 3_600_000));
    backtests.push(
      await runPipeline(context, options({ kind: 'backtest', trigger, asOf: new Date(END.getTime() - 200 * DAY_MS), horizonDays: 150 })),
    );
  }
}, 600_000);
afterAll(() => database?.close());

/** The group names of the reason codes in a run's BG/NBD score set, while it is live. */
async function reasonNames(runId: number): Promise<Array<string | undefined>> {
  const version = await database.db
    .selectFrom('model_versions')
    .select('metrics')
    .where('run_id', '=', runId)
    .where('algorithm', '=', 'bgnbd')
    .where('status', '=', 'champion')
    .executeTakeFirstOrThrow();
  const groups = version.metrics.explanationGroups as string[];
  const { rows } = await sql<{ code: number | null }>`
    SELECT DISTINCT unnest(ARRAY[reason_1, reason_2, reason_3])::int AS code FROM scores s
    JOIN score_sets ss ON ss.id = s.score_set_id WHERE ss.run_id = ${runId}`.execute(database.db);
  return rows.filter((row) => row.code !== null).map((row) => groups[row.code as number]);
}

const outcomeOf = (report: PipelineReport, target = `product:${COHORT_SKU}`) => report.targets.find((outcome) => outcome.target === target);

async function liveSet() {
  return database.db
    .selectFrom('score_sets as s')
    .innerJoin('models as m', 'm.id', 's.model_id')
    .innerJoin('model_versions as v', 'v.id', 's.model_version_id')
    .select(['s.id', 's.run_id', 's.row_count', 'v.version', 'v.algorithm', 'v.status', 'v.run_id as version_run'])
    .where('m.target_key', '=', COHORT_SKU)
    .where('s.status', '=', 'live')
    .executeTakeFirstOrThrow();
}

async function liveScores(): Promise<Map<number, number>> {
  const { rows } = await sql<{ contact_id: string; score: number }>`
    SELECT s.contact_id, s.score FROM scores s JOIN score_sets ss ON ss.id = s.score_set_id
    JOIN models m ON m.id = ss.model_id WHERE ss.status = 'live' AND m.target_key = ${COHORT_SKU}`.execute(database.db);
  return new Map(rows.map((row) => [Number(row.contact_id), row.score]));
}

/** BG/NBD fitted by hand on the history before END (days), each person's expected purchases in the horizon. */
function handPosterior(): Map<number, number> {
  const ids = [...cohort.history.keys()].filter((id) => (cohort.history.get(id) ?? []).length > 0);
  const summary = (id: number) => {
    const days = [...new Set((cohort.history.get(id) ?? []).map((at) => Math.floor(at / DAY_MS)))].sort((a, b) => a - b);
    const first = days[0] as number;
    return { x: days.length - 1, tx: (days.at(-1) as number) - first, T: END.getTime() / DAY_MS - first };
  };
  const data = ids.map(summary);
  const input = {
    x: Float64Array.from(data, (d) => d.x),
    tx: Float64Array.from(data, (d) => d.tx),
    T: Float64Array.from(data, (d) => d.T),
  };
  const { params } = fitBgNbd(input);
  const { expected } = expectedPurchasesBatch(params, input, HORIZON);
  return new Map(ids.map((id, i) => [id, expected[i] as number]));
}

function aucOnFuture(scores: Map<number, number>): number {
  const ids = [...scores.keys()];
  return rocAuc(
    Uint8Array.from(ids, (id) => (cohort.future.get(id) ? 1 : 0)),
    ids.map((id) => scores.get(id) as number),
  );
}

describe('a young cohort (18 months, one acquisition quarter, horizon 181 d)', () => {
  it('is judged by a split by person at T−H, recorded with the design', async () => {
    expect(normal.evaluationDesign).toMatchObject({ kind: 'person-split', holdoutShare: 0.3, test: 'DeLong paired' });
    expect(normal.evaluationDesign?.historyAtCalibration).toBeLessThan(0.5 * (normal.evaluationDesign?.historyAtEvaluation ?? 0));
    const versions = await database.db.selectFrom('model_versions').select(['metrics']).where('run_id', '=', normal.runId).execute();
    for (const version of versions) expect(version.metrics.evaluationDesign).toMatchObject({ kind: 'person-split' });
  });

  it('gets a champion whose live scores, on the realised future window, rank at least as well as the BG/NBD posterior computed by hand', async () => {
    const outcome = outcomeOf(normal);
    expect(outcome?.reason).not.toMatch(/too close to chance/);
    const set = await liveSet();
    expect(set.status).toBe('champion');
    const live = await liveScores();
    const model = aucOnFuture(live);
    const posterior = handPosterior();
    const hand = aucOnFuture(posterior);
    expect(hand).toBeGreaterThan(0.6);
    expect(model).toBeGreaterThanOrEqual(hand);
  });

  it('a list at percentile 100 on email holds every consented person', async () => {
    const list = await buildTargetList(
      database.db,
      { sku: COHORT_SKU, channel: 'email', size: { percentile: 100 }, holdoutPercent: 0, actor: 'test', apiKeyId: null },
      POLICIES,
      clock.now(),
    );
    expect(list.members.length).toBe(CUSTOMERS);
  });
});

describe('candidates, not just networks', () => {
  it('when the network loses to BG/NBD, BG/NBD becomes the champion, says by how much, scores everyone with reasons from its inputs', async () => {
    const outcome = outcomeOf(crippled);
    expect(outcome?.status).toBe('champion');
    expect(outcome?.algorithm).toBe('bgnbd');
    expect(outcome?.candidates?.bgnbd?.auc).toBeGreaterThan(outcome?.candidates?.logistic?.auc ?? 1);
    expect(outcome?.margin?.over).toBeDefined();
    expect(outcome?.reason).toMatch(/bgnbd wins with AUC \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\], ahead of \w+ by/);
    expect(outcome?.scored).toBe(CUSTOMERS);
    const version = await database.db
      .selectFrom('model_versions')
      .select(['algorithm', 'network_id', 'metrics'])
      .where('run_id', '=', crippled.runId)
      .where('status', '!=', 'rejected')
      .executeTakeFirstOrThrow();
    expect(version).toMatchObject({ algorithm: 'bgnbd', network_id: null });
    expect(version.metrics.aucInterval).toMatchObject({ auc: expect.any(Number), low: expect.any(Number), high: expect.any(Number) });
    expect(version.metrics.scorer).toMatchObject({ kind: 'bgnbd', calibration: { edges: expect.any(Array), rates: expect.any(Array) } });
  });

  it('cible pipeline run prints the evaluation design and, per target, which candidate won and by how much', () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      printRun(crippled);
      const printed = log.mock.calls.map((call) => call.join(' ')).join('\n');
      expect(printed).toMatch(/^evaluation design: person-split \(split by person at /m);
      const margin = outcomeOf(crippled)?.margin;
      const signed = (value: number) => `${value >= 0 ? '+' : ''}${value.toFixed(3)}`;
      const line = printed.split('\n').find((text) => text.startsWith(`product:${COHORT_SKU} `));
      expect(line).toContain(
        `bgnbd over ${margin?.over} by ${signed(margin?.difference as number)} [${signed(margin?.low as number)}, ${signed(margin?.high as number)}]`,
      );
    } finally {
      log.mockRestore();
    }
  });

  it('its reasons name recency, frequency or tenure, and the stored reason codes resolve to those names', () => {
    expect(crippledReasons.length).toBeGreaterThan(0);
    for (const name of crippledReasons) expect(['recency', 'frequency', 'tenure']).toContain(name);
  });

  it('serves a list: its members come in score order with reasons named after the baseline’s inputs', () => {
    expect(crippledList.model.algorithm).toBe('bgnbd');
    expect(crippledList.members.length).toBe(50);
    const scores = crippledList.members.map((member) => member.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    const named = crippledList.members.flatMap((member) => member.reasons.map((reason) => reason.feature));
    expect(named.length).toBeGreaterThan(0);
    for (const name of named) expect(['recency', 'frequency', 'tenure']).toContain(name);
  });
});

describe('every run scores every champion', () => {
  it('a champion kept over rejected candidates has a score set from the latest run, for everyone', async () => {
    const outcome = outcomeOf(kept);
    expect(outcome?.status).toBe('rejected');
    const set = await liveSet();
    expect(set.run_id).toBe(kept.runId);
    expect(set.version_run).not.toBe(kept.runId);
    expect(set.row_count).toBe(CUSTOMERS);
    expect(kept.rescored?.find((entry) => entry.target === `product:${COHORT_SKU}`)).toMatchObject({ scored: CUSTOMERS });
    const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM score_sets WHERE status = 'live'`.execute(database.db);
    expect(rows[0]?.n).toBe(3); // the product, its category and "any purchase"
  });
});

describe('decisions that resolve noise', () => {
  it('two runs on the same data and seed make the same decisions with the same figures', () => {
    const decisions = (report: PipelineReport) =>
      report.targets.map((outcome) => ({
        target: outcome.target,
        status: outcome.status,
        algorithm: outcome.algorithm,
        auc: outcome.auc,
        candidates: outcome.candidates,
        margin: outcome.margin,
      }));
    expect(backtests[0]?.targets.length).toBeGreaterThan(0);
    expect(decisions(backtests[1] as PipelineReport)).toEqual(decisions(backtests[0] as PipelineReport));
  });

  it('a promotion over a champion is decided on the same rows with a paired interval, stored with the version', async () => {
    const outcome = outcomeOf(normal);
    const version = await database.db
      .selectFrom('model_versions')
      .select(['metrics', 'decision_reason'])
      .where('run_id', '=', normal.runId)
      .innerJoin('models', 'models.id', 'model_versions.model_id')
      .where('models.target_key', '=', COHORT_SKU)
      .executeTakeFirstOrThrow();
    const champion = version.metrics.champion as {
      version: number;
      algorithm: string;
      difference: { difference: number; low: number; high: number } | null;
    };
    expect(champion).toMatchObject({ version: 1, algorithm: 'bgnbd' });
    expect(champion.difference?.low).toBeLessThanOrEqual(champion.difference?.difference as number);
    expect(champion.difference?.high).toBeGreaterThanOrEqual(champion.difference?.difference as number);
    expect(outcome?.championDifference?.difference).toBeCloseTo(champion.difference?.difference as number, 12);
    expect(version.decision_reason).toMatch(/champion v1/);
  });
});
