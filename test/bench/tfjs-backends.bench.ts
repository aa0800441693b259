// npx tsx test/bench/tfjs-backends.bench.ts — which TensorFlow.js backend runs the propensity networks fastest.
// Usage: npx tsx test/bench/tfjs-backends.bench.ts [--backends cpu,wasm,tensorflow] [--rows 200000] [--explain-rows 50000]
// Each backend runs in its own process, one after the other (tfjs backends are process-global, and
// running them side by side would share the cores). Synthetic data with a planted signal: 60 standardised
// features, 50 targets with base rates from 0.5% to 10%, partly non-linear so the mlp has something to find.
// Jobs: train logistic and mlp (2 epochs, batch 2048), predict `rows` fresh rows, explain `explain-rows`
// rows by 12 groups; then the AUC of one target on the fresh rows, and the projected cost of the job
// auto's choice is made for: train the mlp, predict 1M rows, explain 1M rows. Not a test: run it on a quiet machine.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { rocAuc, strided } from '../../models/metrics.ts';
import {
  explainByGroups,
  predictProbabilities,
  type TrainedNetwork,
  type TrainingSet,
  trainNetwork,
} from '../../models/propensity-network.ts';
import { mulberry32 } from '../../models/random.ts';
import { type BackendName, loadTensorflow } from '../../models/tensorflow.ts';

const { values } = parseArgs({
  options: {
    backend: { type: 'string' },
    backends: { type: 'string' },
    rows: { type: 'string', default: '200000' },
    'explain-rows': { type: 'string', default: '50000' },
  },
});
const ROWS = Number(values.rows);
const EXPLAIN_ROWS = Number(values['explain-rows']);
const FEATURES = 60;
const TARGETS = 50;
const GROUPS = Array.from({ length: 12 }, (_, g) => ({
  name: `group${g}`,
  columns: Array.from({ length: FEATURES / 12 }, (_, k) => g * (FEATURES / 12) + k),
}));
const AUC_TARGET = 25;
const PROJECTED_ROWS = 1_000_000;

interface Timing {
  job: string;
  seconds: number;
}
interface BackendReport {
  backend: BackendName;
  timings: Timing[];
  auc: { oracle: number; logistic: number; mlp: number };
}

interface Truth {
  /** per target: 6 (feature, coefficient) pairs, and one interaction pair with its coefficient */
  terms: { features: Int32Array; coefficients: Float64Array; pair: [number, number]; pairCoefficient: number }[];
  intercepts: Float64Array;
}

function plantTruth(random: () => number, gaussian: () => number): Truth {
  const terms = Array.from({ length: TARGETS }, () => {
    const features = Int32Array.from({ length: 6 }, () => Math.floor(random() * FEATURES));
    const coefficients = Float64Array.from({ length: 6 }, () => 0.6 * gaussian());
    const pair: [number, number] = [Math.floor(random() * FEATURES), Math.floor(random() * FEATURES)];
    return { features, coefficients, pair, pairCoefficient: 0.5 + 0.5 * random() };
  });
  return { terms, intercepts: new Float64Array(TARGETS) };
}

function signal(truth: Truth, x: Float32Array, row: number, target: number): number {
  const term = truth.terms[target]!;
  let z = truth.intercepts[target]!;
  for (let k = 0; k < 6; k++) z += term.coefficients[k]! * x[row * FEATURES + term.features[k]!]!;
  return z + term.pairCoefficient * x[row * FEATURES + term.pair[0]]! * x[row * FEATURES + term.pair[1]]!;
}

/** Intercepts such that the mean probability of target t is its base rate, 0.5% to 10% log-spaced. */
function calibrate(truth: Truth, x: Float32Array, rows: number): void {
  for (let t = 0; t < TARGETS; t++) {
    const rate = 0.005 * 20 ** (t / (TARGETS - 1));
    let low = -20;
    let high = 5;
    for (let step = 0; step < 40; step++) {
      truth.intercepts[t] = (low + high) / 2;
      let sum = 0;
      for (let r = 0; r < rows; r++) sum += 1 / (1 + Math.exp(-signal(truth, x, r, t)));
      if (sum / rows > rate) high = truth.intercepts[t]!;
      else low = truth.intercepts[t]!;
    }
  }
}

function sample(truth: Truth, rows: number, random: () => number, gaussian: () => number): TrainingSet & { z: Float32Array } {
  const x = new Float32Array(rows * FEATURES);
  for (let i = 0; i < x.length; i++) x[i] = gaussian();
  const y = new Uint8Array(rows * TARGETS);
  const z = new Float32Array(rows * TARGETS);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < TARGETS; t++) {
      const logit = signal(truth, x, r, t);
      z[r * TARGETS + t] = logit;
      y[r * TARGETS + t] = random() < 1 / (1 + Math.exp(-logit)) ? 1 : 0;
    }
  }
  return { rows, features: FEATURES, x, targets: TARGETS, y, z };
}

async function timed<T>(timings: Timing[], job: string, run: () => Promise<T>): Promise<T> {
  const began = process.hrtime.bigint();
  const result = await run();
  timings.push({ job, seconds: Number(process.hrtime.bigint() - began) / 1e9 });
  return result;
}

async function runBackend(backend: BackendName): Promise<BackendReport> {
  const random = mulberry32(20240601);
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const truth = plantTruth(random, gaussian);
  calibrate(truth, sample(truth, 20_000, random, gaussian).x, 20_000);
  const train = sample(truth, ROWS, random, gaussian);
  const fresh = sample(truth, ROWS, random, gaussian);

  const positiveWeights = new Float32Array(TARGETS);
  for (let t = 0; t < TARGETS; t++) {
    let positives = 0;
    for (let r = 0; r < ROWS; r++) positives += train.y[r * TARGETS + t]!;
    positiveWeights[t] = Math.min((ROWS - positives) / Math.max(positives, 1), 50);
  }

  const timings: Timing[] = [];
  const t = await timed(timings, 'load', () => loadTensorflow({ prefer: backend }));
  const common = { epochs: 2, batchSize: 2048, learningRate: 0.01, l2: 1e-5, positiveWeights, seed: 1 };
  const networks: Record<'logistic' | 'mlp', TrainedNetwork> = {
    logistic: await timed(timings, 'train logistic', () => trainNetwork(t, train, { ...common, kind: 'logistic' })),
    mlp: await timed(timings, 'train mlp', () => trainNetwork(t, train, { ...common, kind: 'mlp', hiddenUnits: 64 })),
  };
  const auc = { oracle: 0, logistic: 0, mlp: 0 };
  const labels = Uint8Array.from(strided(Float32Array.from(fresh.y), TARGETS, AUC_TARGET));
  auc.oracle = rocAuc(labels, strided(fresh.z, TARGETS, AUC_TARGET));
  for (const kind of ['logistic', 'mlp'] as const) {
    const p = await timed(timings, `predict ${kind} ${ROWS} rows`, () =>
      predictProbabilities(t, networks[kind], fresh.x, fresh.rows, { batchRows: 65_536 }),
    );
    auc[kind] = rocAuc(labels, strided(p, TARGETS, AUC_TARGET));
  }
  const explained = fresh.x.subarray(0, EXPLAIN_ROWS * FEATURES);
  for (const kind of ['logistic', 'mlp'] as const) {
    await timed(timings, `explain ${kind} ${EXPLAIN_ROWS} rows`, () =>
      explainByGroups(t, networks[kind], explained, EXPLAIN_ROWS, GROUPS, { batchRows: 65_536 }),
    );
  }
  return { backend, timings, auc };
}

function nativeInstalled(): boolean {
  try {
    createRequire(import.meta.url).resolve('tfjs-node-native');
    return true;
  } catch {
    return false;
  }
}

function seconds(report: BackendReport, job: string): number {
  const timing = report.timings.find((entry) => entry.job === job);
  if (!timing) throw new Error(`no timing for ${job} on ${report.backend}`);
  return timing.seconds;
}

if (values.backend) {
  const report = await runBackend(values.backend as BackendName);
  process.stdout.write(`${JSON.stringify(report)}\n`);
} else {
  const backends = values.backends
    ? (values.backends.split(',') as BackendName[])
    : (['cpu', 'wasm', ...(nativeInstalled() ? ['tensorflow' as const] : [])] as BackendName[]);
  const reports: BackendReport[] = [];
  for (const backend of backends) {
    process.stderr.write(`running ${backend}…\n`);
    const child = spawnSync(
      process.execPath,
      [
        ...process.execArgv,
        fileURLToPath(import.meta.url),
        '--backend',
        backend,
        '--rows',
        String(ROWS),
        '--explain-rows',
        String(EXPLAIN_ROWS),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 20 },
    );
    if (child.status !== 0) {
      process.stderr.write(`${backend} failed (exit ${child.status})\n`);
      continue;
    }
    reports.push(JSON.parse(child.stdout.trim().split('\n').at(-1)!) as BackendReport);
  }

  console.log(`${ROWS} rows × ${FEATURES} features, ${TARGETS} targets; explain: ${EXPLAIN_ROWS} rows × ${GROUPS.length} groups\n`);
  console.log(`${'backend'.padEnd(12)}${'job'.padEnd(32)}${'seconds'.padStart(9)}`);
  for (const report of reports) {
    for (const { job, seconds } of report.timings) {
      console.log(`${report.backend.padEnd(12)}${job.padEnd(32)}${seconds.toFixed(2).padStart(9)}`);
    }
  }
  console.log(`\nAUC of target ${AUC_TARGET} on ${ROWS} fresh rows (oracle = the true logit)`);
  for (const { backend, auc } of reports) {
    console.log(`${backend.padEnd(12)}oracle ${auc.oracle.toFixed(3)}  logistic ${auc.logistic.toFixed(3)}  mlp ${auc.mlp.toFixed(3)}`);
  }
  console.log(`\nProjected: train mlp (${ROWS} rows, 2 epochs) + predict ${PROJECTED_ROWS} rows + explain ${PROJECTED_ROWS} rows`);
  const totals = reports.map((report) => ({
    backend: report.backend,
    seconds:
      seconds(report, 'train mlp') +
      (seconds(report, `predict mlp ${ROWS} rows`) * PROJECTED_ROWS) / ROWS +
      (seconds(report, `explain mlp ${EXPLAIN_ROWS} rows`) * PROJECTED_ROWS) / EXPLAIN_ROWS,
  }));
  for (const { backend, seconds } of totals) console.log(`${backend.padEnd(12)}${seconds.toFixed(1).padStart(9)} s`);
  const best = totals.reduce((a, b) => (b.seconds < a.seconds ? b : a), totals[0]!);
  if (best) console.log(`\nfastest: ${best.backend}`);
}
