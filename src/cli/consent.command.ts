import type { Command } from 'commander';
import { channelFunnel, UnknownChannelError } from '../consent/eligibility.ts';
import { UserError, withContext } from './cli-context.ts';

export function registerConsentCommands(program: Command): void {
  program
    .command('eligibility')
    .description('the eligibility funnel for a channel, now: all contacts → profiling consent → channel consent → contact detail → not opposed → not objected')
    .requiredOption('--channel <channel>', 'email, sms, phone, postal, push')
    .option('--json', 'print JSON')
    .action((flags: { channel: string; json?: boolean }) =>
      withContext({ migrate: true }, async (context) => {
        const funnel = await channelFunnel(context.database.db, flags.channel, context.clock.now(), context.config.consentPolicy).catch(
          (error) => {
            throw error instanceof UnknownChannelError ? new UserError(error.message) : error;
          },
        );
        if (flags.json) {
          console.log(JSON.stringify(funnel, null, 2));
          return;
        }
        const n = (value: number) => value.toLocaleString('en-GB').padStart(10);
        console.log(`eligibility for ${funnel.channel} at ${funnel.at}`);
        console.log(`${n(funnel.contacts)}  contacts`);
        console.log(`${n(funnel.profilingConsent)}  with a valid profiling consent`);
        console.log(`${n(funnel.channelConsent)}  and a valid ${funnel.channel} consent`);
        console.log(`${n(funnel.withContactDetail)}  and a contact detail for ${funnel.channel}`);
        console.log(`${n(funnel.notOpposed)}  and on no opposition list`);
        console.log(`${n(funnel.notObjected)}  and no objection to direct marketing: reachable`);
        if (funnel.blocked) console.log(`channel closed: ${funnel.blocked}`);
      }),
    );
}
