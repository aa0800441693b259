import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillBuyTillYouDie } from '../../pipelines/buy-till-you-die.ts';
import { computeFeatures, featureLayout } from '../../pipelines/features.ts';
import { computeLabels } from '../../pipelines/labels.ts';
import { type PipelineReport, runPipeline } from '../../pipelines/run-pipeline.ts';
import type { Target } from '../../pipelines/targets.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { erase } from '../../src/rights/rights.service.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { TEST_TOMBSTONE_KEYS } from '../helpers/tombstone-keys.ts';
import { type Base, type ConsentKind, DAY_MS, pipelineContext, refsOf, seedBase, smallOptions } from './pipeline.fixtures.ts';

/*
 * The consent gate of the pipeline: only contacts whose profiling consent counts at the
 * run's instant are snapshotted, trained on and scored; a model version records which
 * snapshot it was trained on; a withdrawal after the run removes the person's scores at once.
 */

// the code version is read from the environment rather than from git in this test
process.env.CIBLE_CODE_VERSION = 'consent-gate-test';
const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const RUN_AT = new Date('2026-11-01T06:00:00Z');
const FROM = new Date(RUN_AT.getTime() - 400 * DAY_MS);
const WITHDRAWN_AT = new Date(RUN_AT.getTime() - 5 * DAY_MS);
const ERASED_AT = new Date(RUN_AT.getTime() - 2 * DAY_MS);
const CONTACTS = 300;
const SEED = 4242;
const OPTIONS = smallOptions();

/** One contact in twenty of each kind without a valid consent, the rest valid. */
const KINDS: ConsentKind[] = Array.from({ length: CONTACTS }, (_, index) => {
  const kinds: ConsentKind[] = ['withdrawn', 'never', 'no-proof', 'pre-ticked', 'erased'];
  return kinds[index % 20] ?? 'valid';
});

let database: DatabaseHandle;
let base: Base;
let report: PipelineReport;
let valid: number[];
let invalid: number[];

beforeAll(async () => {
  database = await createTestDatabase();
  base = await seedBase(database, { seed: SEED, from: FROM, to: RUN_AT, consents: KINDS, withdrawnAt: WITHDRAWN_AT });
  for (const person of base.people.filter((p) => p.consent === 'erased'))
    await erase(database.db, person.ref, 'test:consent-gate', ERASED_AT, TEST_TOMBSTONE_KEYS);
  valid = base.people
    .filter((p) => p.consent === 'valid')
    .map((p) => p.id)
    .sort((a, b) => a - b);
  invalid = base.people.filter((p) => p.consent !== 'valid').map((p) => p.id);
  report = await runPipeline(pipelineContext(database, RUN_AT), OPTIONS);
}, 120_000);
afterAll(() => database?.close());

const refs = (ids: Iterable<number>) => refsOf(base.people, ids);

async function liveScoreSets() {
  return database.db.selectFrom('score_sets').selectAll().where('status', '=', 'live').orderBy('id').execute();
}

async function scoredContacts(scoreSetId?: number): Promise<number[]> {
  let query = database.db.selectFrom('scores').select('contact_id').distinct();
  if (scoreSetId !== undefined) query = query.where('score_set_id', '=', scoreSetId);
  return (await query.execute()).map((row) => row.contact_id).sort((a, b) => a - b);
}

describe('the fixture', () => {
  it('has every kind of consent, and the run promoted at least one model and scored it', () => {
    const counts = Object.fromEntries(
      ['valid', 'withdrawn', 'never', 'no-proof', 'pre-ticked', 'erased'].map((kind) => [kind, KINDS.filter((k) => k === kind).length]),
    );
    expect(counts).toEqual({ valid: 225, withdrawn: 15, never: 15, 'no-proof': 15, 'pre-ticked': 15, erased: 15 });
    const champions = report.targets.filter((target) => target.status === 'champion');
    expect(champions.map((target) => target.target)).toContain('product:PL-REFILL');
    for (const champion of champions) expect(champion.scored).toBe(valid.length);
  });
});

describe('contacts without a valid profiling consent are in no snapshot, no training matrix and no score', () => {
  it('the run’s snapshot holds exactly the valid contacts, each with the grant that allows it', async () => {
    const rows = await database.db
      .selectFrom('profiling_snapshots as s')
      .innerJoin('consent_events as e', 'e.id', 's.consent_event_id')
      .select(['s.contact_id', 'e.contact_id as event_contact', 'e.purpose', 'e.status', 'e.method', 'e.source'])
      .where('s.run_id', '=', report.runId)
      .execute();
    expect(refs(rows.map((row) => row.contact_id))).toEqual(refs(valid));
    for (const row of rows) {
      expect(row).toMatchObject({
        event_contact: row.contact_id,
        purpose: 'profiling',
        status: 'granted',
        method: 'explicit_checkbox',
        source: 'web:account-form',
      });
    }
    expect(report.population).toBe(valid.length);
  });

  it('every feature matrix of the run (each training cutoff, the evaluation window, scoring) has only those rows', async () => {
    const layout = featureLayout([], [], []);
    const days = [...report.cutoffs.evaluationTraining, ...report.cutoffs.productionTraining, report.cutoffs.evaluation];
    expect(new Set(days).size).toBeGreaterThanOrEqual(5);
    for (const day of new Set(days)) {
      const cutoff = new Date(`${day}T${RUN_AT.toISOString().slice(11)}`);
      const matrix = await computeFeatures(database.db, { runId: report.runId, cutoff, horizonDays: report.horizonDays, layout });
      expect(refs(matrix.contactIds), `rows at ${day}`).toEqual(refs(valid));
    }
    const scoring = await computeFeatures(database.db, {
      runId: report.runId,
      cutoff: RUN_AT,
      horizonDays: report.horizonDays,
      layout,
      liveConsentAt: RUN_AT,
    });
    expect(refs(scoring.contactIds)).toEqual(refs(valid));
  });

  it('no score row exists for any other contact: each live score set scores exactly the valid contacts', async () => {
    const sets = await liveScoreSets();
    expect(sets.length).toBe(report.targets.filter((target) => target.status === 'champion').length);
    for (const set of sets) {
      expect(set.run_id).toBe(report.runId);
      expect(set.row_count).toBe(valid.length);
      expect(refs(await scoredContacts(set.id))).toEqual(refs(valid));
    }
    const everyScored = await scoredContacts();
    expect(everyScored.filter((id) => invalid.includes(id))).toEqual([]);
  });

  it('no model is about a special category (the pharmacy product and category are never a target)', async () => {
    const models = await database.db.selectFrom('models').select(['target_kind', 'target_key']).execute();
    expect(models.length).toBeGreaterThan(0);
    expect(models.filter((model) => /pharmacy|PL-VITAMIN/.test(model.target_key))).toEqual([]);
  });
});

describe('a model version records its lineage', () => {
  it('consent snapshot instant and size, training cutoff, horizon, feature list of its network, code version and data hash', async () => {
    const versions = await database.db.selectFrom('model_versions').selectAll().where('run_id', '=', report.runId).execute();
    expect(versions.length).toBeGreaterThan(0);
    expect(versions.filter((version) => version.status === 'champion').length).toBeGreaterThan(0);
    for (const version of versions) {
      expect(version.consent_snapshot_at.toISOString()).toBe(RUN_AT.toISOString());
      expect(version.trained_at.toISOString()).toBe(RUN_AT.toISOString());
      expect(version.population_size).toBe(valid.length);
      expect(version.training_cutoff.toISOString()).toBe(new Date(RUN_AT.getTime() - report.horizonDays * DAY_MS).toISOString());
      expect(version.horizon_days).toBe(report.horizonDays);
      expect(version.code_version).toBe(`${PACKAGE_VERSION}+consent-gate-test`);
      expect(version.training_data_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(version.decision_reason).toBeTruthy();
      if (version.status === 'champion' && (version.algorithm === 'logistic' || version.algorithm === 'mlp')) {
        expect(version.network_id).not.toBeNull();
        expect(version.evaluation_network_id).not.toBeNull();
      } else if (version.status === 'champion') {
        // a baseline champion scores with its stored calibration, on the same declared features
        expect(version.network_id).toBeNull();
        expect(version.metrics.scorer).toMatchObject({ kind: version.algorithm });
      }
      for (const networkId of [version.network_id, version.evaluation_network_id]) {
        if (networkId === null) continue;
        const network = await database.db
          .selectFrom('model_networks')
          .select(['feature_list', 'run_id'])
          .where('id', '=', networkId)
          .executeTakeFirstOrThrow();
        expect(network.run_id).toBe(report.runId);
        expect(version.feature_list).toEqual(network.feature_list);
      }
    }
  });

  it('the training data hash of each network champion is the hash of the matrices rebuilt from the snapshot alone', async () => {
    const champions = await database.db
      .selectFrom('model_versions')
      .selectAll()
      .where('run_id', '=', report.runId)
      .where('status', '=', 'champion')
      .execute();
    const withNetwork = champions.filter((champion) => champion.network_id !== null);
    expect(withNetwork.length).toBeGreaterThan(0);
    const network = await database.db
      .selectFrom('model_networks')
      .selectAll()
      .where('id', '=', withNetwork[0]!.network_id as number)
      .executeTakeFirstOrThrow();
    const metadata = network.metadata as {
      targets: string[];
      trainingCutoffs: string[];
      trainingRows: number;
      layout: { categories: string[]; productIds: number[]; specialCategories: string[] };
    };
    const products = await database.db.selectFrom('products').select(['id', 'sku', 'category']).execute();
    const targets: Target[] = metadata.targets.map((id) => {
      const [kind, key] = id.split(':') as [Target['kind'], string];
      const product = products.find((p) => p.sku === key);
      if (kind === 'product') return { kind, key, productId: product!.id, category: product!.category };
      return { kind, key, productId: null, category: kind === 'category' ? key : null };
    });
    const layout = featureLayout(targets, metadata.layout.categories, metadata.layout.specialCategories);
    expect(layout.names).toEqual(network.feature_list);
    expect(layout.productIds).toEqual(metadata.layout.productIds);

    const hash = createHash('sha256');
    const labels: Uint8Array[] = [];
    let rows = 0;
    for (const day of metadata.trainingCutoffs) {
      const cutoff = new Date(`${day}T${RUN_AT.toISOString().slice(11)}`);
      const matrix = await computeFeatures(database.db, { runId: report.runId, cutoff, horizonDays: report.horizonDays, layout });
      expect(refs(matrix.contactIds)).toEqual(refs(valid));
      fillBuyTillYouDie(matrix, OPTIONS.training.seed);
      labels.push(await computeLabels(database.db, matrix, targets));
      hash.update(new Uint8Array(matrix.x.buffer, matrix.x.byteOffset, matrix.x.byteLength));
      rows += matrix.rows;
    }
    // below the row cap, the training set is every row of every cutoff, in order
    expect(rows).toBeLessThanOrEqual(OPTIONS.training.maxTrainingRows);
    expect(metadata.trainingRows).toBe(rows);
    for (const part of labels) hash.update(part);
    const expected = hash.digest('hex');
    expect(withNetwork.map((version) => version.training_data_hash)).toEqual(withNetwork.map(() => expected));
  });
});

describe('a withdrawal after the run', () => {
  it('removes the contact’s scores from every live set at once, and nobody else’s; the snapshot still shows they were lawfully profiled', async () => {
    const sets = await liveScoreSets();
    const [subject, other] = valid;
    const rowsBefore = await database.db.selectFrom('scores').select(['score_set_id', 'contact_id', 'score']).execute();
    expect(rowsBefore.filter((row) => row.contact_id === subject)).toHaveLength(sets.length);

    const event = (contactId: number, purpose: string, channel: string | null, capturedAt: Date) => ({
      contact_id: contactId,
      purpose,
      channel,
      status: 'withdrawn' as const,
      captured_at: capturedAt,
      source: 'preference_centre',
      method: 'explicit_checkbox',
      notice_version: 'privacy-v2',
      evidence_ref: null,
      expires_at: null,
      import_id: null,
    });
    // withdrawing direct marketing is not withdrawing profiling: scores stay
    await database.db
      .insertInto('consent_events')
      .values(event(other as number, 'direct_marketing', 'email', new Date(RUN_AT.getTime() + 3_600_000)))
      .execute();
    expect(
      await database.db
        .selectFrom('scores')
        .select('contact_id')
        .where('contact_id', '=', other as number)
        .execute(),
    ).toHaveLength(sets.length);

    await database.db
      .insertInto('consent_events')
      .values(event(subject as number, 'profiling', null, new Date(RUN_AT.getTime() + 3_600_000)))
      .execute();

    const rowsAfter = await database.db.selectFrom('scores').select(['score_set_id', 'contact_id', 'score']).execute();
    expect(rowsAfter.filter((row) => row.contact_id === subject)).toEqual([]);
    const key = (row: { score_set_id: number; contact_id: number }) => `${row.score_set_id}:${row.contact_id}`;
    expect(rowsAfter.map(key).sort()).toEqual(
      rowsBefore
        .filter((row) => row.contact_id !== subject)
        .map(key)
        .sort(),
    );
    // lineage: the run's snapshot is history, it keeps the grant the run relied on
    const kept = await database.db
      .selectFrom('profiling_snapshots')
      .select('contact_id')
      .where('run_id', '=', report.runId)
      .where('contact_id', '=', subject as number)
      .execute();
    expect(kept).toHaveLength(1);
  });
});
