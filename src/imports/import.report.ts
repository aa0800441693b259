import type { ImportReport } from './import.service.ts';

const number = (value: number) => value.toLocaleString('en-GB');

/** The import report as a person reads it on a terminal. */
export function formatImportReport(report: ImportReport): string {
  const lines: string[] = [];
  const seconds = (report.durationMs / 1000).toFixed(1);
  if (report.status === 'committed') {
    const parts = [`${number(report.inserted)} new`];
    if (report.updated) parts.push(`${number(report.updated)} updated`);
    if (report.unchanged) parts.push(`${number(report.unchanged)} already present`);
    if (report.merged) parts.push(`${number(report.merged)} lines merged into others`);
    if (report.linked) parts.push(`${number(report.linked)} records linked to the person of other records`);
    lines.push(
      `imported ${report.kind} (import #${report.importId}) in ${seconds} s: ${number(report.rowsRead)} rows read, ${parts.join(', ')}, ${number(report.rejected)} rejected`,
    );
  } else {
    lines.push(
      `nothing imported: ${number(report.rejected)} of ${number(report.rowsRead)} rows of ${report.kind} are invalid (import #${report.importId} recorded as rejected).`,
      'Fix them, or rerun with --skip-invalid to import the valid rows and write the rejected ones to a file.',
    );
  }
  if (report.rejectReasons.length > 0) {
    lines.push('rejected rows by reason:');
    for (const reason of report.rejectReasons) {
      lines.push(
        `  ${number(reason.count).padStart(9)}  ${reason.reason}  (lines ${reason.firstLines.join(', ')}${reason.count > reason.firstLines.length ? ', …' : ''})`,
      );
    }
    lines.push('first rejected lines:');
    for (const reject of report.rejects.slice(0, 20)) lines.push(`  line ${reject.line}: ${reject.field}: ${reject.message}`);
  }
  if (report.rejectsFile) lines.push(`rejected rows written to ${report.rejectsFile}`);
  return lines.join('\n');
}
