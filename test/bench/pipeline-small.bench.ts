/**
 * npm run bench:pipeline-small — the whole pipeline on a small generated base: 1,500 customers
 * arriving over 18 months of a 2-year log (the BG/NBD-like cohort generator of the tests),
 * horizon 182 days, PostgreSQL, each run on a fresh database, after the process has loaded
 * TensorFlow.js and danfojs (printed apart: a process pays it once).
 * Prints the run's time with the defaults (on a base this size the MLP is not trained: too few
 * rows), then the anchor: the candidates and schedule of earlier versions (logistic and MLP, every
 * network sees at least 500,000 rows, no early stopping), the ratio, and both runs' stages.
 * Target: default under 15 s.
 *
 *   BENCH_SMALL_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/cible_bench_small)
 */
import { sql } from 'kysely';
import pg from 'pg';
import { trainNetwork } from '../../models/propensity-network.ts';
import { loadTensorflow } from '../../models/tensorflow.ts';
import { DEFAULT_PIPELINE_OPTIONS, type PipelineReport, runPipeline } from '../../pipelines/run-pipeline.ts';
import { fixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import { createContext } from '../../src/context.ts';
import { createLogger } from '../../src/logger.ts';
import { COHORT_SKU, seedCohort } from '../pipelines/cohort.fixtures.ts';
import { DAY_MS } from '../pipelines/pipeline.fixtures.ts';

const url = process.env.BENCH_SMALL_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/cible_bench_small';
const START = new Date('2024-01-01T00:00:00Z');
const END = new Date(START.getTime() + 730 * DAY_MS);

async function freshDatabase(): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: url.replace(/\/[^/]*$/, '/postgres') });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
}

async function run(
  label: string,
  overrides: Partial<typeof DEFAULT_PIPELINE_OPTIONS.training>,
): Promise<{ seconds: number; training: number; report: PipelineReport }> {
  await freshDatabase();
  const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
  const context = await createContext(loadConfig({ ...process.env, DATABASE_URL: url }), {
    migrate: true,
    logger,
    clock: fixedClock(new Date(END.getTime() + 3_600_000)),
  });
  try {
    const cohort = await seedCohort(context.database, {
      seed: 1500,
      customers: 1500,
      acquisitionFrom: START,
      acquisitionTo: new Date(START.getTime() + 548 * DAY_MS),
      end: END,
      futureDays: 182,
    });
    // the generator writes its rows directly; an import leaves the tables it wrote analysed, as here
    await sql`VACUUM ANALYZE`.execute(context.database.db);
    const began = performance.now();
    const report = await runPipeline(context, {
      ...DEFAULT_PIPELINE_OPTIONS,
      kind: 'pipeline',
      trigger: `bench:${label}`,
      asOf: END,
      horizonDays: 182,
      backend: context.config.tfBackend,
      training: { ...DEFAULT_PIPELINE_OPTIONS.training, ...overrides },
    });
    const seconds = (performance.now() - began) / 1000;
    const training = report.stages.filter((stage) => stage.stage.startsWith('train')).reduce((sum, stage) => sum + stage.seconds, 0);
    const target = report.targets.find((outcome) => outcome.target === `product:${COHORT_SKU}`);
    console.log(
      `${label.padEnd(34)} ${seconds.toFixed(1).padStart(6)} s (training ${training.toFixed(1)} s), ${cohort.purchases} purchases, design ${report.evaluationDesign?.kind}, ${COHORT_SKU}: ${target?.status} ${target?.algorithm} AUC ${target?.auc.model?.toFixed(3)}`,
    );
    return { seconds, training, report };
  } finally {
    await context.stop();
  }
}

// a process pays once for loading the TensorFlow.js backend and danfojs (the feature profile):
// printed apart, so that neither run carries it
const warmUp = performance.now();
const t = await loadTensorflow({ prefer: 'auto' });
(
  await trainNetwork(
    t,
    { rows: 64, features: 2, x: new Float32Array(128), targets: 1, y: new Uint8Array(64) },
    { kind: 'mlp', epochs: 1, batchSize: 64, learningRate: 0.01, l2: 0, seed: 1, positiveWeights: Float32Array.of(1) },
  )
).model.dispose();
await import('danfojs-node');
console.log(
  `process start-up (TensorFlow.js ${t.backend}, danfojs): ${((performance.now() - warmUp) / 1000).toFixed(1)} s, once per process`,
);

const early = await run('default', {});
const fixed = await run('anchor: logistic + MLP, 500k rows seen', { validationShare: 0, minRowsForMlp: 0 });
console.log(`stages (default | anchor):`);
for (const [index, stage] of early.report.stages.entries()) {
  const anchor = fixed.report.stages.find((other, at) => other.stage === stage.stage && at >= index - 2) ?? null;
  console.log(
    `  ${stage.stage.padEnd(22)} ${stage.seconds.toFixed(1).padStart(6)} s | ${anchor ? `${anchor.seconds.toFixed(1).padStart(6)} s` : '     -'}  ${stage.rows > 0 ? `${stage.rows} rows` : ''}`,
  );
}
console.log(
  `pipeline run: default ${early.seconds.toFixed(1)} s, anchor ${fixed.seconds.toFixed(1)} s, ratio ${(early.seconds / fixed.seconds).toFixed(2)}; training ${early.training.toFixed(1)} s vs ${fixed.training.toFixed(1)} s, ratio ${(early.training / fixed.training).toFixed(2)}; target under 15 s: ${early.seconds < 15 ? 'met' : 'not met'}`,
);
