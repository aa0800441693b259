import type { Command } from 'commander';
import type { ConsentSweepReport } from '../../pipelines/consent-sweep.ts';
import { withContext } from './cli-context.ts';

/** The sweep's report for a terminal: counts only, like the report itself. */
export function sweepSummary(report: ConsentSweepReport): string {
  const n = (value: number) => value.toLocaleString('en-GB');
  const lines = [
    `consent sweep ${report.sweepId} at ${report.at} (${n(report.durationMs)} ms)`,
    `${n(report.scoresDeleted)} score(s) deleted for ${n(report.contactsAffected)} contact(s) whose profiling consent no longer counts`,
  ];
  for (const set of report.scoreSets)
    lines.push(`  score set ${set.scoreSetId} (${set.target}, ${set.status ?? 'no longer recorded'}): ${n(set.scoresDeleted)} deleted`);
  if (report.lineage.length === 0) {
    lines.push('no champion model');
  } else {
    lines.push('champion models against their training snapshot:');
    const width = Math.max(...report.lineage.map((entry) => entry.target.length));
    for (const entry of report.lineage) {
      const share = entry.share === null ? 'n/a' : `${(entry.share * 100).toFixed(2)} %`;
      lines.push(
        `  ${entry.target.padEnd(width)}  v${entry.version}  run ${entry.runId ?? '-'}  ${n(entry.withdrawnSinceSnapshot)} of ${n(entry.snapshotSize)} no longer consent (${share})`,
      );
    }
  }
  lines.push(report.retrainEarly.length > 0 ? `retrain early: ${report.retrainEarly.join(', ')}` : 'no model to retrain early');
  return lines.join('\n');
}

export function registerConsentCommands(program: Command): void {
  program
    .command('eligibility')
    .description(
      'the eligibility funnel for a channel, now: all contacts → profiling consent → channel consent → contact detail → not opposed → not objected',
    )
    .requiredOption('--channel <channel>', 'email, sms, phone, postal, push')
    .option('--json', 'print JSON')
    .action((flags: { channel: string; json?: boolean }) =>
      withContext({ migrate: true }, async (context) => {
        const { channelFunnel } = await import('../consent/eligibility.ts');
        const funnel = await channelFunnel(context.database.db, flags.channel, context.clock.now(), context.config.consentPolicy);
        if (flags.json) {
          console.log(JSON.stringify(funnel, null, 2));
          return;
        }
        const n = (value: number) => value.toLocaleString('en-GB').padStart(10);
        console.log(`eligibility for ${funnel.channel} at ${funnel.at}`);
        console.log(`${n(funnel.contacts)}  contacts`);
        console.log(`${n(funnel.profilingConsent)}  with a valid profiling consent`);
        console.log(`${n(funnel.channelConsent)}  and a valid ${funnel.channel} consent`);
        console.log(`${n(funnel.withContactDetail)}  and ${funnel.contactDetail}`);
        console.log(`${n(funnel.notOpposed)}  and on no opposition list`);
        console.log(`${n(funnel.notObjected)}  and no objection to direct marketing: reachable`);
        if (funnel.blocked) console.log(`channel closed: ${funnel.blocked}`);
      }),
    );

  const consent = program.command('consent').description('consent jobs');
  consent
    .command('sweep')
    .description(
      'delete the scores of everyone whose profiling consent no longer counts now (expired, erased), and report which champion models were trained on them',
    )
    .option('--json', 'print JSON')
    .action((flags: { json?: boolean }) =>
      withContext({ migrate: true }, async (context) => {
        const { sweepConsent } = await import('../../pipelines/consent-sweep.ts');
        const report = await sweepConsent(context);
        console.log(flags.json ? JSON.stringify(report, null, 2) : sweepSummary(report));
      }),
    );
}
