import type pg from 'pg';
import type { LineReject } from './importer.ts';

/** Later lines repeating the key of an earlier line of the same file. */
export async function duplicateKeyLines(
  client: pg.PoolClient,
  keyColumns: string[],
  describe: (key: string, firstLine: number) => string,
): Promise<LineReject[]> {
  const key = keyColumns.join(", ' / ', ");
  const { rows } = await client.query<{ line: number; key: string; first_line: number }>(
    `SELECT line, key, first_line FROM (
       SELECT line, concat(${key}) AS key,
              min(line) OVER (PARTITION BY ${keyColumns.join(', ')}) AS first_line
       FROM import_staging
     ) lines WHERE line <> first_line ORDER BY line`,
  );
  return rows.map((row) => ({ line: row.line, field: keyColumns.join('+'), message: describe(row.key, row.first_line) }));
}

/** Lines whose external_id names no contact (or an erased one). */
export async function unknownContactLines(client: pg.PoolClient): Promise<LineReject[]> {
  const { rows } = await client.query<{ line: number; external_id: string }>(
    `SELECT s.line, s.external_id FROM import_staging s
     WHERE NOT EXISTS (SELECT 1 FROM contacts c WHERE c.external_id = s.external_id)
     ORDER BY s.line`,
  );
  return rows.map((row) => ({
    line: row.line,
    field: 'external_id',
    message: `no contact has external_id "${row.external_id}" (import contacts first)`,
  }));
}
