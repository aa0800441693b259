import { existsSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { cliActor, UserError, withContext } from './cli-context.ts';

const MAX_EXPIRING_DAYS = 3650;

interface ConsentAuditFlags {
  json?: boolean;
  out?: string;
  expiringDays: number;
}

export function registerAuditCommands(program: Command): void {
  const audit = program
    .command('audit')
    .description('reports for the DPO; they name contacts, so they go to stdout or a file, never to the logs');
  audit
    .command('consents')
    .description(
      'consent audit: ledger counts, current consents per purpose × channel and why they do not count,' +
        ' contacts to ask again (no proof of means), non-explicit grants, consents expiring soon',
    )
    .option('--json', 'print the full report as JSON')
    .option('--out <file>', 'write the full report as JSON to this file (created readable by its owner only)')
    .option('--expiring-days <n>', `list consents expiring within n days (1 to ${MAX_EXPIRING_DAYS})`, expiringDays, 30)
    .action((flags: ConsentAuditFlags) => {
      const out = flags.out === undefined ? undefined : checkedOutputFile(flags.out);
      return withContext({ migrate: true }, async (context) => {
        const [{ consentAudit, recordConsentAudit }, { formatConsentAudit }] = await Promise.all([
          import('../audit/consent-audit.service.ts'),
          import('../audit/consent-audit.format.ts'),
        ]);
        const db = context.database.db;
        const report = await consentAudit(db, context.clock.now(), { expiringWithinDays: flags.expiringDays });
        await recordConsentAudit(db, report, cliActor(), out ? 'file' : 'stdout');
        const json = JSON.stringify(report, null, 2);
        if (out) writeOutput(out, json);
        console.log(flags.json ? json : formatConsentAudit(report));
        // with --json, stdout stays pure JSON
        if (out) (flags.json ? console.error : console.log)(`full report written to ${out}`);
      });
    });
}

function expiringDays(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > MAX_EXPIRING_DAYS) {
    throw new UserError(`--expiring-days expects a whole number of days from 1 to ${MAX_EXPIRING_DAYS}, got "${value}"`);
  }
  return Number(value);
}

/** Fails before the audit runs rather than after, when the file cannot be written. */
function checkedOutputFile(file: string): string {
  const path = resolve(file);
  if (existsSync(path) && statSync(path).isDirectory()) throw new UserError(`--out ${file} is a directory: give a file name`);
  const folder = dirname(path);
  if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new UserError(`--out ${file}: folder ${folder} does not exist`);
  return path;
}

function writeOutput(path: string, content: string): void {
  try {
    writeFileSync(path, `${content}\n`, { mode: 0o600 });
  } catch (error) {
    throw new UserError(`cannot write --out ${path}: ${(error as Error).message}`);
  }
}
