import type { Command } from 'commander';
import type { AppContext } from '../context.ts';
import { integer, positiveInteger, withContext } from './cli-context.ts';
import { defaultRunOptions, printRun, progressFor } from './pipeline.command.ts';
import { serveApi } from './serve.command.ts';

interface DemoFlags {
  contacts: number;
  seed: number;
  reset?: boolean;
  retrain?: boolean;
  serve: boolean;
}

/** The product whose live model ranks best on its evaluation window: the one to show first. */
async function showcaseProduct(context: AppContext): Promise<string | null> {
  const { sql } = await import('kysely');
  const row = await context.database.db
    .selectFrom('models as m')
    .innerJoin('score_sets as ss', (join) => join.onRef('ss.model_id', '=', 'm.id').on('ss.status', '=', 'live'))
    .innerJoin('model_versions as v', 'v.id', 'ss.model_version_id')
    .select('m.target_key')
    .where('m.target_kind', '=', 'product')
    .orderBy(sql`(v.metrics -> 'evaluation' ->> 'rocAuc')::float DESC NULLS LAST`)
    .orderBy('m.target_key')
    .executeTakeFirst();
  return row?.target_key ?? null;
}

/** Whether a pipeline run has already completed on this base (scores or not: small bases may have no champion). */
async function pipelineHasRun(context: AppContext): Promise<boolean> {
  const run = await context.database.db
    .selectFrom('pipeline_runs')
    .select('id')
    .where('kind', '=', 'pipeline')
    .where('status', '=', 'succeeded')
    .executeTakeFirst();
  return run !== undefined;
}

export function registerDemoCommands(program: Command): void {
  program
    .command('demo')
    .description('the whole product on the embedded database: load a synthetic base, run the pipeline, then serve the API with a demo key')
    .option('--contacts <n>', 'number of contacts', positiveInteger('--contacts'), 20_000)
    .option('--seed <s>', 'seed of the random generator', integer('--seed'), 1)
    .option('--reset', 'delete the data already loaded and start over')
    .option('--retrain', 'run the pipeline again although products already have live scores')
    .option('--no-serve', 'stop after printing the request instead of starting the server')
    .action(async (flags: DemoFlags) => {
      await withContext({ migrate: true }, async (context) => {
        const [{ formatDemoSummary, loadDemo }, { runPipeline }, { createApiKey }] = await Promise.all([
          import('../demo/demo.service.ts'),
          import('../../pipelines/run-pipeline.ts'),
          import('../auth/api-key.repository.ts'),
        ]);
        const outcome = await loadDemo(context, { contacts: flags.contacts, seed: flags.seed, reset: flags.reset ?? false });
        if (outcome.loaded) console.log(formatDemoSummary(outcome.summary, outcome.seconds, context.database.engine));
        else
          console.log(
            `the ${context.database.engine} database already holds ${outcome.existingContacts.toLocaleString('en-GB')} contacts: nothing loaded (\`cible demo --reset\` starts over)`,
          );

        if (outcome.loaded || flags.retrain || !(await pipelineHasRun(context))) {
          console.log('\nrunning the propensity pipeline…');
          printRun(await runPipeline(context, await defaultRunOptions(context), progressFor(context)));
        } else {
          console.log('the pipeline has already run on this base: not run again (`cible demo --retrain` runs it again)');
        }

        const sku = await showcaseProduct(context);
        const key = await createApiKey(context.database.db, `demo marketer ${context.clock.now().toISOString()}`, 'marketer');
        const base = `http://${context.config.host}:${context.config.port}`;
        console.log(`\na marketer API key was created for this demo (shown once): ${key.key}`);
        if (sku) {
          console.log('ask for the 5 people most likely to buy, who may be emailed now:\n');
          console.log(
            `  curl -s -H "Authorization: Bearer ${key.key}" "${base}/v1/products/${encodeURIComponent(sku)}/targets?channel=email&top=5"\n`,
          );
          console.log(`or from the shell: npx cible targets ${sku} --channel email --top 5`);
        } else {
          console.log('no product has a champion model yet: see `npx cible models list`');
        }
        console.log(`API documentation: ${base}/docs`);
      });
      if (flags.serve) await serveApi({ withWorker: true });
    });

  program
    .command('datasets')
    .description('prepare public datasets for import')
    .command('online-retail <file>')
    .description('derive contacts, products and synthetic explicit profiling consents from the UCI Online Retail log')
    .requiredOption('--out <dir>', 'folder for the CSV files')
    .action(async (file: string, flags: { out: string }) => {
      const { prepareOnlineRetail } = await import('../datasets/online-retail.ts');
      const prepared = await prepareOnlineRetail(file, flags.out);
      console.log(
        `wrote ${prepared.customers} contacts to ${prepared.contacts}, ${prepared.products_count} products to ${prepared.products},` +
          ` ${prepared.customers} synthetic profiling consents to ${prepared.consents}`,
      );
    });
}
