import type { Command } from 'commander';
import type { ImportKind } from '../imports/importer.ts';
import type { IMPORTERS } from '../imports/importers.ts';
import { UserError, withContext } from './cli-context.ts';
import { deferDefinition } from './deferred-definition.ts';

export function registerImportCommands(program: Command): void {
  const importCommand = program.command('import').description('import a CSV file (gzip accepted); all-or-nothing unless --skip-invalid');
  // each kind's subcommand lists its columns: the importers (and all they load) only for `cible import …`
  deferDefinition(importCommand, async () => defineImportCommands(importCommand, (await import('../imports/importers.ts')).IMPORTERS));
}

function defineImportCommands(importCommand: Command, importers: typeof IMPORTERS): void {
  for (const kind of Object.keys(importers) as ImportKind[]) {
    const importer = importers[kind];
    importCommand
      .command(`${kind} <file>`)
      .description(`import ${kind}: columns ${[...importer.required, ...importer.optional].join(',')}`)
      .option('--map <File=column...>', 'read a file column as a contract column, e.g. --map InvoiceDate=purchased_at', collectMappings, {})
      .option('--date-format <format>', 'date-fns format of every date column (default: ISO 8601, UTC unless an offset is given)')
      .option('--skip-invalid', 'import the valid rows and write the rejected ones to a file')
      .option('--rejects <file>', 'where --skip-invalid writes rejected rows (default: FILE.rejects.csv)')
      .option('--merge-lines', 'purchases: sum lines of one order for the same product instead of rejecting them')
      .option('--encoding <name>', 'how the file is encoded: utf-8 (the default, checked) or latin1 (read as windows-1252)')
      .option('--json', 'print the report as JSON')
      .action((file: string, flags: ImportFlags) =>
        withContext({ migrate: true }, async (context) => {
          const [{ importCsv }, { formatImportReport }, { tombstoneKeys }] = await Promise.all([
            import('../imports/import.service.ts'),
            import('../imports/import.report.ts'),
            import('../rights/tombstone-keys.ts'),
          ]);
          const { parseEncoding } = await import('../imports/csv-source.ts');
          const report = await importCsv(
            {
              database: context.database,
              logger: context.logger,
              now: context.clock.now(),
              defaultPhoneCountry: context.config.defaultPhoneCountry,
              tombstoneKeys: kind === 'contacts' ? tombstoneKeys(context.config.tombstones) : undefined,
              identityPolicy: context.config.identityPolicy,
            },
            importer,
            file,
            {
              columnMap: flags.map,
              dateFormat: flags.dateFormat,
              skipInvalid: flags.skipInvalid,
              rejectsFile: flags.rejects,
              mergeLines: flags.mergeLines,
              encoding: flags.encoding === undefined ? undefined : parseEncoding(flags.encoding),
            },
          );
          console.log(flags.json ? JSON.stringify(report, null, 2) : formatImportReport(report));
          if (report.status === 'rejected') process.exitCode = 1;
        }),
      );
  }

  importCommand
    .command('opposition <file>')
    .description('import an opposition list (CSV with a value column, or one value a line); replaces the list of that name')
    .requiredOption('--list <name>', 'list name, e.g. bloctel')
    .requiredOption('--channel <channel>', 'channel the list opposes, e.g. phone or email')
    .option('--list-date <date>', 'publication date of the list (default: today)')
    .option('--skip-invalid', 'import the valid values and report the others')
    .option('--json', 'print the report as JSON')
    .action((file: string, flags: { list: string; channel: string; listDate?: string; skipInvalid?: boolean; json?: boolean }) =>
      withContext({ migrate: true }, async (context) => {
        const [{ parseTimestamp }, { importOppositionList }] = await Promise.all([
          import('../imports/values.ts'),
          import('../opposition/opposition.import.ts'),
        ]);
        const listDate = flags.listDate === undefined ? undefined : parseTimestamp(flags.listDate);
        if (listDate && !listDate.ok) throw new UserError(`--list-date ${listDate.error}`);
        const report = await importOppositionList(
          {
            database: context.database,
            logger: context.logger,
            now: context.clock.now(),
            defaultPhoneCountry: context.config.defaultPhoneCountry,
          },
          { name: flags.list, channel: flags.channel, listDate: listDate?.value, file, skipInvalid: flags.skipInvalid },
        );
        if (flags.json) console.log(JSON.stringify(report, null, 2));
        else if (report.status === 'committed') {
          console.log(
            `opposition list "${report.name}" (${report.channel}, dated ${report.listDate}): ${report.entries} entries` +
              ` replace ${report.previousEntries}; ${report.rejected} values rejected`,
          );
        } else {
          console.log(`nothing imported: ${report.rejected} of ${report.rowsRead} values are invalid`);
        }
        if ((report.status === 'committed' && report.rejected > 0) || report.status === 'rejected') {
          for (const reject of report.rejects.slice(0, 20)) console.log(`  line ${reject.line}: ${reject.message}`);
        }
        if (report.status === 'rejected') process.exitCode = 1;
      }),
    );
}

interface ImportFlags {
  map: Record<string, string>;
  dateFormat?: string;
  skipInvalid?: boolean;
  rejects?: string;
  mergeLines?: boolean;
  encoding?: string;
  json?: boolean;
}

function collectMappings(value: string, previous: Record<string, string>): Record<string, string> {
  const match = /^([^=]+)=([a-z_]+)$/.exec(value);
  if (!match) throw new UserError(`--map expects FileColumn=contract_column, got "${value}"`);
  return { ...previous, [match[1]!.trim()]: match[2]! };
}
