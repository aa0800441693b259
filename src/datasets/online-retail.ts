import { once } from 'node:events';
import { createReadStream, createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import Papa from 'papaparse';
import { normalizeExternalId } from '../contacts/identity.ts';
import { csvLines } from '../csv/csv-writer.ts';

/** How every Online Retail customer gets a profiling consent: synthetic, and said so in each record. */
export const SYNTHETIC_CONSENT = {
  source: 'synthetic:uci-online-retail',
  method: 'explicit_checkbox',
  notice_version: 'synthetic-demo-v1',
  evidence_ref: 'synthetic-consent-for-public-dataset',
} as const;

// Stock codes that are fees and adjustments, not goods
const NON_PRODUCT_CODES = new Set(['POST', 'DOT', 'M', 'D', 'C2', 'S', 'B', 'CRUK', 'PADS', 'AMAZONFEE', 'BANK CHARGES']);

export interface OnlineRetailFiles {
  contacts: string;
  products: string;
  consents: string;
  customers: number;
  products_count: number;
}

/**
 * Derives from the UCI Online Retail log the contacts, products and (synthetic, explicit)
 * profiling consents that its purchases need, as CSV files in the import contract.
 * A customer's record starts at their first invoice, and so does their consent.
 */
export async function prepareOnlineRetail(source: string, outDir: string): Promise<OnlineRetailFiles> {
  const customers = new Map<string, { firstSeen: string; country: string }>();
  const products = new Map<string, string>();
  const parser = Papa.parse(Papa.NODE_STREAM_INPUT, { header: true, skipEmptyLines: true });
  const reading = pipeline(createReadStream(source), createGunzip(), parser);
  for await (const row of parser as AsyncIterable<Record<string, string>>) {
    const sku = row.StockCode?.trim();
    if (sku && !products.has(sku)) products.set(sku, row.Description?.trim() || sku);
    const customerId = normalizeExternalId(row.CustomerID ?? '');
    if (!customerId || !row.InvoiceDate) continue;
    const seen = customers.get(customerId);
    if (!seen || row.InvoiceDate < seen.firstSeen) customers.set(customerId, { firstSeen: row.InvoiceDate, country: row.Country ?? '' });
  }
  await reading;

  mkdirSync(outDir, { recursive: true });
  const files = {
    contacts: join(outDir, 'online-retail-contacts.csv'),
    products: join(outDir, 'online-retail-products.csv'),
    consents: join(outDir, 'online-retail-consents.csv'),
  };
  const customerRows = [...customers].sort(([a], [b]) => a.localeCompare(b));
  await writeCsv(
    files.contacts,
    ['external_id', 'country', 'created_at'],
    customerRows.map(([id, c]) => [id, c.country, c.firstSeen]),
  );
  await writeCsv(
    files.products,
    ['sku', 'name', 'category'],
    [...products].map(([sku, name]) => [sku, name, NON_PRODUCT_CODES.has(sku.toUpperCase()) ? 'fees' : 'gifts']),
  );
  await writeCsv(
    files.consents,
    ['external_id', 'purpose', 'channel', 'status', 'captured_at', 'source', 'method', 'notice_version', 'evidence_ref'],
    customerRows.map(([id, c]) => [
      id,
      'profiling',
      '',
      'granted',
      c.firstSeen,
      SYNTHETIC_CONSENT.source,
      SYNTHETIC_CONSENT.method,
      SYNTHETIC_CONSENT.notice_version,
      SYNTHETIC_CONSENT.evidence_ref,
    ]),
  );
  return { ...files, customers: customers.size, products_count: products.size };
}

async function writeCsv(path: string, header: string[], rows: string[][]): Promise<void> {
  const output = createWriteStream(path);
  output.write(csvLines([header]));
  for (let from = 0; from < rows.length; from += 5_000) {
    if (!output.write(csvLines(rows.slice(from, from + 5_000)))) await once(output, 'drain');
  }
  output.end();
  await once(output, 'finish');
}
