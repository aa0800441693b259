import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/clock.ts';
import { createRun, ensureModel, finishRun, insertVersion, promoteVersion } from '../../src/registry/registry.repository.ts';
import { type ApiHarness, bodyOf, createApiHarness } from './api.fixtures.ts';

/*
 * GET /v1/models and /v1/models/{sku} over a registry written by the registry repository:
 * the champion compared with its baselines, the last ten versions with metrics and lineage,
 * a champion older than those, models never promoted, unknown models.
 */

const NOW = new Date('2026-11-01T06:00:00Z');
const HOUR_MS = 3_600_000;

function gains(topLift: number) {
  return Array.from({ length: 10 }, (_, index) => ({
    decile: index + 1,
    lift: index === 0 ? topLift : 1,
    cumulativeGain: (index + 1) / 10,
  }));
}

function evaluation(auc: number, topLift: number) {
  return {
    rocAuc: auc,
    prAuc: auc / 2,
    logLoss: 0.3,
    brier: 0.1,
    expectedCalibrationError: 0.02,
    rows: 300,
    gains: gains(topLift),
    reliability: [],
  };
}

let api: ApiHarness;
let runId: number;

beforeAll(async () => {
  api = await createApiHarness({ clock: fixedClock(NOW) });
  const { db } = api.database;
  const product = await db
    .insertInto('products')
    .values({ sku: 'PL-REFILL', name: 'Refill pack', category: 'supplies' })
    .returning('id')
    .executeTakeFirstOrThrow();
  runId = await createRun(db, { kind: 'pipeline', trigger: 'test', asOf: NOW, horizonDays: 30, params: {}, startedAt: NOW });
  await finishRun(db, runId, { status: 'succeeded', finishedAt: NOW, summary: {} });

  const register = async (modelId: number, version: number, status: 'candidate' | 'rejected', auc: number) =>
    insertVersion(db, {
      modelId,
      algorithm: version % 2 === 0 ? 'mlp' : 'logistic',
      status,
      runId,
      trainedAt: new Date(NOW.getTime() - (20 - version) * HOUR_MS),
      consentSnapshotAt: new Date(NOW.getTime() - (20 - version) * HOUR_MS),
      populationSize: 300 + version,
      trainingCutoff: new Date('2026-10-02T06:00:00Z'),
      horizonDays: 30,
      featureList: ['recency_days', 'frequency'],
      codeVersion: 'models-test',
      trainingDataHash: 'ab'.repeat(32),
      metrics: { evaluation: evaluation(auc, 2 + version / 10), importance: [{ group: 'recency', aucDrop: 0.05 }] },
      baselineMetrics: { rfm: evaluation(0.6, 1.5), bgnbd: { ...evaluation(0.62, 1.7), rocAuc: null } },
      decisionReason: `version ${version}`,
      networkId: null,
      evaluationNetworkId: null,
      outputIndex: 0,
    });

  // PL-REFILL: twelve versions, the third one champion (older than the last ten)
  const refill = await ensureModel(db, { kind: 'product', key: 'PL-REFILL', productId: product.id });
  for (let version = 1; version <= 12; version++) {
    const { id } = await register(refill, version, version === 5 ? 'rejected' : 'candidate', 0.7 + version / 100);
    if (version === 3) await promoteVersion(db, refill, id, NOW);
  }
  // a category never promoted, and "any" with a champion
  const crafts = await ensureModel(db, { kind: 'category', key: 'crafts', productId: null });
  await register(crafts, 1, 'rejected', 0.5);
  const any = await ensureModel(db, { kind: 'any', key: 'any', productId: null });
  const { id } = await register(any, 1, 'candidate', 0.81);
  await promoteVersion(db, any, id, NOW);
});
afterAll(() => api?.close());

describe('GET /v1/models', () => {
  it('lists every model with its champion against the baselines, and its number of versions', async () => {
    const response = await api.call('marketer', '/v1/models');
    expect(response.status).toBe(200);
    const { models } = await bodyOf(response);
    expect(models.map((model: { target: { kind: string; key: string } }) => `${model.target.kind}:${model.target.key}`)).toEqual([
      'any:any',
      'category:crafts',
      'product:PL-REFILL',
    ]);
    const [any, crafts, refill] = models;
    expect(crafts).toEqual({ target: { kind: 'category', key: 'crafts' }, versions: 1, champion: null });
    expect(any.champion).toMatchObject({ version: 1, algorithm: 'logistic' });
    expect(refill).toEqual({
      target: { kind: 'product', key: 'PL-REFILL' },
      versions: 12,
      champion: {
        version: 3,
        algorithm: 'logistic',
        trainedAt: new Date(NOW.getTime() - 17 * HOUR_MS).toISOString(),
        horizonDays: 30,
        populationSize: 303,
        auc: { model: 0.73, rfm: 0.6, bgnbd: null },
        liftTopDecile: { model: 2.3, rfm: 1.5, bgnbd: 1.7 },
      },
    });
  });

  it('is open to data scientists, marketers, schedulers and DPOs only', async () => {
    for (const role of ['data_scientist', 'marketer', 'scheduler', 'dpo'] as const)
      expect((await api.call(role, '/v1/models')).status, role).toBe(200);
    expect((await api.call('admin', '/v1/models')).status).toBe(403);
  });
});

describe('GET /v1/models/{sku}', () => {
  it('gives the champion and the last ten versions with full metrics and lineage', async () => {
    const response = await api.call('data_scientist', '/v1/models/PL-REFILL');
    expect(response.status).toBe(200);
    const model = await bodyOf(response);
    expect(model.target).toEqual({ kind: 'product', key: 'PL-REFILL' });
    expect(model.versionCount).toBe(12);
    expect(model.versions.map((version: { version: number }) => version.version)).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3]);
    expect(model.versions.find((version: { version: number }) => version.version === 5).status).toBe('rejected');
    expect(model.champion).toMatchObject({
      version: 3,
      status: 'champion',
      algorithm: 'logistic',
      promotedAt: NOW.toISOString(),
      decisionReason: 'version 3',
      lineage: {
        runId,
        consentSnapshotAt: new Date(NOW.getTime() - 17 * HOUR_MS).toISOString(),
        populationSize: 303,
        trainingCutoff: '2026-10-02T06:00:00.000Z',
        horizonDays: 30,
        codeVersion: 'models-test',
        trainingDataHash: 'ab'.repeat(32),
        features: ['recency_days', 'frequency'],
      },
    });
    expect(model.champion.metrics.evaluation.rocAuc).toBeCloseTo(0.73, 10);
    expect(model.champion.metrics.evaluation.gains).toHaveLength(10);
    expect(model.champion.metrics.importance).toEqual([{ group: 'recency', aucDrop: 0.05 }]);
    expect(model.champion.baselineMetrics.rfm.rocAuc).toBe(0.6);
    expect(model.champion.baselineMetrics.bgnbd.rocAuc).toBeNull();
  });

  it('finds "any", "category:NAME" and "product:SKU", and a model never promoted', async () => {
    const any = await bodyOf(await api.call('dpo', '/v1/models/any'));
    expect(any).toMatchObject({ target: { kind: 'any', key: 'any' }, versionCount: 1, champion: { version: 1 } });
    const crafts = await bodyOf(await api.call('dpo', '/v1/models/category:crafts'));
    expect(crafts).toMatchObject({
      target: { kind: 'category', key: 'crafts' },
      champion: null,
      versions: [{ version: 1, status: 'rejected' }],
    });
    const encoded = await api.call('dpo', `/v1/models/${encodeURIComponent('category:crafts')}`);
    expect((await bodyOf(encoded)).target).toEqual({ kind: 'category', key: 'crafts' });
    const prefixed = await bodyOf(await api.call('dpo', '/v1/models/product:PL-REFILL'));
    expect(prefixed.champion.version).toBe(3);
  });

  it('answers 404 problem+json for an unknown model, and 403 to other roles', async () => {
    const missing = await api.call('data_scientist', '/v1/models/NOPE-42');
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toContain('application/problem+json');
    expect((await bodyOf(missing)).detail).toBe('no model for product:NOPE-42; GET /v1/models lists them');
    expect((await api.call('data_scientist', '/v1/models/category:nope')).status).toBe(404);
    for (const role of ['marketer', 'scheduler', 'admin'] as const)
      expect((await api.call(role, '/v1/models/PL-REFILL')).status, role).toBe(403);
  });
});
