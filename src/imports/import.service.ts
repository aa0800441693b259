import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { basename } from 'node:path';
import type pg from 'pg';
import type { Logger } from 'pino';
import { csvLines } from '../csv/csv-writer.ts';
import { type BulkValue, type BulkWriter, openBulkWriter } from '../db/bulk.ts';
import type { DatabaseHandle } from '../db/engine.ts';
import { DEFAULT_IDENTITY_POLICY, type IdentityPolicy } from '../identities/resolution.repository.ts';
import type { TombstoneKeys } from '../rights/tombstone-keys.ts';
import { openCsv } from './csv-source.ts';
import type { ApplyCounts, ImporterDefinition, ImportOptions, ImportSession, LineReject } from './importer.ts';

export interface ImportDependencies {
  database: DatabaseHandle;
  logger: Logger;
  now: Date;
  defaultPhoneCountry: string;
  /** the erasure tombstones' keys (tombstoneKeys(config.tombstones)): needed to import contacts once someone was erased */
  tombstoneKeys?: TombstoneKeys;
  /** how contact records are linked into persons (config.identityPolicy); the default when omitted */
  identityPolicy?: IdentityPolicy;
}

export interface RejectSummary {
  reason: string;
  count: number;
  firstLines: number[];
}

export interface ImportReport extends ApplyCounts {
  kind: string;
  file: string;
  status: 'committed' | 'rejected';
  importId: number;
  rowsRead: number;
  rejected: number;
  /** the first rejected lines, in file order */
  rejects: LineReject[];
  /** rejected lines grouped by reason */
  rejectReasons: RejectSummary[];
  rejectsFile?: string;
  durationMs: number;
}

const BATCH_ROWS = 5_000;
const REPORTED_REJECTS = 50;
/** columns that name a record: a tab or a line break in them is refused like any other control character */
const IDENTIFIER_COLUMNS = ['external_id', 'order_id', 'sku'];

/**
 * Imports one CSV file in one transaction: every row is read and checked, staged in
 * bulk, checked again as a set (duplicates, unknown references, erased people),
 * then applied. With a bad row and no `skipInvalid`, nothing is written.
 */
export async function importCsv(
  deps: ImportDependencies,
  importer: ImporterDefinition,
  file: string,
  options: ImportOptions = {},
): Promise<ImportReport> {
  const started = Date.now();
  const source = await openCsv(file, {
    required: importer.required,
    optional: importer.optional,
    columnMap: options.columnMap,
    identifiers: IDENTIFIER_COLUMNS,
    encoding: options.encoding,
  });
  if (options.skipInvalid && !options.rejectsFile) options = { ...options, rejectsFile: `${file}.rejects.csv` };
  const rejects = new RejectCollector(options.skipInvalid ? options.rejectsFile : undefined, source.header);
  const client = await deps.database.pool.connect();
  let rowsRead = 0;
  let writer: BulkWriter | undefined;
  try {
    await client.query('BEGIN');
    const { rows } = await client.query<{ id: number }>(
      `INSERT INTO imports (kind, file_name, status, started_at, finished_at, rows_read, rows_imported, rows_rejected, options)
       VALUES ($1, $2, 'committed', $3, $3, 0, 0, 0, $4) RETURNING id`,
      [importer.kind, basename(file), deps.now, JSON.stringify(options)],
    );
    const session: ImportSession = {
      client,
      importId: rows[0]!.id,
      options,
      defaultPhoneCountry: deps.defaultPhoneCountry,
      identityPolicy: deps.identityPolicy ?? DEFAULT_IDENTITY_POLICY,
      now: deps.now,
      tombstoneKeys: deps.tombstoneKeys,
    };
    const stagingColumns = [{ name: 'line', type: 'integer' as const }, { name: 'raw', type: 'text' as const }, ...importer.staging];
    await client.query(`CREATE TEMP TABLE import_staging (${stagingColumns.map((c) => `${c.name} ${c.type}`).join(', ')}) ON COMMIT DROP`);
    const parseRow = await importer.prepare(session);
    writer = openBulkWriter(client, deps.database.engine, 'import_staging', stagingColumns);
    let batch: BulkValue[][] = [];
    for await (const chunk of source.chunks) {
      for (const { line, values, raw, problem } of chunk) {
        rowsRead += 1;
        const result = problem ? { ok: false as const, error: problem } : parseRow(values);
        if (result.ok) batch.push([line, options.skipInvalid ? JSON.stringify(raw) : null, ...result.row]);
        else rejects.add({ line, ...result.error }, raw);
      }
      await rejects.flush();
      if (batch.length >= BATCH_ROWS) {
        await writer.write(batch);
        batch = [];
      }
    }
    await writer.write(batch);
    await writer.end();
    writer = undefined;
    // temporary tables are never analysed automatically; without statistics the checks plan nested loops
    await client.query('ANALYZE import_staging');
    deps.logger.debug({ kind: importer.kind, rowsRead, ms: Date.now() - started }, 'rows staged');

    const setRejects = await importer.check(session);
    deps.logger.debug({ kind: importer.kind, setRejects: setRejects.length, ms: Date.now() - started }, 'set checks done');
    if (setRejects.length > 0) {
      const lines = setRejects.map((reject) => reject.line);
      const { rows: rawRows } = await client.query<{ line: number; raw: string | null }>(
        'DELETE FROM import_staging WHERE line = ANY($1::int[]) RETURNING line, raw',
        [lines],
      );
      const rawByLine = new Map(rawRows.map((row) => [row.line, row.raw ? (JSON.parse(row.raw) as string[]) : []]));
      for (const reject of setRejects) rejects.add(reject, rawByLine.get(reject.line) ?? []);
      await rejects.flush();
    }

    if (rejects.count > 0 && !options.skipInvalid) {
      await client.query('ROLLBACK');
      const report = buildReport('rejected', session.importId, emptyCounts());
      await recordRejectedImport(client, deps, importer.kind, file, report, options);
      return report;
    }
    const counts = await importer.apply(session);
    deps.logger.debug({ kind: importer.kind, ms: Date.now() - started }, 'rows applied');
    await client.query(
      `UPDATE imports SET finished_at = $2, rows_read = $3, rows_imported = $4, rows_unchanged = $5, rows_rejected = $6
       WHERE id = $1`,
      [
        session.importId,
        new Date(deps.now.getTime() + (Date.now() - started)),
        rowsRead,
        counts.inserted + counts.updated,
        counts.unchanged,
        rejects.count,
      ],
    );
    await client.query(
      `INSERT INTO audit_log (actor, action, subject_type, subject_id, details) VALUES ('cli', 'import', 'import', $1, $2)`,
      [String(session.importId), JSON.stringify({ kind: importer.kind, rowsRead, ...counts, rejected: rejects.count })],
    );
    await client.query('COMMIT');
    await client.query(`VACUUM (ANALYZE) ${importer.writes.join(', ')}`);
    const report = buildReport('committed', session.importId, counts);
    deps.logger.info(
      { kind: importer.kind, importId: report.importId, rowsRead, ...counts, rejected: rejects.count, durationMs: report.durationMs },
      'import committed',
    );
    return report;
  } catch (error) {
    // a COPY still open (the file broke while rows were streaming) is failed first, or ROLLBACK would wait behind it
    await writer?.abort();
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
    await rejects.close();
  }

  function buildReport(status: ImportReport['status'], importId: number, counts: ApplyCounts): ImportReport {
    return {
      kind: importer.kind,
      file,
      status,
      importId,
      rowsRead,
      ...counts,
      rejected: rejects.count,
      rejects: rejects.first(),
      rejectReasons: rejects.summary(),
      rejectsFile: options.skipInvalid && rejects.count > 0 ? options.rejectsFile : undefined,
      durationMs: Date.now() - started,
    };
  }
}

function emptyCounts(): ApplyCounts {
  return { inserted: 0, updated: 0, unchanged: 0, merged: 0 };
}

/** The refused attempt is itself recorded, outside the rolled-back transaction (on the same connection). */
async function recordRejectedImport(
  client: pg.PoolClient,
  deps: ImportDependencies,
  kind: string,
  file: string,
  report: ImportReport,
  options: ImportOptions,
): Promise<void> {
  const { rows } = await client.query<{ id: number }>(
    `INSERT INTO imports (kind, file_name, status, started_at, finished_at, rows_read, rows_imported, rows_rejected, options)
     VALUES ($1, $2, 'rejected', $3, $3, $4, 0, $5, $6) RETURNING id`,
    [kind, basename(file), deps.now, report.rowsRead, report.rejected, JSON.stringify(options)],
  );
  report.importId = rows[0]!.id;
  deps.logger.warn({ kind, importId: report.importId, rowsRead: report.rowsRead, rejected: report.rejected }, 'import rejected');
}

/** Counts rejected lines, keeps the first ones and a summary by reason, and streams them to a file when asked. */
class RejectCollector {
  count = 0;
  private readonly kept: LineReject[] = [];
  private readonly reasons = new Map<string, RejectSummary>();
  private readonly output: WriteStream | undefined;

  constructor(path: string | undefined, header: string[]) {
    if (path) {
      // the rejected lines are personal data: readable by the importing user only
      this.output = createWriteStream(path, { mode: 0o600 });
      this.output.write(csvLines([['line', 'reason', ...header]]));
    }
  }

  add(reject: LineReject, raw: string[]): void {
    this.count += 1;
    if (this.kept.length < REPORTED_REJECTS) this.kept.push(reject);
    const reason = `${reject.field}: ${reject.message.replace(/"[^"]*"/g, '"…"').replace(/\b\d+(\.\d+)?\b/g, 'N')}`;
    const summary = this.reasons.get(reason) ?? { reason, count: 0, firstLines: [] };
    summary.count += 1;
    if (summary.firstLines.length < 5) summary.firstLines.push(reject.line);
    this.reasons.set(reason, summary);
    this.output?.write(csvLines([[reject.line, `${reject.field}: ${reject.message}`, ...raw]]));
  }

  /** Waits until the rejects file has taken what was written so far. */
  async flush(): Promise<void> {
    if (this.output?.writableNeedDrain) await once(this.output, 'drain');
  }

  first(): LineReject[] {
    return [...this.kept].sort((a, b) => a.line - b.line);
  }

  summary(): RejectSummary[] {
    return [...this.reasons.values()].sort((a, b) => b.count - a.count);
  }

  async close(): Promise<void> {
    if (!this.output) return;
    this.output.end();
    await once(this.output, 'finish');
  }
}
