import type { Command } from 'commander';
import type { BinaryMetrics } from '../../models/metrics.ts';
import type { NetworkKind } from '../../models/propensity-network.ts';
import { logProgress, terminalProgress } from '../../pipelines/progress.ts';
import type { DEFAULT_PIPELINE_OPTIONS, PipelineOptions, PipelineReport, TargetOutcome } from '../../pipelines/run-pipeline.ts';
import type { AppContext } from '../context.ts';
import { positiveInteger, UserError, withContext } from './cli-context.ts';
import { deferDefinition } from './deferred-definition.ts';

interface PipelineFlags {
  products: string;
  asOf?: string;
  horizon: string;
  minPositives?: number;
  minNegatives?: number;
  epochs?: number;
  origins?: number;
  originStep?: string;
  hiddenUnits?: number;
  algorithms: string;
  tolerance: string;
  modelsDir?: string;
  json?: boolean;
}

export function parseHorizon(value: string): number {
  const match = /^(\d+)([dw])$/.exec(value.trim());
  if (!match) throw new UserError(`--horizon expects a number of days or weeks such as 30d or 4w, got "${value}"`);
  const days = Number(match[1]) * (match[2] === 'w' ? 7 : 1);
  if (days < 1 || days > 730) throw new UserError(`--horizon must be between 1 day and 730 days, got ${days} days`);
  return days;
}

/** `earliest`: the first date a run may look back to (the registry's, loaded with the command's modules). */
export function parseAsOf(value: string, now: Date, earliest?: Date): Date {
  const text = value.trim();
  const match = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:?\d{2})?)?$/.exec(text);
  if (!match) throw new UserError(`--as-of expects a date such as 2011-09-01 (or an ISO instant), got "${value}"`);
  const [, datePart, timePart, offset] = match;
  // a date or a time without an offset is UTC, as in imports; never the machine's time zone
  const date = new Date(`${datePart}T${timePart ?? '00:00:00'}${offset ?? 'Z'}`);
  if (Number.isNaN(date.getTime()) || new Date(`${datePart}T00:00:00Z`).toISOString().slice(0, 10) !== datePart) {
    throw new UserError(`--as-of is not a real date: "${value}"`);
  }
  if (date.getTime() > now.getTime()) throw new UserError(`--as-of ${value} is in the future; a run can only look back`);
  if (earliest && date < earliest) {
    throw new UserError(`--as-of ${value} is before ${earliest.toISOString().slice(0, 10)}: not a date a run can look back to`);
  }
  return date;
}

function parseProducts(value: string): string[] | null {
  if (value.trim() === 'all') return null;
  const skus = value
    .split(',')
    .map((sku) => sku.trim())
    .filter(Boolean);
  if (skus.length === 0) throw new UserError('--products expects "all" or SKUs separated by commas');
  return skus;
}

function parseAlgorithms(value: string): NetworkKind[] {
  const kinds = value.split(',').map((kind) => kind.trim());
  for (const kind of kinds) {
    if (kind !== 'logistic' && kind !== 'mlp') throw new UserError(`--algorithms: unknown algorithm "${kind}" (logistic, mlp)`);
  }
  return kinds as NetworkKind[];
}

async function buildOptions(context: AppContext, flags: PipelineFlags, kind: 'pipeline' | 'backtest'): Promise<PipelineOptions> {
  const [{ defaultOptionsFor }, { EARLIEST_RUN_DATE }] = await Promise.all([
    import('../../pipelines/run-pipeline.ts'),
    import('../registry/registry.repository.ts'),
  ]);
  const tolerance = Number(flags.tolerance);
  if (!Number.isFinite(tolerance) || tolerance < 0 || tolerance > 0.2) {
    throw new UserError(`--tolerance expects an AUC difference between 0 and 0.2, got "${flags.tolerance}"`);
  }
  // the installation's special categories and backend over the built-in defaults
  const defaults = defaultOptionsFor(context);
  return {
    ...defaults,
    kind,
    trigger: kind === 'backtest' ? 'cli:backtest' : 'cli',
    asOf: flags.asOf ? parseAsOf(flags.asOf, context.clock.now(), EARLIEST_RUN_DATE) : null,
    horizonDays: parseHorizon(flags.horizon),
    products: parseProducts(flags.products),
    minPositives: flags.minPositives ?? defaults.minPositives,
    minNegatives: flags.minNegatives ?? defaults.minNegatives,
    promotionTolerance: tolerance,
    training: {
      ...defaults.training,
      algorithms: parseAlgorithms(flags.algorithms),
      epochs: flags.epochs ?? defaults.training.epochs,
      hiddenUnits: flags.hiddenUnits ?? defaults.training.hiddenUnits,
    },
    maxOrigins: flags.origins ?? defaults.maxOrigins,
    originStepDays: flags.originStep ? parseHorizon(flags.originStep) : defaults.originStepDays,
    modelsDir: flags.modelsDir ?? null,
  };
}

type PipelineDefaults = typeof DEFAULT_PIPELINE_OPTIONS;

/** The pipeline's settings, loaded when a command needs them (the pipeline module is heavy to load). */
const pipelineDefaults = async (): Promise<PipelineDefaults> => (await import('../../pipelines/run-pipeline.ts')).DEFAULT_PIPELINE_OPTIONS;

function withPipelineOptions(command: Command, defaultHorizon: string, defaults: PipelineDefaults): Command {
  return command
    .option('--products <list>', 'all, or SKUs separated by commas', 'all')
    .option('--horizon <duration>', 'prediction horizon, e.g. 30d or 4w', defaultHorizon)
    .option(
      '--min-positives <n>',
      `buyers a target needs in each window (default ${defaults.minPositives})`,
      positiveInteger('--min-positives'),
    )
    .option(
      '--min-negatives <n>',
      `non-buyers a target needs in each window (default ${defaults.minNegatives})`,
      positiveInteger('--min-negatives'),
    )
    .option(
      '--epochs <n>',
      `minimum training epochs; small training sets get more (default ${defaults.training.epochs})`,
      positiveInteger('--epochs'),
    )
    .option('--origins <n>', `rolling origins stacked for training, at most (default ${defaults.maxOrigins})`, positiveInteger('--origins'))
    .option('--origin-step <duration>', `days between stacked origins (default ${defaults.originStepDays}d)`)
    .option(
      '--hidden-units <n>',
      `units of the MLP's hidden layer (default ${defaults.training.hiddenUnits})`,
      positiveInteger('--hidden-units'),
    )
    .option('--algorithms <list>', 'networks to train and compare', defaults.training.algorithms.join(','))
    .option('--tolerance <auc>', 'promotion tolerance on AUC against the champion', String(defaults.promotionTolerance))
    .option('--models-dir <dir>', 'also write the trained networks there (model.json + weights.bin) for inspection')
    .option('--json', 'print the run report as JSON');
}

/** What a plain `cible pipeline run` does: every product, the default horizon and settings. */
export async function defaultRunOptions(context: AppContext): Promise<PipelineOptions> {
  const defaults = await pipelineDefaults();
  const flags = {
    products: 'all',
    horizon: '30d',
    algorithms: defaults.training.algorithms.join(','),
    tolerance: String(defaults.promotionTolerance),
  };
  return buildOptions(context, flags satisfies PipelineFlags, 'pipeline');
}

/** Unknown SKUs would silently model nothing: refuse them, naming them. */
async function checkProducts(context: AppContext, options: PipelineOptions): Promise<PipelineOptions> {
  if (!options.products) return options;
  const known = await context.database.db.selectFrom('products').select('sku').where('sku', 'in', options.products).execute();
  const missing = options.products.filter((sku) => !known.some((row) => row.sku === sku));
  if (missing.length > 0) throw new UserError(`--products: unknown SKU${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  return options;
}

export function progressFor(context: AppContext) {
  return process.stderr.isTTY ? terminalProgress(process.stderr) : logProgress(context.logger);
}

export function registerPipelineCommands(program: Command): void {
  const pipeline = program
    .command('pipeline')
    .description('the propensity pipeline: consent snapshot, features, training, evaluation, promotion, scoring');
  const run = pipeline
    .command('run')
    .description('train, evaluate against the baselines, promote and score, for every product with enough buyers')
    .option('--as-of <date>', 'run as if today were this date (only data before it is visible)')
    .action((flags: PipelineFlags) =>
      withContext({ migrate: true }, async (context) => {
        const { runPipeline } = await import('../../pipelines/run-pipeline.ts');
        const report = await runPipeline(
          context,
          await checkProducts(context, await buildOptions(context, flags, 'pipeline')),
          progressFor(context),
        );
        if (flags.json) console.log(JSON.stringify(report, null, 2));
        else printRun(report);
      }),
    );
  deferDefinition(pipeline, async () => void withPipelineOptions(run, '30d', await pipelineDefaults()));

  const backtest = program
    .command('backtest')
    .description('run the pipeline as if today were --as-of, then score it against what really happened in [as-of, as-of + horizon)')
    .requiredOption('--as-of <date>', 'the date to go back to')
    .action((flags: PipelineFlags) =>
      withContext({ migrate: true }, async (context) => {
        const { runPipeline } = await import('../../pipelines/run-pipeline.ts');
        const report = await runPipeline(
          context,
          await checkProducts(context, await buildOptions(context, flags, 'backtest')),
          progressFor(context),
        );
        if (flags.json) console.log(JSON.stringify(report, null, 2));
        else printBacktest(report);
      }),
    );
  deferDefinition(backtest, async () => void withPipelineOptions(backtest, '90d', await pipelineDefaults()));
}

const f3 = (value: number | null | undefined) =>
  value === null || value === undefined || Number.isNaN(value) ? '   n/a' : value.toFixed(3).padStart(6);

export function printRun(report: PipelineReport): void {
  console.log(`run ${report.runId} as of ${report.asOf.slice(0, 10)}, horizon ${report.horizonDays} days, backend ${report.backend}`);
  console.log(`profile-able population: ${report.population}`);
  console.log(`cutoffs: evaluation ${report.cutoffs.evaluation}, training ${report.cutoffs.productionTraining.join(', ')}`);
  printDesign(report);
  console.log('');
  console.log(
    `${'target'.padEnd(28)} ${'status'.padEnd(12)} ${'algo'.padEnd(8)}  model    RFM  BG/NBD  scored  won by (paired DeLong 95%)`,
  );
  for (const outcome of report.targets) {
    console.log(
      `${outcome.target.padEnd(28)} ${outcome.status.padEnd(12)} ${(outcome.algorithm ?? '-').padEnd(8)} ${f3(outcome.auc.model)} ${f3(outcome.auc.rfm)} ${f3(outcome.auc.bgnbd)}  ${String(outcome.scored ?? '-').padStart(6)}  ${winnerMargin(outcome)}`,
    );
    if (outcome.status !== 'champion') console.log(`${''.padEnd(30)}${outcome.reason}`);
  }
  printStages(report);
}

function printDesign(report: PipelineReport): void {
  if (report.evaluationDesign) console.log(`evaluation design: ${report.evaluationDesign.kind} (${report.evaluationDesign.reason})`);
}

/** Which candidate won and by how much over the runner-up, on the same evaluation rows. */
export function winnerMargin(outcome: TargetOutcome): string {
  const margin = outcome.margin;
  if (!outcome.algorithm || !margin) return outcome.algorithm ? `${outcome.algorithm}, the only candidate` : '-';
  const signed = (value: number) => `${value >= 0 ? '+' : ''}${value.toFixed(3)}`;
  return `${outcome.algorithm} over ${margin.over} by ${signed(margin.difference)} [${signed(margin.low)}, ${signed(margin.high)}]`;
}

function metricLine(name: string, metrics: BinaryMetrics | null): string {
  if (!metrics) return `  ${name.padEnd(8)} n/a`;
  const top = metrics.gains[0];
  return `  ${name.padEnd(8)} ${f3(metrics.rocAuc)} ${f3(metrics.prAuc)} ${f3(metrics.logLoss)} ${f3(metrics.brier)} ${f3(metrics.expectedCalibrationError)} ${f3(top?.lift ?? null)}`;
}

function printBacktest(report: PipelineReport): void {
  console.log(
    `backtest run ${report.runId}: as if today were ${report.asOf.slice(0, 10)}, horizon ${report.horizonDays} days, backend ${report.backend}`,
  );
  console.log(
    `population: ${report.population}; trained at ${report.cutoffs.productionTraining.join(', ')}; judged on what happened from ${report.cutoffs.scoring}`,
  );
  printDesign(report);
  for (const outcome of report.targets) {
    if (!outcome.backtest) {
      console.log(`\n${outcome.target}: ${outcome.status} (${outcome.reason})`);
      continue;
    }
    const rows = outcome.backtest.model?.rows ?? outcome.backtest.rfm?.rows ?? 0;
    const positives = outcome.backtest.model?.positives ?? outcome.backtest.rfm?.positives ?? 0;
    console.log(
      `\n${outcome.target} (${outcome.algorithm}; ${positives} buyers among ${rows}; chosen on the evaluation window: ${winnerMargin(outcome)})`,
    );
    console.log('           ROC AUC PR AUC LogLoss  Brier    ECE lift@10%');
    console.log(metricLine('model', outcome.backtest.model));
    console.log(metricLine('RFM', outcome.backtest.rfm));
    console.log(metricLine('BG/NBD', outcome.backtest.bgnbd));
  }
  printStages(report);
}

function printStages(report: PipelineReport): void {
  console.log('');
  for (const stage of report.stages)
    console.log(`${stage.stage.padEnd(22)} ${stage.seconds.toFixed(1).padStart(7)} s ${stage.rows > 0 ? `${stage.rows} rows` : ''}`);
  console.log(`peak RSS ${report.peakRssMb} MB`);
}
