import type { Command } from 'commander';
import { prepareOnlineRetail } from '../datasets/online-retail.ts';
import { formatDemoSummary, loadDemo } from '../demo/demo.service.ts';
import { integer, positiveInteger, withContext } from './cli-context.ts';

export function registerDemoCommands(program: Command): void {
  program
    .command('demo')
    .description('load a seeded synthetic contact base (embedded database unless DATABASE_URL is set)')
    .option('--contacts <n>', 'number of contacts', positiveInteger('--contacts'), 20_000)
    .option('--seed <s>', 'seed of the random generator', integer('--seed'), 1)
    .option('--reset', 'delete the data already loaded and start over')
    .action((flags: { contacts: number; seed: number; reset?: boolean }) =>
      withContext({ migrate: true }, async (context) => {
        const outcome = await loadDemo(context, { contacts: flags.contacts, seed: flags.seed, reset: flags.reset ?? false });
        if (!outcome.loaded) {
          console.log(
            `the ${context.database.engine} database already holds ${outcome.existingContacts.toLocaleString('en-GB')} contacts:` +
              ' nothing loaded. Run `cible demo --reset` to start over.',
          );
          return;
        }
        console.log(formatDemoSummary(outcome.summary, outcome.seconds, context.database.engine));
      }),
    );

  program
    .command('datasets')
    .description('prepare public datasets for import')
    .command('online-retail <file>')
    .description('derive contacts, products and synthetic explicit profiling consents from the UCI Online Retail log')
    .requiredOption('--out <dir>', 'folder for the CSV files')
    .action(async (file: string, flags: { out: string }) => {
      const prepared = await prepareOnlineRetail(file, flags.out);
      console.log(
        `wrote ${prepared.customers} contacts to ${prepared.contacts}, ${prepared.products_count} products to ${prepared.products},` +
          ` ${prepared.customers} synthetic profiling consents to ${prepared.consents}`,
      );
    });

}
