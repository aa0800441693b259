import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import type { Command } from 'commander';
import { type ListSize, type ListSizeField, listSizeOf } from '../targeting/list-size.ts';
import type { RecordedTargetList, TargetPreview, TargetSelection } from '../targeting/target-list.service.ts';
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
  preview?: boolean;
}

function number(option: string, value: string): number {
  if (!/^-?\d+(\.\d+)?$/.test(value.trim())) throw new UserError(`${option} expects a number, got "${value}"`);
  return Number(value);
}

const OPTION_OF: Record<ListSizeField, string> = {
  top: '--top',
  percentile: '--percentile',
  minScore: '--min-score',
  expectedBuyers: '--expected-buyers',
};

function listSize(flags: TargetFlags): ListSize {
  const value = (field: ListSizeField) => (flags[field] === undefined ? undefined : number(OPTION_OF[field], flags[field]!));
  return listSizeOf(
    { top: value('top'), percentile: value('percentile'), minScore: value('minScore'), expectedBuyers: value('expectedBuyers') },
    (field) => OPTION_OF[field],
  );
}

/** Refused before the database is asked: the column is a UUID and would fail with a database error. */
function exportId(value: string): string {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value))
    throw new UserError(`"${value}" is not an export id (a UUID)`);
  return value;
}

function funnelLines(list: TargetSelection, title: string): string {
  const f = list.funnel;
  const n = (value: number) => value.toLocaleString('en-GB').padStart(10);
  const lines = [
    `${title} for ${list.product.sku} (${list.product.name}) on ${list.channel}, model v${list.model.version} scored ${list.model.scoredAt}`,
    `${n(f.scored)}  scored`,
    `${n(f.examined)}  examined, best first`,
    `${n(f.consentedForChannel)}  with valid profiling and ${list.channel} consent and a contact detail`,
    `${n(f.notOpposed)}  on no opposition list, no objection`,
    `${n(f.underPressureCap)}  under the contact-pressure cap`,
    `${n(f.returned)}  to contact (expected buyers ${list.expectedBuyers.toFixed(1)})${f.holdout ? `, plus ${f.holdout} held out as a control group` : ''}`,
    list.scoreThreshold === null ? 'nobody selected' : `score threshold ${list.scoreThreshold.toFixed(4)} (the last member's score)`,
  ];
  const short = list.shortfall;
  if (short) {
    const what = short.of === 'expectedBuyers' ? 'expected buyers' : 'members';
    lines.push(
      `short of the size asked: ${short.asked === null ? '' : `asked ${short.asked} ${what}, `}reached ${short.reached} ${what}: ${short.reason}`,
    );
  }
  return lines.join('\n');
}

function listSummary(list: RecordedTargetList['list']): string {
  return `${funnelLines(list, `target list ${list.exportId}`)}\nmanifest SHA-256 ${list.manifestHash}`;
}

function previewLines(preview: TargetPreview): string {
  return `${funnelLines(preview, 'preview')}\n${preview.note}`;
}

async function* lineEnded(chunks: AsyncIterable<string>): AsyncGenerator<string> {
  yield* chunks;
  yield '\n';
}

/** Writes every chunk, waiting when the stream is full; rejects if the stream fails (a closed pipe). */
async function writeAll(out: NodeJS.WritableStream, chunks: Iterable<string> | AsyncIterable<string>): Promise<void> {
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  failed.catch(() => {}); // raced below; an error after the last write is not this function's
  for await (const chunk of chunks) {
    if (!out.write(chunk)) await Promise.race([once(out, 'drain'), failed]);
  }
  await Promise.race([new Promise<void>((resolve) => out.write('', () => resolve())), failed]);
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
    .option(
      '--preview',
      'the funnel, size, expected buyers and score threshold for these parameters, without recording a list or using contact pressure',
    )
    .action((sku: string, flags: TargetFlags) =>
      withContext({ migrate: true }, async (context) => {
        const [{ recordTargetList, recordedMembers, previewTargetList, settleDelivery }, { targetListCsv }, { targetListJson }] =
          await Promise.all([
            import('../targeting/target-list.service.ts'),
            import('../targeting/target-list.csv.ts'),
            import('../targeting/target-list.json.ts'),
          ]);
        const holdout = number('--holdout', flags.holdout);
        const request = { sku, channel: flags.channel, size: listSize(flags), holdoutPercent: holdout, actor: cliActor(), apiKeyId: null };
        const policies = { consent: context.config.consentPolicy, targeting: context.config.targeting };
        if (flags.preview) {
          if (flags.out) throw new UserError('--out writes a list: a --preview records none and has no members to write');
          const preview = await previewTargetList(context.database.db, request, policies, context.clock.now());
          console.log(flags.json ? JSON.stringify(preview, null, 2) : previewLines(preview));
          return;
        }
        const { db } = context.database;
        const recorded = await recordTargetList(db, request, policies, context.clock.now());
        const { list } = recorded;
        // the list counts towards contact pressure only if it was written out in full
        const deliver = async (out: NodeJS.WritableStream, chunks: AsyncIterable<string>) => {
          try {
            await writeAll(out, chunks);
          } catch (error) {
            await settleDelivery(context.database.db, list.exportId, false, context.clock.now());
            throw new UserError(
              `the list could not be written out (${(error as Error).message}): it is recorded as undelivered, ${list.exportId}`,
            );
          }
          await settleDelivery(context.database.db, list.exportId, true, context.clock.now());
        };
        if (flags.json) {
          await deliver(process.stdout, lineEnded(targetListJson(list, recordedMembers(context.database, recorded))));
          return;
        }
        if (!flags.out) {
          await deliver(process.stdout, targetListCsv(context.database, recorded));
          console.error(listSummary(list));
          return;
        }
        const file = createWriteStream(flags.out, { mode: 0o600 });
        await deliver(file, targetListCsv(context.database, recorded));
        file.end();
        await once(file, 'finish');
        console.log(listSummary(list));
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
        const { verifyExport } = await import('../targeting/export.service.ts');
        const result = await verifyExport(context.database.db, exportId(id));
        if (flags.json) console.log(JSON.stringify(result, null, 2));
        else {
          console.log(
            `${result.valid ? 'valid' : 'INVALID'}: export ${result.exportId}, ${result.memberCount} members${result.erasedMembers ? ` (${result.erasedMembers} erased since)` : ''}`,
          );
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
        const { exportManifest } = await import('../targeting/export.service.ts');
        const manifest = await exportManifest(context.database.db, exportId(id));
        console.log(JSON.stringify(manifest, null, 2));
      }),
    );
}
