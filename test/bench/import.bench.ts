// npm run bench:import — rows/s for importing 1M purchase lines into PostgreSQL and embedded PGlite.
// Usage: npm run bench:import [-- --rows 1000000] [-- --engines postgres,pglite]
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { DatabaseTarget } from '../../src/config.ts';
import { openDatabase } from '../../src/db/engine.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { importCsv } from '../../src/imports/import.service.ts';
import { IMPORTERS } from '../../src/imports/importers.ts';
import { createLogger } from '../../src/logger.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    engines: { type: 'string', default: 'postgres,pglite' },
  },
});
const ROWS = Number(values.rows);
const CONTACTS = 50_000;
const PRODUCTS = 50;
const serverUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function writeLines(path: string, header: string, count: number, line: (i: number) => string) {
  const output = createWriteStream(path);
  output.write(`${header}\n`);
  for (let i = 0; i < count; i += 1) {
    if (!output.write(`${line(i)}\n`)) await once(output, 'drain');
  }
  output.end();
  await once(output, 'finish');
}

const dir = mkdtempSync(join(tmpdir(), 'cible-bench-import-'));
const files = { contacts: join(dir, 'contacts.csv'), products: join(dir, 'products.csv'), purchases: join(dir, 'purchases.csv') };
await writeLines(files.contacts, 'external_id,created_at', CONTACTS, (i) => `B${i},2023-01-01T00:00:00Z`);
await writeLines(files.products, 'sku,name,category', PRODUCTS, (i) => `SKU-${i},Product ${i},cat-${i % 5}`);
const start = Date.UTC(2024, 0, 1);
// three lines an order, each order of one contact
await writeLines(files.purchases, 'order_id,external_id,sku,quantity,unit_price,purchased_at', ROWS, (i) => {
  const order = Math.floor(i / 3);
  const at = new Date(start + order * 37_000).toISOString();
  return `O${order},B${(order * 7919) % CONTACTS},SKU-${(i * 31) % PRODUCTS},${1 + (i % 4)},${(5 + (i % 100) / 4).toFixed(2)},${at}`;
});

const logger = createLogger('warn');
const results: Array<Record<string, string | number>> = [];

async function run(engine: 'postgres' | 'pglite') {
  let target: DatabaseTarget;
  let cleanup = async () => {};
  if (engine === 'postgres') {
    const admin = new pg.Pool({ connectionString: serverUrl, max: 1 });
    await admin.query('DROP DATABASE IF EXISTS cible_bench_import WITH (FORCE)');
    await admin.query('CREATE DATABASE cible_bench_import');
    const url = new URL(serverUrl);
    url.pathname = '/cible_bench_import';
    target = { kind: 'postgres', url: url.toString() };
    cleanup = async () => {
      await admin.query('DROP DATABASE IF EXISTS cible_bench_import WITH (FORCE)');
      await admin.end();
    };
  } else {
    target = { kind: 'pglite', dataDir: join(dir, 'pglite') };
    cleanup = async () => rmSync(join(dir, 'pglite'), { recursive: true, force: true });
  }
  const database = await openDatabase(target);
  try {
    await migrateToLatest(database.db);
    const deps = { database, logger, now: new Date(), defaultPhoneCountry: 'FR' };
    await importCsv(deps, IMPORTERS.contacts, files.contacts);
    await importCsv(deps, IMPORTERS.products, files.products);
    const began = process.hrtime.bigint();
    const report = await importCsv(deps, IMPORTERS.purchases, files.purchases);
    const seconds = Number(process.hrtime.bigint() - began) / 1e9;
    if (report.status !== 'committed' || report.inserted !== ROWS) {
      throw new Error(`unexpected import result on ${engine}: ${JSON.stringify(report.rejectReasons)}`);
    }
    results.push({
      engine,
      rows: ROWS,
      seconds: Number(seconds.toFixed(2)),
      'rows/s': Math.round(ROWS / seconds),
      'peak RSS MB': Math.round(process.resourceUsage().maxRSS / 1024),
    });
  } finally {
    await database.close();
    await cleanup();
  }
}

for (const engine of values.engines.split(',') as Array<'postgres' | 'pglite'>) await run(engine);
rmSync(dir, { recursive: true, force: true });
console.log(`import of ${ROWS.toLocaleString('en-GB')} purchase lines (${CONTACTS} contacts, ${PRODUCTS} products), one transaction each`);
console.table(results);
