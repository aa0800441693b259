import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { csvLines, spreadsheetSafe } from '../csv/csv-writer.ts';
import type { AccessReport } from './rights.service.ts';

/** One CSV file of the portability bundle: its name, its header, its rows. */
export interface BundleTable {
  file: string;
  columns: string[];
  rows: Array<Record<string, unknown>>;
}

/** A cell as written in the CSV: empty for null, JSON for lists and objects (score reasons, feature lists), formulas neutralised. */
export function csvCell(value: unknown): string {
  return String(spreadsheetSafe(value));
}

function table<T extends object>(file: string, rows: T[], columns: Array<keyof T & string>): BundleTable {
  return { file, columns, rows: rows as Array<Record<string, unknown>> };
}

/**
 * The access report cut into flat tables, one file per section, with the JSON keys as column
 * names: identity.csv has one line per record of the person, and the lines of the other
 * per-record sections say whose they are (contactId).
 */
export function bundleTables(report: AccessReport): BundleTable[] {
  const identities = report.person.records.map(({ identity, ...record }) => ({ ...record, ...identity }));
  return [
    table('identity.csv', identities, ['contactId', 'externalId', 'createdAt', 'email', 'phone', 'firstName', 'lastName', 'country']),
    table('consents.csv', report.consents.events, [
      'eventId',
      'contactId',
      'purpose',
      'channel',
      'status',
      'capturedAt',
      'recordedAt',
      'source',
      'method',
      'methodIsExplicit',
      'noticeVersion',
      'evidenceRef',
      'expiresAt',
    ]),
    table('consent-status.csv', report.consents.status, [
      'purpose',
      'channel',
      'status',
      'eventId',
      'recordId',
      'capturedAt',
      'expiresAt',
      'validNow',
    ]),
    table('purchases.csv', report.purchases, [
      'contactId',
      'orderId',
      'sku',
      'productName',
      'category',
      'quantity',
      'unitPrice',
      'purchasedAt',
    ]),
    table('scores.csv', report.scores, [
      'modelId',
      'targetKind',
      'targetKey',
      'modelVersion',
      'algorithm',
      'features',
      'horizonDays',
      'scoredAt',
      'score',
      'rank',
      'percentile',
      'reasons',
    ]),
    table('exports.csv', report.exports, [
      'exportId',
      'exportedAt',
      'channel',
      'modelId',
      'position',
      'isHoldout',
      'contactValue',
      'score',
      'rank',
      'consentEventIds',
    ]),
    table('opposition-lists.csv', report.oppositionLists, ['contactId', 'listName', 'channel', 'listDate', 'matchedOn']),
  ];
}

export const REPORT_FILE = 'access-report.json';

/** Writes the machine-readable bundle (art. 20): the JSON report and one CSV per section. Returns the file paths. */
export function writePortabilityBundle(report: AccessReport, dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  const jsonPath = join(dir, REPORT_FILE);
  writeFileSync(jsonPath, `${JSON.stringify(report, null, 2)}\n`, { mode: 0o600 });
  const paths = [jsonPath];
  for (const { file, columns, rows } of bundleTables(report)) {
    const records = rows.map((row) => columns.map((column) => row[column]));
    const path = join(dir, file);
    writeFileSync(path, csvLines([columns, ...records]), { mode: 0o600 });
    paths.push(path);
  }
  return paths;
}
