import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { AppContext } from '../context.ts';
import { InvalidPeriodError, parseRetentionPeriod, periodBefore, type RetentionPeriod } from '../retention/retention-period.ts';
import type { IdentityChanges } from '../rights/rights.service.ts';
import { cliActor, UserError, withContext } from './cli-context.ts';

/** The keys of the erasure tombstones, loaded when a command runs (the module loads the database code). */
async function tombstoneKeysOf(context: AppContext) {
  const { tombstoneKeys } = await import('../rights/tombstone-keys.ts');
  return tombstoneKeys(context.config.tombstones);
}

function retentionPeriod(value: string): RetentionPeriod {
  try {
    return parseRetentionPeriod(value);
  } catch (error) {
    throw error instanceof InvalidPeriodError ? new UserError(`--inactive ${error.message}`) : error;
  }
}

interface RectifyFlags {
  email?: string;
  phone?: string;
  firstName?: string;
  lastName?: string;
  country?: string;
}

/** Says when a report covers more records than the one named. */
function recordsNote(records: number): string {
  return records > 1 ? ` (a person with ${records} records, all reported)` : '';
}

export function registerRightsCommands(program: Command): void {
  const rights = program
    .command('rights')
    .description(
      'data-subject rights (GDPR art. 15-21): a request names one contact record by its external id and acts on the person it belongs to (every record of theirs); each request is audited',
    );

  rights
    .command('access <ref>')
    .description('everything held on the contact (identity, consents with proofs, purchases, scores and their reasons, exports) as JSON')
    .option('--out <file>', 'write the JSON to this file instead of printing it')
    .action((ref: string, flags: { out?: string }) =>
      withContext({ migrate: true }, async (context) => {
        const { accessReport } = await import('../rights/rights.service.ts');
        const report = await accessReport(
          context.database.db,
          ref,
          cliActor(),
          context.clock.now(),
          'access',
          await tombstoneKeysOf(context),
        );
        const json = `${JSON.stringify(report, null, 2)}\n`;
        if (!flags.out) {
          process.stdout.write(json);
          return;
        }
        writeFileSync(flags.out, json, { mode: 0o600 });
        console.log(
          `access report of contact #${report.subject.contactId}${recordsNote(report.person.records.length)} written to ${flags.out}`,
        );
      }),
    );

  rights
    .command('export <ref>')
    .description('portability: the access report as JSON plus one CSV file per section, in a folder')
    .requiredOption('--out <dir>', 'folder to write the files into (created if needed)')
    .action((ref: string, flags: { out: string }) =>
      withContext({ migrate: true }, async (context) => {
        const [{ accessReport }, { writePortabilityBundle }] = await Promise.all([
          import('../rights/rights.service.ts'),
          import('../rights/portability.ts'),
        ]);
        const report = await accessReport(
          context.database.db,
          ref,
          cliActor(),
          context.clock.now(),
          'portability',
          await tombstoneKeysOf(context),
        );
        const files = writePortabilityBundle(report, flags.out);
        console.log(
          `portability bundle of contact #${report.subject.contactId}${recordsNote(report.person.records.length)}: ${files.length} files in ${flags.out}`,
        );
      }),
    );

  rights
    .command('rectify <ref>')
    .description("correct identity fields of the record named (the person's other records keep theirs); an empty value clears the field")
    .option('--email <email>')
    .option('--phone <phone>', 'read with CIBLE_DEFAULT_PHONE_COUNTRY when written without +country code')
    .option('--first-name <name>')
    .option('--last-name <name>')
    .option('--country <country>')
    .action((ref: string, flags: RectifyFlags) =>
      withContext({ migrate: true }, async (context) => {
        const { rectify } = await import('../rights/rights.service.ts');
        const changes: IdentityChanges = {
          email: flags.email,
          phone: flags.phone,
          first_name: flags.firstName,
          last_name: flags.lastName,
          country: flags.country,
        };
        const result = await rectify(context.database.db, ref, changes, cliActor(), context.clock.now(), {
          defaultPhoneCountry: context.config.defaultPhoneCountry,
          tombstoneKeys: await tombstoneKeysOf(context),
        });
        const record = `contact #${result.contactId}${result.personId === result.contactId ? '' : ` (a record of person #${result.personId})`}`;
        console.log(
          result.changed.length === 0
            ? `${record}: the values given are those already held, nothing changed`
            : `${record}: rectified ${result.changed.join(', ')}`,
        );
      }),
    );

  rights
    .command('object <ref>')
    .description(
      'record an objection on the record named, standing for the whole person: to profiling (scores deleted) or to direct marketing (every channel unless --channel)',
    )
    .requiredOption('--purpose <purpose>', 'profiling or direct_marketing')
    .option('--channel <channel>', 'direct marketing only: email, sms, phone, postal, push')
    .action((ref: string, flags: { purpose: string; channel?: string }) =>
      withContext({ migrate: true }, async (context) => {
        const { object } = await import('../rights/rights.service.ts');
        const result = await object(
          context.database.db,
          ref,
          { purpose: flags.purpose, channel: flags.channel },
          cliActor(),
          context.clock.now(),
          await tombstoneKeysOf(context),
        );
        const scope = result.channel ?? (flags.purpose === 'profiling' ? 'profiling' : 'every channel');
        console.log(
          `contact #${result.contactId}: objection to ${result.purpose} (${scope}) recorded at ${result.capturedAt}` +
            (result.scoresDeleted > 0 ? `, ${result.scoresDeleted} scores deleted` : ''),
        );
      }),
    );

  rights
    .command('erase <ref>')
    .description(
      'erase the person the record belongs to, every record of theirs, for good (personal data, purchases, scores, consent evidence) and print the receipt',
    )
    .option('--yes', 'confirm: an erasure cannot be undone')
    .action((ref: string, flags: { yes?: boolean }) => {
      if (!flags.yes) throw new UserError('an erasure cannot be undone: add --yes to confirm');
      return withContext({ migrate: true }, async (context) => {
        const { erase } = await import('../rights/rights.service.ts');
        const receipt = await erase(context.database.db, ref, cliActor(), context.clock.now(), await tombstoneKeysOf(context));
        console.log(JSON.stringify(receipt, null, 2));
      });
    });

  program
    .command('retention')
    .description('retention of personal data')
    .command('purge')
    .description('erase prospects (no purchase ever) with no consent activity for a period; a dry run unless --apply')
    .requiredOption('--inactive <period>', 'inactivity period, e.g. 3y, 18m, 90d', retentionPeriod)
    .option('--apply', 'erase them (each with a receipt); without it only counts are printed')
    .option('--json', 'print the report as JSON (with the receipts when applied)')
    .action((flags: { inactive: RetentionPeriod; apply?: boolean; json?: boolean }) =>
      withContext({ migrate: true }, async (context) => {
        const { purgeInactive } = await import('../retention/retention.service.ts');
        const now = context.clock.now();
        const report = await purgeInactive(context.database.db, {
          inactiveSince: periodBefore(now, flags.inactive),
          actor: cliActor(),
          now,
          apply: flags.apply ?? false,
          tombstoneKeys: await tombstoneKeysOf(context),
        });
        if (flags.json) {
          console.log(JSON.stringify(report, null, 2));
          return;
        }
        const since = report.inactiveSince.slice(0, 10);
        console.log(`${report.found} prospects with no purchase and no consent activity since ${since}`);
        for (const [year, count] of Object.entries(report.foundByCreationYear)) console.log(`  created in ${year}: ${count}`);
        console.log(
          report.applied
            ? `erased ${report.erased}${report.skipped > 0 ? `, skipped ${report.skipped} (active again or already erased)` : ''}; receipts kept with the tombstones`
            : 'dry run: nothing erased; add --apply to erase them',
        );
      }),
    );
}
