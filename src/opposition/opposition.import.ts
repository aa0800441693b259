import type { Logger } from 'pino';
import { identifierOfContactField } from '../consent/eligibility.ts';
import { type Normalized, normalizeEmail, normalizePhone, sha256Hex } from '../contacts/identity.ts';
import { type BulkWriter, openBulkWriter } from '../db/bulk.ts';
import type { DatabaseHandle } from '../db/engine.ts';
import { ImportFileError, openCsv } from '../imports/csv-source.ts';
import type { LineReject } from '../imports/importer.ts';

export interface OppositionImportRequest {
  /** the list's name, e.g. bloctel or company-suppression; a new import replaces the list of that name */
  name: string;
  channel: string;
  /** the date the list was published (defaults to now) */
  listDate?: Date;
  file: string;
  skipInvalid?: boolean;
}

export interface OppositionImportReport {
  status: 'committed' | 'rejected';
  listId: number | null;
  name: string;
  channel: string;
  listDate: string;
  rowsRead: number;
  entries: number;
  previousEntries: number;
  rejected: number;
  rejects: LineReject[];
}

export interface OppositionDependencies {
  database: DatabaseHandle;
  logger: Logger;
  now: Date;
  defaultPhoneCountry: string;
}

const REPORTED_REJECTS = 50;

/**
 * Imports a national or company opposition list (a CSV with a `value` column, or
 * one value a line), stores only SHA-256 hashes of the normalised values, and
 * replaces the previous version of the list in the same transaction.
 */
export async function importOppositionList(
  deps: OppositionDependencies,
  request: OppositionImportRequest,
): Promise<OppositionImportReport> {
  const channelRow = await deps.database.pool.query<{ contact_field: string }>('SELECT contact_field FROM channels WHERE code = $1', [
    request.channel,
  ]);
  const contactField = channelRow.rows[0]?.contact_field;
  if (!contactField) throw new ImportFileError(`unknown channel "${request.channel}"`);
  const identifier = identifierOfContactField(contactField);
  if (!identifier) {
    throw new ImportFileError(`channel "${request.channel}" is reached by ${contactField}, which opposition lists cannot match`);
  }
  const listDate = request.listDate ?? deps.now;
  if (listDate > deps.now) throw new ImportFileError(`--list-date ${listDate.toISOString().slice(0, 10)} is in the future`);
  if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(request.name)) {
    throw new ImportFileError(`list name "${request.name}" must be lower-case letters, digits, - or _ (at most 63)`);
  }
  const normalize = (value: string): Normalized =>
    identifier === 'email' ? normalizeEmail(value) : normalizePhone(value, deps.defaultPhoneCountry);

  const source = await openCsv(request.file, { required: [], optional: ['value'] });
  // a file without a `value` header is a file of bare values, the first line included
  const bareLines = !source.header.includes('value');
  const rejects: LineReject[] = [];
  let rejected = 0;
  let rowsRead = 0;
  const client = await deps.database.pool.connect();
  let staging: BulkWriter | undefined;
  try {
    await client.query('BEGIN');
    await client.query('CREATE TEMP TABLE opposition_staging (value_hash text) ON COMMIT DROP');
    const writer = openBulkWriter(client, deps.database.engine, 'opposition_staging', [{ name: 'value_hash', type: 'text' }]);
    staging = writer;
    let batch: string[][] = [];
    const take = async (line: number, value: string | undefined, shapeError?: string) => {
      rowsRead += 1;
      const normalized: Normalized = shapeError ? { ok: false, error: shapeError } : normalize(value ?? '');
      if (!normalized.ok) {
        rejected += 1;
        if (rejects.length < REPORTED_REJECTS) rejects.push({ line, field: 'value', message: `"${value ?? ''}" ${normalized.error}` });
        return;
      }
      batch.push([sha256Hex(normalized.value)]);
      if (batch.length >= 5_000) {
        await writer.write(batch);
        batch = [];
      }
    };
    if (bareLines) await take(1, source.header[0]);
    for await (const chunk of source.chunks) {
      for (const row of chunk) {
        const shapeError = bareLines && row.raw.length > 1 ? 'is not alone on its line' : row.values.__shape_error;
        await take(row.line, bareLines ? row.raw[0] : row.values.value, shapeError);
      }
    }
    await writer.write(batch);
    await writer.end();

    if (rowsRead === 0) throw new ImportFileError('the list holds no values');
    // a list of nothing but bad values is a broken download: replacing the list with it would open the channel
    if (rejected > 0 && (!request.skipInvalid || rejected === rowsRead)) {
      await client.query('ROLLBACK');
      return report('rejected', null, 0, 0);
    }
    const previous = await client.query<{ id: number; channel: string; entry_count: number }>(
      'SELECT id, channel, entry_count FROM opposition_lists WHERE name = $1 FOR UPDATE',
      [request.name],
    );
    const existing = previous.rows[0];
    if (existing && existing.channel !== request.channel) {
      throw new ImportFileError(
        `list "${request.name}" is a list for channel ${existing.channel}; import a list for channel ${request.channel} under another name`,
      );
    }
    const { rows } = await client.query<{ id: number }>(
      `INSERT INTO opposition_lists (name, channel, list_date, imported_at, entry_count) VALUES ($1, $2, $3, $4, 0)
       ON CONFLICT (name) DO UPDATE SET list_date = excluded.list_date, imported_at = excluded.imported_at
       RETURNING id`,
      [request.name, request.channel, listDate.toISOString().slice(0, 10), deps.now],
    );
    const listId = rows[0]!.id;
    await client.query('DELETE FROM opposition_entries WHERE list_id = $1', [listId]);
    const inserted = await client.query(
      'INSERT INTO opposition_entries (list_id, value_hash) SELECT DISTINCT $1::bigint, value_hash FROM opposition_staging',
      [listId],
    );
    const entries = inserted.rowCount ?? 0;
    await client.query('UPDATE opposition_lists SET entry_count = $2 WHERE id = $1', [listId, entries]);
    await client.query(
      `INSERT INTO audit_log (actor, action, subject_type, subject_id, details) VALUES ('cli', 'opposition.import', 'opposition_list', $1, $2)`,
      [String(listId), JSON.stringify({ name: request.name, channel: request.channel, entries, rejected })],
    );
    await client.query('COMMIT');
    await client.query('ANALYZE opposition_entries, opposition_lists');
    deps.logger.info({ list: request.name, channel: request.channel, entries, rejected }, 'opposition list imported');
    return report('committed', listId, entries, existing?.entry_count ?? 0);
  } catch (error) {
    // a COPY still open (the file broke while values were streaming) is failed first, or ROLLBACK would wait behind it
    await staging?.abort();
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }

  function report(status: OppositionImportReport['status'], listId: number | null, entries: number, previousEntries: number) {
    return {
      status,
      listId,
      name: request.name,
      channel: request.channel,
      listDate: listDate.toISOString().slice(0, 10),
      rowsRead,
      entries,
      previousEntries,
      rejected,
      rejects,
    };
  }
}
