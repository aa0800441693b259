import type { DatabaseHandle } from '../../src/db/engine.ts';
import { type ImportDependencies, importCsv } from '../../src/imports/import.service.ts';
import type { ImportKind, ImportOptions } from '../../src/imports/importer.ts';
import { IMPORTERS } from '../../src/imports/importers.ts';
import { captureLogger } from '../helpers/silent-logger.ts';

export const NOW = new Date('2026-06-01T12:00:00Z');

export function importFile(
  database: DatabaseHandle,
  kind: ImportKind,
  file: string,
  options: ImportOptions = {},
  deps: Partial<ImportDependencies> = {},
) {
  return importCsv(
    { database, logger: captureLogger().logger, now: NOW, defaultPhoneCountry: 'FR', ...deps },
    IMPORTERS[kind],
    file,
    options,
  );
}

export const PRODUCTS_CSV = ['sku,name,category', 'SKU-1,Garden hose,garden', 'SKU-2,"Pan, 28 cm",kitchen'];

export const CONTACTS_CSV = [
  'external_id,email,phone,first_name,last_name,country,created_at',
  'C1,Alice.Martin@Example.com,06 39 98 00 01,Alice,Martin,FR,2024-01-02',
  'C2,,+33 1 99 00 00 02,,,FR,2024-02-03T09:30:00Z',
  'C3,bob@example.org,,Bob,,BE,2024-03-04 10:00:00',
];

/** Counts of every table an import writes, to prove that nothing was half-written. */
export async function tableCounts(database: DatabaseHandle): Promise<Record<string, number>> {
  const tables = ['contacts', 'contact_personal_data', 'products', 'purchases', 'consent_events', 'audit_log'];
  const counts: Record<string, number> = {};
  for (const table of tables) {
    const { rows } = await database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
    counts[table] = rows[0]!.n;
  }
  return counts;
}
