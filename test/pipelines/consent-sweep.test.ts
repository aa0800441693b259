import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { takeConsentSnapshot } from '../../pipelines/consent-snapshot.ts';
import { type ConsentSweepReport, sweepConsent } from '../../pipelines/consent-sweep.ts';
import { sweepSummary } from '../../src/cli/consent.command.ts';
import { fixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import type { AppContext } from '../../src/context.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { ensureModel, finishRun, insertVersion, promoteVersion } from '../../src/registry/registry.repository.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { captureLogger } from '../helpers/silent-logger.ts';
import { SCORED_SKU, type ScoredBase, type ScoredPerson, seedScoredBase } from '../targeting/targeting.fixtures.ts';

/*
 * The light consent job: a profiling consent that expires stops counting with no event, so
 * no trigger deletes the person's scores; the sweep does, and says which champion models
 * were trained on people who no longer consent.
 *
 * The instants are relative to the real time: the consent_state trigger judges a new event
 * against the database's now(), so an expiry must lie in the real future when it is recorded.
 */

const DAY_MS = 86_400_000;
const REAL_NOW = new Date(Math.floor(Date.now() / 1000) * 1000);
const SCORED_AT = new Date(REAL_NOW.getTime() - DAY_MS);
const EXPIRES_AT = new Date(REAL_NOW.getTime() + 30 * DAY_MS);
const BEFORE_EXPIRY = new Date(REAL_NOW.getTime() + 10 * DAY_MS);
const AFTER_EXPIRY = new Date(REAL_NOW.getTime() + 31 * DAY_MS);
const COUNT = 12;
const LAMP = `product:${SCORED_SKU}`;
const LIGHTING = 'category:lighting';

let database: DatabaseHandle;
let base: ScoredBase;
let context: AppContext;
let logLines: string[];
let lampRunId: number;
let lightingRunId: number;
/** whose profiling consent expires; in the lamp model's snapshot, not in the lighting model's */
let expiring: ScoredPerson;

beforeAll(async () => {
  database = await createTestDatabase();
  base = await seedScoredBase(database, COUNT, SCORED_AT);
  const { db } = database;
  expiring = base.people[3]!;
  // a renewed profiling consent, valid for 30 days: the latest event, so the one that counts
  await db
    .insertInto('consent_events')
    .values({
      contact_id: expiring.id,
      purpose: 'profiling',
      channel: null,
      status: 'granted',
      captured_at: new Date(SCORED_AT.getTime() - DAY_MS),
      source: 'web:preferences',
      method: 'explicit_checkbox',
      notice_version: 'privacy-v3',
      evidence_ref: null,
      expires_at: EXPIRES_AT,
      import_id: null,
    })
    .execute();

  // the lamp champion's run took its consent snapshot when it scored: everyone counted then
  const version = await db.selectFrom('model_versions').select(['run_id']).where('id', '=', base.versionId).executeTakeFirstOrThrow();
  lampRunId = Number(version.run_id);
  expect((await takeConsentSnapshot(db, lampRunId, SCORED_AT, true)).size).toBe(COUNT);
  await finishRun(db, lampRunId, { status: 'succeeded', finishedAt: SCORED_AT, summary: {} });

  // a second champion, from another run whose snapshot did not include the expiring person
  const run = await db
    .insertInto('pipeline_runs')
    .values({
      status: 'succeeded',
      trigger: 'test',
      as_of: SCORED_AT,
      params: '{}',
      summary: '{}',
      started_at: SCORED_AT,
      finished_at: SCORED_AT,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  lightingRunId = Number(run.id);
  await sql`
    INSERT INTO profiling_snapshots (run_id, contact_id, consent_event_id, known_since)
    SELECT ${lightingRunId}, contact_id, consent_event_id, known_since FROM profiling_snapshots
    WHERE run_id = ${lampRunId} AND contact_id <> ${expiring.id}`.execute(db);
  const modelId = await ensureModel(db, { kind: 'category', key: 'lighting', productId: null });
  const lighting = await insertVersion(db, {
    modelId,
    algorithm: 'logistic',
    status: 'candidate',
    runId: lightingRunId,
    trainedAt: SCORED_AT,
    consentSnapshotAt: SCORED_AT,
    populationSize: COUNT - 1,
    trainingCutoff: SCORED_AT,
    horizonDays: 30,
    featureList: ['recency_days'],
    codeVersion: 'test',
    trainingDataHash: 'test',
    metrics: {},
    baselineMetrics: {},
    decisionReason: 'test',
    networkId: null,
    evaluationNetworkId: null,
    outputIndex: null,
  });
  await promoteVersion(db, modelId, lighting.id, SCORED_AT);

  const captured = captureLogger();
  logLines = captured.lines;
  context = { config: loadConfig({}), logger: captured.logger, clock: fixedClock(BEFORE_EXPIRY), database, stop: async () => undefined };
}, 120_000);

afterAll(() => database?.close());

async function scoresOf(contactId: number): Promise<number> {
  const row = await database.db
    .selectFrom('scores')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('contact_id', '=', contactId)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function allScores(): Promise<number> {
  const row = await database.db
    .selectFrom('scores')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

function lineageOf(report: ConsentSweepReport, target: string) {
  const entry = report.lineage.find((candidate) => candidate.target === target);
  if (!entry) throw new Error(`no lineage for ${target}`);
  return entry;
}

describe('the consent sweep', () => {
  it('deletes nothing while the consent still counts', async () => {
    const report = await sweepConsent(context);
    expect(report).toMatchObject({
      at: BEFORE_EXPIRY.toISOString(),
      scoresDeleted: 0,
      contactsAffected: 0,
      scoreSets: [],
      retrainEarly: [],
    });
    expect(report.lineage.map((entry) => entry.target)).toEqual([LIGHTING, LAMP]);
    expect(lineageOf(report, LAMP)).toEqual({
      target: LAMP,
      versionId: base.versionId,
      version: 1,
      runId: lampRunId,
      consentSnapshotAt: SCORED_AT.toISOString(),
      snapshotSize: COUNT,
      withdrawnSinceSnapshot: 0,
      share: 0,
    });
    expect(await scoresOf(expiring.id)).toBe(1);
    expect(await allScores()).toBe(COUNT);
  });

  it('once the consent has expired, deletes exactly that person’s scores and counts them in the lineage', async () => {
    // time alone: no event, so no trigger has deleted anything
    expect(await scoresOf(expiring.id)).toBe(1);
    const report = await sweepConsent(context, AFTER_EXPIRY);
    expect(report.at).toBe(AFTER_EXPIRY.toISOString());
    expect(report.scoresDeleted).toBe(1);
    expect(report.contactsAffected).toBe(1);
    expect(report.scoreSets).toEqual([{ scoreSetId: base.scoreSetId, target: LAMP, status: 'live', scoresDeleted: 1 }]);
    expect(await scoresOf(expiring.id)).toBe(0);
    expect(await allScores()).toBe(COUNT - 1);
    for (const person of base.people) if (person.id !== expiring.id) expect(await scoresOf(person.id)).toBe(1);

    expect(lineageOf(report, LAMP)).toMatchObject({ runId: lampRunId, snapshotSize: COUNT, withdrawnSinceSnapshot: 1, share: 1 / COUNT });
    expect(lineageOf(report, LIGHTING)).toMatchObject({
      runId: lightingRunId,
      snapshotSize: COUNT - 1,
      withdrawnSinceSnapshot: 0,
      share: 0,
    });
    expect(report.retrainEarly).toEqual([LAMP]);

    const sweeps = await database.db.selectFrom('consent_sweeps').selectAll().orderBy('id').execute();
    expect(sweeps).toHaveLength(2);
    const recorded = sweeps[1]!;
    expect(Number(recorded.id)).toBe(report.sweepId);
    expect(recorded.ran_at.toISOString()).toBe(AFTER_EXPIRY.toISOString());
    expect(Number(recorded.scores_deleted)).toBe(1);
    expect(recorded.contacts_affected).toBe(1);
    const { sweepId, ...body } = report;
    expect(recorded.report).toEqual(body);
    expect(Number(sweeps[0]!.scores_deleted)).toBe(0);
  });

  it('records and logs counts only, never who', async () => {
    const recorded = await database.db.selectFrom('consent_sweeps').select('report').execute();
    for (const { report } of recorded) {
      const text = JSON.stringify(report);
      expect(text).not.toMatch(/contact_?id|external|email|phone/i);
      expect(text).not.toContain(expiring.ref);
    }
    const sweepLines = logLines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((line) => line.msg === 'consent sweep');
    expect(sweepLines).toHaveLength(2);
    expect(sweepLines[1]).toMatchObject({ level: 30, scoresDeleted: 1, contactsAffected: 1, retrainEarly: 1, champions: 2 });
    for (const line of logLines) {
      expect(line).not.toContain(expiring.ref);
      expect(line).not.toContain(expiring.email);
      expect(line).not.toMatch(/contact_?id/i);
    }
  });

  it('deletes nothing more on a second pass, but still reports the lineage', async () => {
    const report = await sweepConsent(context, AFTER_EXPIRY);
    expect(report).toMatchObject({ scoresDeleted: 0, contactsAffected: 0, scoreSets: [], retrainEarly: [LAMP] });
    expect(lineageOf(report, LAMP).withdrawnSinceSnapshot).toBe(1);
    expect(await allScores()).toBe(COUNT - 1);
  });

  it('deletes the scores of an erased person still holding some, and counts them as gone from both snapshots', async () => {
    const erased = base.people[5]!;
    await database.db.updateTable('contacts').set({ erased_at: REAL_NOW }).where('id', '=', erased.id).execute();
    const report = await sweepConsent(context, AFTER_EXPIRY);
    expect(report).toMatchObject({ scoresDeleted: 1, contactsAffected: 1, retrainEarly: [LIGHTING, LAMP] });
    expect(await scoresOf(erased.id)).toBe(0);
    expect(await allScores()).toBe(COUNT - 2);
    expect(lineageOf(report, LAMP)).toMatchObject({ snapshotSize: COUNT, withdrawnSinceSnapshot: 2 });
    expect(lineageOf(report, LIGHTING)).toMatchObject({ snapshotSize: COUNT - 1, withdrawnSinceSnapshot: 1 });
  });

  it('prints a readable summary for the CLI', async () => {
    const report = await sweepConsent(context, AFTER_EXPIRY);
    const text = sweepSummary(report);
    expect(text).toContain(`consent sweep ${report.sweepId} at ${AFTER_EXPIRY.toISOString()}`);
    expect(text).toContain('0 score(s) deleted for 0 contact(s)');
    expect(text).toMatch(new RegExp(`${LAMP}\\s+v1\\s+run ${lampRunId}\\s+2 of 12 no longer consent \\(16\\.67 %\\)`));
    expect(text).toContain(`retrain early: ${LIGHTING}, ${LAMP}`);
  });
});
