import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PipelineLauncher } from '../../src/api/api-env.ts';
import { findActiveKey } from '../../src/auth/api-key.repository.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { createQueueLauncher } from '../../src/jobs/queue-launcher.ts';
import { startWorker, type Worker } from '../../src/jobs/worker.ts';
import { createRun, finishRun } from '../../src/registry/registry.repository.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { captureLogger } from '../helpers/silent-logger.ts';
import { allValid, DAY_MS, movableClock, pipelineContext, seedBase, smallOptions } from '../pipelines/pipeline.fixtures.ts';
import { type ApiHarness, bodyOf, createApiHarness, jsonBody } from './api.fixtures.ts';

/*
 * POST /v1/pipeline/runs and GET /v1/pipeline/runs/{id} with the real job queue and a worker in
 * this process on the small pipeline base: a run is queued, taken by the worker and followed to
 * its end, a second request meanwhile is refused (409), and so is one while another process runs
 * the pipeline.
 */

process.env.CIBLE_CODE_VERSION = 'pipeline-runs-api-test';

const NOW = new Date('2026-11-01T06:00:00Z');
const CONTACTS = 300;

let database: DatabaseHandle;
let launcher: PipelineLauncher;
let worker: Worker;
let api: ApiHarness;
const clock = movableClock(NOW);

beforeAll(async () => {
  database = await createTestDatabase();
  await seedBase(database, { seed: 4242, from: new Date(NOW.getTime() - 400 * DAY_MS), to: NOW, consents: allValid(CONTACTS) });
  const context = pipelineContext(database, clock);
  const { kind: _kind, trigger: _trigger, asOf: _asOf, products: _products, ...defaults } = smallOptions();
  worker = await startWorker(context, { concurrency: 1, schedule: false, pollingIntervalSeconds: 0.5 });
  launcher = createQueueLauncher(context, worker.queue, defaults);
  api = await createApiHarness({ database, pipeline: launcher, clock, logger: context.logger });
}, 120_000);
afterAll(async () => {
  await worker?.stop(60_000);
  await api?.close();
});

async function problemOf(response: Response) {
  expect(response.headers.get('content-type')).toContain('application/problem+json');
  return bodyOf(response);
}

/** GET the run until it is over (or the deadline passes). */
async function waitForEnd(runId: number, deadlineMs: number) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const response = await api.call('data_scientist', `/v1/pipeline/runs/${runId}`);
    expect(response.status, await response.clone().text()).toBe(200);
    const run = await bodyOf(response);
    if (run.status !== 'running' && run.status !== 'queued') return run;
    if (Date.now() > deadline) throw new Error(`run ${runId} still ${run.status} after ${deadlineMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('refused before any work', () => {
  it('refuses a bad horizon, a bad or future date, unknown fields and products that are not a list of SKUs', async () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ horizonDays: 0 }, /^body\.horizonDays$/],
      [{ horizonDays: 366 }, /^body\.horizonDays$/],
      [{ horizonDays: 7.5 }, /^body\.horizonDays$/],
      [{ asOf: '2026-02-30' }, /^body\.asOf$/],
      [{ asOf: '01/10/2026' }, /^body\.asOf$/],
      [{ products: [] }, /^body\.products$/],
      [{ products: 'PL-REFILL' }, /^body\.products$/],
      [{ horizon: '30d' }, /^body$/],
    ];
    for (const [body, where] of cases) {
      const response = await api.call('scheduler', '/v1/pipeline/runs', jsonBody('POST', body));
      expect(response.status, JSON.stringify(body)).toBe(400);
      const problem = await problemOf(response);
      expect(problem.errors[0].where, JSON.stringify(body)).toMatch(where);
    }
    const future = await api.call('scheduler', '/v1/pipeline/runs', jsonBody('POST', { asOf: '2026-11-02' }));
    expect(future.status).toBe(400);
    expect((await problemOf(future)).errors).toEqual([{ where: 'body.asOf', problem: 'is in the future; a run can only look back' }]);
  });

  it('names the unknown SKUs', async () => {
    const response = await api.call(
      'admin',
      '/v1/pipeline/runs',
      jsonBody('POST', { products: ['PL-REFILL', 'NOPE-1', 'NOPE-2', 'NOPE-1'] }),
    );
    expect(response.status).toBe(400);
    const problem = await problemOf(response);
    expect(problem.detail).toBe('body.products: unknown SKUs "NOPE-1", "NOPE-2"');
    expect(problem.errors).toEqual([{ where: 'body.products', problem: 'unknown SKUs "NOPE-1", "NOPE-2"' }]);
  });

  it('refuses a body that is not JSON, and other roles', async () => {
    const text = await api.call('scheduler', '/v1/pipeline/runs', {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'all',
    });
    expect(text.status).toBe(415);
    for (const role of ['marketer', 'data_scientist', 'dpo'] as const) {
      expect((await api.call(role, '/v1/pipeline/runs', jsonBody('POST', {}))).status, role).toBe(403);
    }
    expect((await api.call('marketer', '/v1/pipeline/runs/1')).status).toBe(403);
    expect((await api.call('dpo', '/v1/pipeline/runs/1')).status).toBe(403);
  });

  it('answers 404 for an unknown run and 400 for an id that is not a whole number', async () => {
    const missing = await api.call('scheduler', '/v1/pipeline/runs/999999');
    expect(missing.status).toBe(404);
    expect((await problemOf(missing)).detail).toBe('no pipeline run 999999');
    for (const id of ['abc', '1.5', '0', '-1', '1e3']) {
      const response = await api.call('scheduler', `/v1/pipeline/runs/${id}`);
      expect(response.status, id).toBe(400);
      expect((await problemOf(response)).errors[0].where).toBe('path.id');
    }
  });

  it('refuses (409) while another process runs the pipeline', async () => {
    const other = await createRun(database.db, {
      kind: 'pipeline',
      trigger: 'cli',
      asOf: NOW,
      horizonDays: 30,
      params: {},
      startedAt: NOW,
    });
    try {
      const response = await api.call('scheduler', '/v1/pipeline/runs', jsonBody('POST', {}));
      expect(response.status).toBe(409);
      expect((await problemOf(response)).detail).toBe(`pipeline run ${other} is running; try again when it has finished`);
    } finally {
      await finishRun(database.db, other, { status: 'failed', finishedAt: NOW, summary: {}, error: 'test' });
    }
  });
});

describe('a run started through the API', () => {
  it('answers 202 with the run and its Location, refuses a second one while it runs, and is followed to its end', {
    timeout: 180_000,
  }, async () => {
    const started = await api.call('scheduler', '/v1/pipeline/runs', jsonBody('POST', { products: ['PL-REFILL'], horizonDays: 30 }));
    expect(started.status).toBe(202);
    const body = await bodyOf(started);
    expect(body).toEqual({ runId: expect.any(Number), status: 'queued' });
    expect(started.headers.get('location')).toBe(`/v1/pipeline/runs/${body.runId}`);

    const second = await api.call('admin', '/v1/pipeline/runs', jsonBody('POST', {}));
    expect(second.status).toBe(409);
    expect((await problemOf(second)).detail).toMatch(
      new RegExp(`^pipeline run ${body.runId} is (queued|running); try again when it has finished$`),
    );

    const following = await api.call('scheduler', started.headers.get('location') as string);
    expect(following.status, await following.clone().text()).toBe(200);
    expect(await bodyOf(following)).toMatchObject({
      id: body.runId,
      kind: 'pipeline',
      status: expect.stringMatching(/^(queued|running)$/),
      finishedAt: null,
      error: null,
    });

    const run = await waitForEnd(body.runId, 150_000);
    const schedulerId = (await findActiveKey(database.db, api.keys.scheduler))?.id;
    expect(run).toMatchObject({
      id: body.runId,
      kind: 'pipeline',
      status: 'succeeded',
      trigger: `api:api-key:${schedulerId}`,
      asOf: NOW.toISOString(),
      horizonDays: 30,
      params: { products: ['PL-REFILL'] },
      startedAt: NOW.toISOString(),
      finishedAt: NOW.toISOString(),
      error: null,
    });
    expect(run.summary).toMatchObject({ runId: body.runId, kind: 'pipeline', population: CONTACTS });
    // its jobs, in the order they ran, all taken by this process's worker
    expect(run.driver).toBe('queue');
    const names = (run.parts as Array<{ part: string; status: string; attempt: number; worker: string }>).map((part) => part.part);
    expect(names.slice(0, 3)).toEqual(['train', 'score:0', 'score:1']);
    expect(names.at(-1)).toBe('publish');
    expect(names.filter((name) => name.startsWith('rank:')).length).toBeGreaterThan(0);
    for (const part of run.parts)
      expect(part).toMatchObject({ status: 'succeeded', attempt: 1, worker: expect.stringMatching(new RegExp(`:${process.pid}$`)) });
    const refill = (run.summary.targets as Array<{ target: string; status: string }>).find(
      (target) => target.target === 'product:PL-REFILL',
    );
    expect(refill?.status).toBe('champion');

    // the registry shows what the run promoted
    const model = await bodyOf(await api.call('data_scientist', '/v1/models/PL-REFILL'));
    expect(model.champion).toMatchObject({ version: 1, status: 'champion', lineage: { runId: body.runId, populationSize: CONTACTS } });

    // once over, another run may start: as of a past date, for every product
    clock.set(new Date(NOW.getTime() + 3_600_000));
    const next = await api.call('admin', '/v1/pipeline/runs', jsonBody('POST', { asOf: '2026-10-15', horizonDays: 14, products: 'all' }));
    expect(next.status).toBe(202);
    const nextRun = await waitForEnd((await bodyOf(next)).runId, 150_000);
    expect(nextRun).toMatchObject({ status: 'succeeded', asOf: '2026-10-15T00:00:00.000Z', horizonDays: 14, params: { products: null } });
  });

  it('records a failure in the run after the retries and logs it without personal data', { timeout: 90_000 }, async () => {
    const captured = captureLogger();
    const context = { ...pipelineContext(database, clock), logger: captured.logger };
    const failingWorker = await startWorker(context, { concurrency: 1, schedule: false, pollingIntervalSeconds: 0.5 });
    await worker.stop(60_000);
    worker = failingWorker;
    const failing = createQueueLauncher(context, failingWorker.queue, {
      training: { ...smallOptions().training, algorithms: ['no-such-network' as 'mlp'] },
    });
    const runId = await failing.start({ products: ['PL-REFILL'], actor: 'test' });
    const run = await waitForEnd(runId, 60_000);
    expect(run).toMatchObject({ status: 'failed', trigger: 'api:test', error: expect.stringMatching(/^train failed: /) });
    const failures = captured.lines.map((line) => JSON.parse(line)).filter((line) => line.msg.startsWith('job failed'));
    // the first attempt and its two retries
    expect(failures.map((line) => line.attempt)).toEqual([1, 2, 3]);
    const failure = failures.at(-1);
    expect(failure).toMatchObject({ level: 50, runId, part: 'train', last: true, err: { type: expect.any(String) } });
    // the type (and code) only: never the message, which may quote data
    for (const key of Object.keys(failure.err)) expect(['type', 'code']).toContain(key);
    expect(JSON.stringify(failure)).not.toContain(run.error);
    expect(captured.lines.join('')).not.toMatch(/@example\.com|PL-\d{5}/);
  });
});
