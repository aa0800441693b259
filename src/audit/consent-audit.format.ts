import type { AuditedConsent, ConsentAuditReport, ConsentList, EventCount, StateCount } from './consent-audit.service.ts';

const REASON_LABELS: Record<keyof StateCount['notCounting'], string> = {
  withdrawn: 'withdrawn',
  refused: 'refused',
  objected: 'objected',
  noProofOfMeans: 'no proof',
  invalidMethod: 'invalid method',
  expired: 'expired',
};

const n = (value: number) => value.toLocaleString('en-GB');
const day = (iso: string | null) => (iso === null ? '-' : iso.slice(0, 10));

/** Aligns columns: the first is left-aligned, numbers right-aligned. */
function table(rows: string[][], numeric: (column: number) => boolean): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) =>
    row
      .map((cell, column) => (numeric(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd(),
  );
}

function counts<T extends EventCount>(entries: T[], label: (entry: T) => string = (entry) => entry.value ?? '(none)'): string {
  return entries.map((entry) => `${label(entry)} ${n(entry.events)}`).join(' · ') || '-';
}

function ledgerSection(report: ConsentAuditReport): string[] {
  const { events } = report;
  return [
    `ledger: ${n(events.total)} consent events`,
    `  by purpose  ${counts(events.byPurpose)}`,
    `  by channel  ${counts(events.byChannel, (entry) => entry.value ?? '(no channel)')}`,
    `  by status   ${counts(events.byStatus)}`,
    `  by method   ${counts(events.byMethod, (entry) => `${entry.value ?? '(no method)'}${entry.explicit === false ? ' (never valid)' : ''}`)}`,
  ];
}

function stateSection(report: ConsentAuditReport): string[] {
  const reasons = Object.keys(REASON_LABELS) as Array<keyof StateCount['notCounting']>;
  const header = ['purpose', 'channel', 'with event', 'counting', ...reasons.map((reason) => REASON_LABELS[reason]), 'no event'];
  const rows = report.state.map((state) => [
    state.purpose,
    state.channel ?? '-',
    n(state.contacts),
    n(state.counting),
    ...reasons.map((reason) => n(state.notCounting[reason])),
    n(state.noEvent),
  ]);
  return [
    'current consents (per person × purpose × channel, over all their records: the latest event, a "no" at an equal instant; erased left out)',
    ...table([header, ...rows], (column) => column >= 2).map((line) => `  ${line}`),
  ];
}

function listSection<T extends AuditedConsent>(
  title: string,
  list: ConsentList<T>,
  columns: (consent: T) => string[],
  listLines: number,
): string[] {
  const lines = [`${title}: ${n(list.total)} consents of ${n(list.people)} contacts`];
  if (list.total === 0) return lines;
  const shown = list.contacts
    .slice(0, listLines)
    .map((consent) => ['', consent.externalId, consent.purpose, consent.channel ?? '-', ...columns(consent)]);
  lines.push(...table(shown, () => false));
  if (list.total > shown.length) lines.push(`  … and ${n(list.total - shown.length)} more: --json or --out FILE gives the full list`);
  return lines;
}

function disagreementSection(report: ConsentAuditReport, listLines: number): string[] {
  const { disagreements } = report;
  const lines = [
    `persons whose records disagree (one record's latest event counts, another's is a withdrawal, refusal or objection):` +
      ` ${n(disagreements.persons)} persons, ${n(disagreements.total)} purpose × channel`,
  ];
  if (disagreements.total === 0) return lines;
  const shown = disagreements.list
    .slice(0, listLines)
    .map((row) => [
      '',
      row.person,
      row.purpose,
      row.channel ?? '-',
      `counting ${row.granting.join(', ')}`,
      `no ${row.refusing.join(', ')}`,
    ]);
  lines.push(...table(shown, () => false));
  if (disagreements.total > shown.length) {
    lines.push(`  … and ${n(disagreements.total - shown.length)} more: --json or --out FILE gives the full list`);
  }
  return lines;
}

/** The human-readable summary: every count, and the first lines of each list with its total. */
export function formatConsentAudit(report: ConsentAuditReport, listLines = 10): string {
  const { withoutProof, nonExplicit, expiring } = report;
  const methods = Object.entries(nonExplicit.byMethod)
    .map(([method, count]) => `${method} ${n(count)}`)
    .join(', ');
  return [
    `consent audit at ${report.at}`,
    `contacts: ${n(report.contacts.total)} (${n(report.contacts.erased)} erased)`,
    `persons: ${n(report.persons.total)} (${n(report.persons.withSeveralRecords)} with several records, ${n(report.persons.recordsOfThem)} records between them)`,
    '',
    ...ledgerSection(report),
    '',
    ...stateSection(report),
    '',
    ...listSection(
      `latest grants without proof of means, to ask again (${n(withoutProof.beforeGdpr)} collected before 2018-05-25)`,
      withoutProof,
      (consent) => [
        `captured ${day(consent.capturedAt)}`,
        consent.beforeGdpr ? 'before GDPR' : '',
        `source ${consent.source ?? '-'}`,
        `method ${consent.method ?? '-'}`,
      ],
      listLines,
    ),
    '',
    ...listSection(
      `latest grants by a non-explicit method, never consent${methods ? ` (${methods})` : ''}`,
      nonExplicit,
      (consent) => [`captured ${day(consent.capturedAt)}`, `method ${consent.method ?? '-'}`],
      listLines,
    ),
    '',
    ...listSection(
      `counting consents expiring within ${n(expiring.withinDays)} days`,
      expiring,
      (consent) => [`expires ${consent.expiresAt}`],
      listLines,
    ),
    '',
    ...disagreementSection(report, listLines),
  ].join('\n');
}
