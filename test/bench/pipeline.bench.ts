/**
 * npm run bench:pipeline — the whole propensity pipeline on a generated base of 1M contacts,
 * ~10M purchases and 50 products, on PostgreSQL. Prints seconds and rows per stage and the
 * peak RSS. The base is generated in SQL once and reused while it has the expected size
 * (pass --fresh to rebuild it).
 *
 *   BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/cible_bench_pipeline)
 *   BENCH_CONTACTS (default 1000000)
 */
import pg from 'pg';
import { logProgress, terminalProgress } from '../../pipelines/progress.ts';
import { DEFAULT_PIPELINE_OPTIONS, runPipeline } from '../../pipelines/run-pipeline.ts';
import { fixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import { createContext } from '../../src/context.ts';
import { createLogger } from '../../src/logger.ts';

import { AS_OF, contacts, ensureDatabase, generateBase, url } from './bench-base.ts';

async function main(): Promise<void> {
  await ensureDatabase();
  const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
  const context = await createContext(loadConfig({ ...process.env, DATABASE_URL: url }), {
    migrate: true,
    logger,
    clock: fixedClock(new Date()),
  });
  try {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await generateBase(client);
      // a previous bench run's scores and snapshots would only slow this one down
      await client.query('TRUNCATE profiling_snapshots');
    } finally {
      await client.end();
    }
    const report = await runPipeline(
      context,
      { ...DEFAULT_PIPELINE_OPTIONS, kind: 'pipeline', trigger: 'bench', asOf: AS_OF, horizonDays: 30, backend: context.config.tfBackend },
      process.stdout.isTTY ? terminalProgress(process.stdout) : logProgress(logger),
    );
    const total = report.stages.reduce((sum, stage) => sum + stage.seconds, 0);
    console.log(`\npipeline on ${contacts} contacts, backend ${report.backend}, population ${report.population}`);
    console.log('stage                    seconds        rows     rows/s');
    for (const stage of report.stages) {
      const rate = stage.rows > 0 ? Math.round(stage.rows / Math.max(stage.seconds, 1e-3)) : 0;
      console.log(
        `${stage.stage.padEnd(22)} ${stage.seconds.toFixed(1).padStart(9)} ${String(stage.rows).padStart(11)} ${String(rate).padStart(10)}`,
      );
    }
    const champions = report.targets.filter((target) => target.status === 'champion').length;
    console.log(`total ${total.toFixed(1)} s (${(total / 60).toFixed(1)} min); ${champions} champions of ${report.targets.length} targets`);
    console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
  } finally {
    await context.stop();
  }
}

await main();
