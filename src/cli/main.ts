import { Command, CommanderError } from 'commander';
import { ConfigError, loadConfig } from '../config.ts';
import { type AppContext, type ContextOptions, createContext } from '../context.ts';
import { migrateToLatest } from '../db/migrate.ts';

/** Opens the context, runs the command, and always closes what was opened. */
async function withContext<T>(options: ContextOptions, run: (context: AppContext) => Promise<T>): Promise<T> {
  const context = await createContext(loadConfig(), options);
  try {
    return await run(context);
  } finally {
    await context.stop();
  }
}

export function buildProgram(): Command {
  const program = new Command('cible')
    .description('Predictive targeting on consented data only')
    .showHelpAfterError()
    .exitOverride();

  const database = program.command('db').description('database administration');
  database
    .command('migrate')
    .description('apply pending migrations (embedded database unless DATABASE_URL is set)')
    .action(() =>
      withContext({}, async (context) => {
        const applied = await migrateToLatest(context.database.db);
        console.log(
          applied.length === 0
            ? `schema up to date (${context.database.engine})`
            : `applied ${applied.length} migration(s) on ${context.database.engine}: ${applied.join(', ')}`,
        );
      }),
    );

  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    if (error instanceof ConfigError || error instanceof UserError) {
      console.error(`error: ${error.message}`);
      process.exitCode = 2;
      return;
    }
    console.error(`error: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}

/** An error caused by what the user gave (bad file, unknown option value): printed without a stack. */
export class UserError extends Error {}
