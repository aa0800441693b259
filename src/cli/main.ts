import { Command, CommanderError } from 'commander';
import { registerAuditCommands } from './audit.command.ts';
import { UserError, withContext } from './cli-context.ts';
import { registerConsentCommands } from './consent.command.ts';
import { completeDefinitionFor } from './deferred-definition.ts';
import { registerDemoCommands } from './demo.command.ts';
import { registerIdentityCommands } from './identities.command.ts';
import { registerImportCommands } from './import.command.ts';
import { registerKeyCommands } from './keys.command.ts';
import { registerModelCommands } from './models.command.ts';
import { registerPipelineCommands } from './pipeline.command.ts';
import { registerRightsCommands } from './rights.command.ts';
import { registerRunsCommands } from './runs.command.ts';
import { registerServeCommand } from './serve.command.ts';
import { registerTargetCommands } from './targets.command.ts';
import { registerWorkerCommand } from './worker.command.ts';

export function buildProgram(): Command {
  const program = new Command('cible').description('Predictive targeting on consented data only').showHelpAfterError().exitOverride();

  const database = program.command('db').description('database administration');
  database
    .command('migrate')
    .description('apply pending migrations (embedded database unless DATABASE_URL is set)')
    .action(() =>
      withContext({}, async (context) => {
        const { migrateToLatest } = await import('../db/migrate.ts');
        const applied = await migrateToLatest(context.database.db);
        console.log(
          applied.length === 0
            ? `schema up to date (${context.database.engine})`
            : `applied ${applied.length} migration(s) on ${context.database.engine}: ${applied.join(', ')}`,
        );
      }),
    );

  registerImportCommands(program);
  registerDemoCommands(program);
  registerConsentCommands(program);
  registerRightsCommands(program);
  registerIdentityCommands(program);
  registerAuditCommands(program);
  registerPipelineCommands(program);
  registerRunsCommands(program);
  registerModelCommands(program);
  registerKeyCommands(program);
  registerServeCommand(program);
  registerTargetCommands(program);
  registerWorkerCommand(program);

  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await completeDefinitionFor(program, argv);
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      process.exitCode = error.exitCode;
      return;
    }
    // loaded only now: start-up loads no more than the command needs
    const [{ ConfigError }, { ImportFileError }, { DomainError }] = await Promise.all([
      import('../config.ts'),
      import('../imports/csv-source.ts'),
      import('../errors.ts'),
    ]);
    // a refusal of what the user asked (any DomainError kind: invalid, not found, conflict) is
    // theirs to fix: its message alone, exit code 2; anything else is a failure, exit code 1
    if (error instanceof DomainError) {
      console.error(`error: ${error.field === null ? error.problem : `${asOption(program, error.field)} ${error.problem}`}`);
      process.exitCode = 2;
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

/** A field the domain names (minScore, first_name) as the command-line option that gives it (--min-score), when one does. */
function asOption(program: Command, field: string): string {
  const option = `--${field.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`).replace(/_/g, '-')}`;
  const commands = (command: Command): Command[] => [command, ...command.commands.flatMap(commands)];
  return commands(program).some((command) => command.options.some((known) => known.long === option)) ? option : field;
}
