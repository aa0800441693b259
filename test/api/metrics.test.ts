import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/clock.ts';
import { SCORED_SKU, type ScoredBase, seedScoredBase } from '../targeting/targeting.fixtures.ts';
import { type ApiHarness, bodyOf, createApiHarness } from './api.fixtures.ts';

const NOW = new Date('2026-11-20T09:00:00Z');
const minutesBefore = (minutes: number) => new Date(NOW.getTime() - minutes * 60_000);

/** The sample lines of a scrape (no HELP / TYPE comments). */
async function scrape(api: ApiHarness): Promise<{ response: Response; text: string; samples: string[] }> {
  const response = await api.call(null, '/metrics');
  const text = await response.text();
  return { response, text, samples: text.split('\n').filter((line) => line && !line.startsWith('#')) };
}

describe('GET /metrics', () => {
  let api: ApiHarness;
  let base: ScoredBase;

  beforeAll(async () => {
    api = await createApiHarness({ clock: fixedClock(NOW) });
    // real people, scores and a running pipeline run, so that real target lists can be made
    base = await seedScoredBase(api.database, 20, NOW);
    const { db } = api.database;
    // the seeded base's run, still running (the only active run)
    await db.updateTable('pipeline_runs').set({ status: 'running', finished_at: null }).where('trigger', '=', 'test').execute();

    const runs = await db
      .insertInto('pipeline_runs')
      .values([
        // two succeeded nightly runs, 20 and 10 minutes long, the 10-minute one the older
        {
          status: 'succeeded',
          kind: 'pipeline',
          trigger: 'schedule:2026-11-18T01:00:00.000Z',
          as_of: minutesBefore(3000),
          params: '{}',
          driver: 'queue',
          started_at: minutesBefore(3000),
          finished_at: minutesBefore(2990),
        },
        {
          status: 'succeeded',
          kind: 'pipeline',
          trigger: 'schedule:2026-11-19T01:00:00.000Z',
          as_of: minutesBefore(1500),
          params: '{}',
          driver: 'queue',
          started_at: minutesBefore(1500),
          finished_at: minutesBefore(1480),
        },
        {
          status: 'failed',
          kind: 'pipeline',
          trigger: 'api',
          as_of: minutesBefore(200),
          params: '{}',
          driver: 'queue',
          started_at: minutesBefore(200),
          finished_at: minutesBefore(100),
          error: 'train failed',
        },
        // a backtest is a run too, but not a nightly duration
        {
          status: 'succeeded',
          kind: 'backtest',
          trigger: 'cli',
          as_of: minutesBefore(90),
          params: '{}',
          started_at: minutesBefore(90),
          finished_at: minutesBefore(30),
        },
      ])
      .returning('id')
      .execute();
    const [older, newer, failed] = runs.map((row) => Number(row.id));
    const part = (runId: number, name: string, status: 'running' | 'succeeded' | 'failed', attempt: number) => ({
      run_id: runId,
      part: name,
      status,
      attempt,
      worker: 'worker-1',
      started_at: minutesBefore(100),
      finished_at: status === 'running' ? null : minutesBefore(90),
    });
    await db
      .insertInto('pipeline_run_parts')
      .values([
        part(older!, 'train', 'succeeded', 1),
        part(older!, 'score:0', 'succeeded', 2),
        part(newer!, 'score:1', 'succeeded', 1),
        part(failed!, 'train', 'failed', 3),
        part(failed!, 'rank:42', 'failed', 1),
        part(failed!, 'publish', 'running', 1),
      ])
      .execute();
    await db
      .insertInto('consent_sweeps')
      .values({ ran_at: minutesBefore(5), scores_deleted: 3, contacts_affected: 2, report: '{}' })
      .execute();

    // three real lists: two by email, one by SMS
    for (const query of ['channel=email&top=3', 'channel=email&top=2', 'channel=sms&top=2']) {
      const response = await api.call('marketer', `/v1/products/${SCORED_SKU}/targets?${query}`);
      expect(response.status, query).toBe(200);
      await response.body?.cancel();
    }
  });
  afterAll(() => api?.close());

  it('answers without a key, in the Prometheus text format', async () => {
    const { response, text } = await scrape(api);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(text).toContain('# TYPE cible_pipeline_jobs gauge');
    expect(text).toContain('# TYPE cible_http_requests_total counter');
    // process metrics of prom-client's default set
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes \d/m);
  });

  it('counts pipeline jobs by kind and status, and their retries, from the database', async () => {
    const { samples } = await scrape(api);
    const jobs = samples.filter((line) => line.startsWith('cible_pipeline_jobs{') && !line.endsWith(' 0'));
    expect(jobs.sort()).toEqual([
      'cible_pipeline_jobs{part_kind="publish",status="running"} 1',
      'cible_pipeline_jobs{part_kind="rank",status="failed"} 1',
      'cible_pipeline_jobs{part_kind="score",status="succeeded"} 2',
      'cible_pipeline_jobs{part_kind="train",status="failed"} 1',
      'cible_pipeline_jobs{part_kind="train",status="succeeded"} 1',
    ]);
    // every known kind × status is there, at 0 when nothing has it
    expect(samples).toContain('cible_pipeline_jobs{part_kind="publish",status="failed"} 0');
    expect(samples.filter((line) => line.startsWith('cible_pipeline_jobs{'))).toHaveLength(12);
    expect(samples.filter((line) => line.startsWith('cible_pipeline_job_retries_total')).sort()).toEqual([
      'cible_pipeline_job_retries_total{part_kind="publish"} 0',
      'cible_pipeline_job_retries_total{part_kind="rank"} 0',
      'cible_pipeline_job_retries_total{part_kind="score"} 1',
      'cible_pipeline_job_retries_total{part_kind="train"} 2',
    ]);
  });

  it('counts runs by kind and status, and gives the durations of succeeded nightly runs', async () => {
    const { samples } = await scrape(api);
    expect(samples.filter((line) => line.startsWith('cible_pipeline_runs{') && !line.endsWith(' 0')).sort()).toEqual([
      'cible_pipeline_runs{kind="backtest",status="succeeded"} 1',
      'cible_pipeline_runs{kind="pipeline",status="failed"} 1',
      'cible_pipeline_runs{kind="pipeline",status="running"} 1', // the seeded base's run
      'cible_pipeline_runs{kind="pipeline",status="succeeded"} 2',
    ]);
    expect(samples).toContain('cible_pipeline_runs{kind="pipeline",status="queued"} 0');
    expect(samples).toContain('cible_pipeline_last_run_duration_seconds 1200');
    expect(samples).toContain(`cible_pipeline_last_success_timestamp_seconds ${minutesBefore(1480).getTime() / 1000}`);
    expect(samples.filter((line) => line.startsWith('cible_pipeline_run_duration_seconds'))).toEqual([
      'cible_pipeline_run_duration_seconds{quantile="0.5"} 900',
      'cible_pipeline_run_duration_seconds{quantile="0.9"} 1140',
      'cible_pipeline_run_duration_seconds{quantile="max"} 1200',
    ]);
    expect(samples).toContain(`cible_consent_sweep_last_timestamp_seconds ${minutesBefore(5).getTime() / 1000}`);
    expect(samples).toContain('cible_database_up 1');
  });

  it('counts target lists by channel, every channel present', async () => {
    const { samples } = await scrape(api);
    expect(samples.filter((line) => line.startsWith('cible_target_lists')).sort()).toEqual([
      'cible_target_lists{channel="email"} 2',
      'cible_target_lists{channel="phone"} 0',
      'cible_target_lists{channel="postal"} 0',
      'cible_target_lists{channel="push"} 0',
      'cible_target_lists{channel="sms"} 1',
    ]);
  });

  it('counts HTTP requests by route pattern, never by path, and holds no contact data', async () => {
    const person = base.people[0]!;
    await (await api.call('dpo', `/v1/contacts/${person.ref}/export`)).body?.cancel();
    await (await api.call(null, `/v1/contacts/${person.ref}/export`)).body?.cancel();
    await (await api.call(null, `/nowhere/${person.ref}`)).body?.cancel();
    await (
      await api.call('marketer', `/v1/products/${SCORED_SKU}/targets?channel=nope&top=1&note=${encodeURIComponent(person.email)}`)
    ).body?.cancel();
    const { text, samples } = await scrape(api);

    expect(samples).toContain('cible_http_requests_total{method="GET",route="/v1/products/:sku/targets",status="200"} 3');
    expect(samples).toContain('cible_http_requests_total{method="GET",route="/v1/products/:sku/targets",status="400"} 1');
    expect(
      samples.some((line) => line.startsWith('cible_http_requests_total{method="GET",route="/v1/contacts/:ref/export",status="2')),
    ).toBe(true);
    expect(samples).toContain('cible_http_requests_total{method="GET",route="/v1/contacts/:ref/export",status="401"} 1');
    expect(samples).toContain('cible_http_requests_total{method="GET",route="unmatched",status="404"} 1');
    expect(samples.some((line) => line.startsWith('cible_http_requests_total{method="GET",route="/metrics",status="200"}'))).toBe(true);
    expect(samples).toContain('cible_http_request_duration_seconds_count{method="GET",route="/v1/products/:sku/targets"} 4');

    for (const person of base.people) {
      expect(text).not.toContain(person.ref);
      expect(text).not.toContain(person.email);
      expect(text).not.toContain(person.phone);
    }
    expect(text).not.toMatch(/@example\.com|TG-0/);
  });

  it('is documented next to /health, without roles, so the role matrix leaves it alone', async () => {
    const document = await bodyOf(await api.call(null, '/openapi.json'));
    expect(document.paths['/metrics'].get['x-roles']).toBeUndefined();
    expect(Object.keys(document.paths['/metrics'].get.responses['200'].content)).toEqual(['text/plain']);
  });
});

describe('GET /metrics when the database does not answer', () => {
  it('still answers with the process figures, says the database is down, and logs no message', async () => {
    const api = await createApiHarness();
    await api.close();
    const { response, samples } = await scrape(api);
    expect(response.status).toBe(200);
    expect(samples).toContain('cible_database_up 0');
    expect(samples.some((line) => line.startsWith('cible_pipeline_jobs'))).toBe(false);
    expect(samples.some((line) => line.startsWith('cible_target_lists'))).toBe(false);
    expect(samples.some((line) => line.startsWith('process_cpu_user_seconds_total'))).toBe(true);
    const warnings = api.logLines
      .map((line) => JSON.parse(line))
      .filter((entry) => entry.msg === 'metrics: the database could not be read');
    expect(warnings).toHaveLength(1);
    expect(Object.keys(warnings[0].err)).toEqual(['type']);
  });
});
