import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Command } from 'commander';
import { exportManifest, verifyExport } from '../targeting/export.service.ts';
import { targetListCsv } from '../targeting/target-list.csv.ts';
import { buildTargetList, type ListSize, type TargetList } from '../targeting/target-list.service.ts';
import {
  ChannelClosedError,
  ExportNotFoundError,
  InvalidTargetRequestError,
  NoLiveScoresError,
  UnknownProductError,
} from '../targeting/targeting.errors.ts';
import { cliActor, UserError, withContext } from './cli-context.ts';

interface TargetFlags {
  channel: string;
  top?: string;
  percentile?: string;
  minScore?: string;
  expectedBuyers?: string;
  holdout: string;
  out?: string;
  json?: boolean;
}

function number(option: string, value: string): number {
  if (!/^-?\d+(\.\d+)?$/.test(value.trim())) throw new UserError(`${option} expects a number, got "${value}"`);
  return Number(value);
}

function listSize(flags: TargetFlags): ListSize {
  const given = [
    ['--top', 'top', flags.top],
    ['--percentile', 'percentile', flags.percentile],
    ['--min-score', 'minScore', flags.minScore],
    ['--expected-buyers', 'expectedBuyers', flags.expectedBuyers],
  ].filter(([, , value]) => value !== undefined) as Array<[string, keyof ListSize, string]>;
  if (given.length > 1) throw new UserError(`give one of --top, --percentile, --min-score, --expected-buyers, not ${given.map(([o]) => o).join(' and ')}`);
  if (given.length === 0) return { top: 1000 };
  const [option, name, value] = given[0]!;
  return { [name]: number(option, value) } as ListSize;
}

const OPTION_OF: Record<string, string> = { top: '--top', percentile: '--percentile', minScore: '--min-score', expectedBuyers: '--expected-buyers', holdout: '--holdout', channel: '--channel' };

function asUserError(error: unknown): never {
  if (error instanceof InvalidTargetRequestError) throw new UserError(`${OPTION_OF[error.field] ?? error.field} ${error.message.slice(error.field.length + 1)}`);
  if (error instanceof UnknownProductError || error instanceof NoLiveScoresError || error instanceof ChannelClosedError || error instanceof ExportNotFoundError) {
    throw new UserError(error.message);
  }
  throw error;
}

/** Refused before the database is asked: the column is a UUID and would fail with a database error. */
function exportId(value: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value)) throw new UserError(`"${value}" is not an export id (a UUID)`);
  return value;
}

function funnelLines(list: TargetList): string {
  const f = list.funnel;
  const n = (value: number) => value.toLocaleString('en-GB').padStart(10);
  return [
    `target list ${list.exportId} for ${list.product.sku} (${list.product.name}) on ${list.channel}, model v${list.model.version} scored ${list.model.scoredAt}`,
    `${n(f.scored)}  scored`,
    `${n(f.examined)}  examined, best first`,
    `${n(f.consentedForChannel)}  with valid profiling and ${list.channel} consent and a contact detail`,
    `${n(f.notOpposed)}  on no opposition list, no objection`,
    `${n(f.underPressureCap)}  under the contact-pressure cap`,
    `${n(f.returned)}  to contact (expected buyers ${list.expectedBuyers.toFixed(1)})${f.holdout ? `, plus ${f.holdout} held out as a control group` : ''}`,
    `manifest SHA-256 ${list.manifestHash}`,
  ].join('\n');
}

export function registerTargetCommands(program: Command): void {
  program
    .command('targets <sku>')
    .description('the people to contact about a product on a channel, checked against consent now; recorded with its manifest')
    .requiredOption('--channel <channel>', 'email, sms, phone, postal, push')
    .option('--top <n>', 'the best N reachable people (default 1000)')
    .option('--percentile <p>', 'the reachable people among the best-scored P percent')
    .option('--min-score <s>', 'the reachable people scored at least S (0 to 1)')
    .option('--expected-buyers <n>', 'the smallest top list whose summed probabilities reach N')
    .option('--holdout <percent>', 'percent withheld at random as a control group', '0')
    .option('--out <file>', 'write the list as CSV to this file (else CSV on stdout)')
    .option('--json', 'print the list as JSON')
    .action((sku: string, flags: TargetFlags) =>
      withContext({ migrate: true }, async (context) => {
        const holdout = number('--holdout', flags.holdout);
        const list = await buildTargetList(
          context.database.db,
          { sku, channel: flags.channel, size: listSize(flags), holdoutPercent: holdout, actor: cliActor(), apiKeyId: null },
          { consent: context.config.consentPolicy, targeting: context.config.targeting },
          context.clock.now(),
        ).catch(asUserError);
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
          return;
        }
        if (!flags.out) {
          for (const chunk of targetListCsv(list)) process.stdout.write(chunk);
          console.error(funnelLines(list));
          return;
        }
        const file = createWriteStream(flags.out, { mode: 0o600 });
        for (const chunk of targetListCsv(list)) if (!file.write(chunk)) await once(file, 'drain');
        file.end();
        await once(file, 'finish');
        console.log(funnelLines(list));
        console.log(`written to ${flags.out}`);
      }),
    );

  const exports = program.command('exports').description('served target lists and their manifests');
  exports
    .command('verify <id>')
    .description('recompute a list manifest hash from its stored lines and compare it with the recorded one')
    .option('--json', 'print JSON')
    .action((id: string, flags: { json?: boolean }) =>
      withContext({ migrate: true }, async (context) => {
        const result = await verifyExport(context.database.db, exportId(id)).catch(asUserError);
        if (flags.json) console.log(JSON.stringify(result, null, 2));
        else {
          console.log(`${result.valid ? 'valid' : 'INVALID'}: export ${result.exportId}, ${result.memberCount} members${result.erasedMembers ? ` (${result.erasedMembers} erased since)` : ''}`);
          console.log(`recorded   ${result.storedHash}`);
          console.log(`recomputed ${result.recomputedHash}`);
          if (result.alteredPositions.length > 0) console.log(`altered lines at positions ${result.alteredPositions.join(', ')}`);
        }
        if (!result.valid) process.exitCode = 1;
      }),
    );
  exports
    .command('show <id>')
    .description('the manifest of a served list, as JSON')
    .action((id: string) =>
      withContext({ migrate: true }, async (context) => {
        const manifest = await exportManifest(context.database.db, exportId(id)).catch(asUserError);
        console.log(JSON.stringify(manifest, null, 2));
      }),
    );
}
