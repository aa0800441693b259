/**
 * npm run bench:workers — the pipeline run of bench:pipeline (1M contacts, 50 products,
 * PostgreSQL), queued and run by 1 `cible worker` process, then by 2, on the same base. Prints
 * both wall times (queued → published), the speed-up, and which worker did each part.
 *
 *   BENCH_DATABASE_URL, BENCH_CONTACTS (see bench-base.ts)
 *   BENCH_SHARDS (default 2): scoring shards of each run, the same for both
 *   BENCH_WORKERS (default "1,2"): the worker counts to time
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import pg from 'pg';
import { DEFAULT_PIPELINE_OPTIONS } from '../../pipelines/run-pipeline.ts';
import { systemClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import { createContext } from '../../src/context.ts';
import { openJobQueue } from '../../src/jobs/job-queue.ts';
import { enqueueRun } from '../../src/jobs/pipeline-jobs.ts';
import { createLogger } from '../../src/logger.ts';
import { AS_OF, contacts, ensureDatabase, generateBase, url } from './bench-base.ts';

const shards = Number(process.env.BENCH_SHARDS ?? 2);
const counts = (process.env.BENCH_WORKERS ?? '1,2').split(',').map(Number);

function startWorker(): ChildProcess {
  const child = spawn('node', ['bin/cible.js', 'worker', '--no-schedule'], {
    env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'warn', CIBLE_SCORE_SHARDS: String(shards), CIBLE_JOB_TIMEOUT_SECONDS: '7200' },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  return child;
}

async function main(): Promise<void> {
  await ensureDatabase();
  const config = loadConfig({ ...process.env, DATABASE_URL: url, CIBLE_SCORE_SHARDS: String(shards), CIBLE_JOB_TIMEOUT_SECONDS: '7200' });
  const context = await createContext(config, { migrate: true, logger: createLogger('warn'), clock: systemClock });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const queue = await openJobQueue(context);
  const results: Array<{ workers: number; seconds: number; maxRssMb: number }> = [];
  try {
    await generateBase(client);
    for (const workers of counts) {
      await client.query('TRUNCATE profiling_snapshots');
      const children = Array.from({ length: workers }, () => startWorker());
      const began = performance.now();
      const runId = await enqueueRun(
        context,
        queue,
        { trigger: `bench:workers:${workers}`, asOf: AS_OF, horizonDays: 30 },
        { ...DEFAULT_PIPELINE_OPTIONS, backend: config.tfBackend },
      );
      let status = 'queued';
      while (status === 'queued' || status === 'running') {
        await new Promise((resolve) => setTimeout(resolve, 2000));
        status =
          (await client.query<{ status: string }>('SELECT status FROM pipeline_runs WHERE id = $1', [runId])).rows[0]?.status ?? 'missing';
      }
      const seconds = (performance.now() - began) / 1000;
      for (const child of children) child.kill('SIGTERM');
      await Promise.all(children.map((child) => (child.exitCode === null ? once(child, 'exit') : Promise.resolve())));
      if (status !== 'succeeded') throw new Error(`run ${runId} ended ${status}`);
      const parts = await client.query<{ part: string; worker: string; seconds: number; rows: number }>(
        `SELECT part, worker, extract(epoch FROM finished_at - started_at)::float AS seconds, rows FROM pipeline_run_parts WHERE run_id = $1 ORDER BY started_at`,
        [runId],
      );
      console.log(`\n${workers} worker process(es), ${shards} scoring shards: run ${runId} took ${seconds.toFixed(1)} s`);
      const byWorker = new Map<string, number>();
      for (const part of parts.rows) byWorker.set(part.worker, (byWorker.get(part.worker) ?? 0) + part.seconds);
      for (const [worker, busy] of byWorker) console.log(`  worker ${worker}: busy ${busy.toFixed(1)} s`);
      const kinds = new Map<string, { count: number; seconds: number }>();
      for (const part of parts.rows) {
        const kind = part.part.split(':')[0] as string;
        const entry = kinds.get(kind) ?? { count: 0, seconds: 0 };
        kinds.set(kind, { count: entry.count + 1, seconds: entry.seconds + part.seconds });
      }
      for (const [kind, entry] of kinds)
        console.log(`  ${kind.padEnd(8)} ${String(entry.count).padStart(3)} job(s), ${entry.seconds.toFixed(1).padStart(7)} s of work`);
      results.push({ workers, seconds, maxRssMb: 0 });
    }
    console.log(`\npipeline on ${contacts} contacts through the job queue (PostgreSQL, ${shards} scoring shards):`);
    const base = results[0];
    for (const result of results) {
      console.log(
        `  ${result.workers} worker(s): ${result.seconds.toFixed(1)} s${base && result !== base ? `, speed-up ×${(base.seconds / result.seconds).toFixed(2)} over ${base.workers}` : ''}`,
      );
    }
  } finally {
    await queue.stop({ timeoutMs: 1000 });
    await client.end();
    await context.stop();
  }
}

await main();
