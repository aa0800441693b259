import { Command, CommanderError } from 'commander';
import { ConfigError, loadConfig } from '../config.ts';
import { type AppContext, type ContextOptions, createContext } from '../context.ts';
import { migrateToLatest } from '../db/migrate.ts';
import { ImportFileError } from '../imports/csv-source.ts';
import { formatImportReport } from '../imports/import.report.ts';
import { importCsv } from '../imports/import.service.ts';
import type { ImportKind } from '../imports/importer.ts';
import { IMPORTERS } from '../imports/importers.ts';

/** Opens the context, runs the command, and always closes what was opened. */
async function withContext<T>(options: ContextOptions, run: (context: AppContext) => Promise<T>): Promise<T> {
  const context = await createContext(loadConfig(), { defaultLogLevel: 'warn', ...options });
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

  const importCommand = program
    .command('import')
    .description('import a CSV file (gzip accepted); all-or-nothing unless --skip-invalid');
  for (const kind of Object.keys(IMPORTERS) as ImportKind[]) {
    const importer = IMPORTERS[kind];
    importCommand
      .command(`${kind} <file>`)
      .description(`import ${kind}: columns ${[...importer.required, ...importer.optional].join(',')}`)
      .option('--map <File=column...>', 'read a file column as a contract column, e.g. --map InvoiceDate=purchased_at', collectMappings, {})
      .option('--date-format <format>', 'date-fns format of every date column (default: ISO 8601, UTC unless an offset is given)')
      .option('--skip-invalid', 'import the valid rows and write the rejected ones to a file')
      .option('--rejects <file>', 'where --skip-invalid writes rejected rows (default: FILE.rejects.csv)')
      .option('--merge-lines', 'purchases: sum lines of one order for the same product instead of rejecting them')
      .option('--json', 'print the report as JSON')
      .action((file: string, flags: ImportFlags) =>
        withContext({ migrate: true }, async (context) => {
          const report = await importCsv(
            {
              database: context.database,
              logger: context.logger,
              now: context.clock.now(),
              defaultPhoneCountry: context.config.defaultPhoneCountry,
            },
            importer,
            file,
            {
              columnMap: flags.map,
              dateFormat: flags.dateFormat,
              skipInvalid: flags.skipInvalid,
              rejectsFile: flags.rejects,
              mergeLines: flags.mergeLines,
            },
          );
          console.log(flags.json ? JSON.stringify(report, null, 2) : formatImportReport(report));
          if (report.status === 'rejected') process.exitCode = 1;
        }),
      );
  }

  return program;
}

interface ImportFlags {
  map: Record<string, string>;
  dateFormat?: string;
  skipInvalid?: boolean;
  rejects?: string;
  mergeLines?: boolean;
  json?: boolean;
}

function collectMappings(value: string, previous: Record<string, string>): Record<string, string> {
  const match = /^([^=]+)=([a-z_]+)$/.exec(value);
  if (!match) throw new UserError(`--map expects FileColumn=contract_column, got "${value}"`);
  return { ...previous, [match[1]!.trim()]: match[2]! };
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    if (error instanceof ConfigError || error instanceof UserError || error instanceof ImportFileError) {
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
