// npm run bench:import — rows/s for importing 1M purchase lines into PostgreSQL and embedded PGlite.
// Usage: npm run bench:import [-- --rows 1000000] [-- --engines postgres,pglite]
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { DatabaseTarget } from '../../src/config.ts';
import { type DatabaseHandle, openDatabase } from '../../src/db/engine.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { DEFAULT_IDENTITY_POLICY } from '../../src/identities/resolution.repository.ts';
import { importCsv } from '../../src/imports/import.service.ts';
import { IMPORTERS } from '../../src/imports/importers.ts';
import { createLogger } from '../../src/logger.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    engines: { type: 'string', default: 'postgres,pglite' },
    'contact-rows': { type: 'string', default: '1000000' },
  },
});
const ROWS = Number(values.rows);
const CONTACTS = 50_000;
/** the contacts import measured with identity resolution off and on: 5% are a second record of a contact */
const CONTACT_ROWS = Number(values['contact-rows']);
const DUPLICATE_EVERY = 20;
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
const files = {
  contacts: join(dir, 'contacts.csv'),
  products: join(dir, 'products.csv'),
  purchases: join(dir, 'purchases.csv'),
  contactsWithDuplicates: join(dir, 'contacts-with-duplicates.csv'),
};
await writeLines(files.contacts, 'external_id,created_at', CONTACTS, (i) => `B${i},2023-01-01T00:00:00Z`);
await writeLines(files.products, 'sku,name,category', PRODUCTS, (i) => `SKU-${i},Product ${i},cat-${i % 5}`);
// every 20th record is another source's record of the contact before it: the email in another case,
// the phone in national format, the same name
await writeLines(files.contactsWithDuplicates, 'external_id,email,phone,first_name,last_name,created_at', CONTACT_ROWS, (i) => {
  const duplicate = i % DUPLICATE_EVERY === DUPLICATE_EVERY - 1;
  const person = duplicate ? i - 1 : i;
  const number = String(100_000_000 + person).slice(1);
  return duplicate
    ? `CRM-${i},P${person}@Example.test,06${number},First${person},Last${person},2023-02-01T00:00:00Z`
    : `SHOP-${i},p${person}@example.test,+336${number},First${person},Last${person},2023-01-01T00:00:00Z`;
});
const start = Date.UTC(2024, 0, 1);
// three lines an order, each order of one contact
await writeLines(files.purchases, 'order_id,external_id,sku,quantity,unit_price,purchased_at', ROWS, (i) => {
  const order = Math.floor(i / 3);
  const at = new Date(start + order * 37_000).toISOString();
  return `O${order},B${(order * 7919) % CONTACTS},SKU-${(i * 31) % PRODUCTS},${1 + (i % 4)},${(5 + (i % 100) / 4).toFixed(2)},${at}`;
});

const logger = createLogger('warn');
const results: Array<Record<string, string | number>> = [];
const contactResults: Array<Record<string, string | number>> = [];

async function run(engine: 'postgres' | 'pglite', work: (database: DatabaseHandle) => Promise<void>) {
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
    await work(database);
  } finally {
    await database.close();
    await cleanup();
  }
}

async function purchases(engine: 'postgres' | 'pglite', database: DatabaseHandle) {
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
}

/** The contacts import of a base with 5% duplicates, with identity resolution off then on, each into a fresh database. */
async function contactsWithResolution(engine: 'postgres' | 'pglite') {
  const timed: Record<string, number> = {};
  let linked = 0;
  for (const linkOnImport of [false, true]) {
    await run(engine, async (database) => {
      const deps = {
        database,
        logger,
        now: new Date(),
        defaultPhoneCountry: 'FR',
        identityPolicy: { ...DEFAULT_IDENTITY_POLICY, linkOnImport },
      };
      const began = process.hrtime.bigint();
      const report = await importCsv(deps, IMPORTERS.contacts, files.contactsWithDuplicates);
      timed[linkOnImport ? 'on' : 'off'] = Number(process.hrtime.bigint() - began) / 1e9;
      if (report.status !== 'committed' || report.inserted !== CONTACT_ROWS) {
        throw new Error(`unexpected contacts import on ${engine}: ${JSON.stringify(report.rejectReasons)}`);
      }
      if (linkOnImport) linked = report.linked ?? 0;
    });
  }
  contactResults.push({
    engine,
    rows: CONTACT_ROWS,
    'resolution off s': Number(timed.off!.toFixed(2)),
    'resolution on s': Number(timed.on!.toFixed(2)),
    'on / off': (timed.on! / timed.off!).toFixed(2),
    'records linked': linked,
  });
}

for (const engine of values.engines.split(',') as Array<'postgres' | 'pglite'>) {
  await run(engine, (database) => purchases(engine, database));
  if (CONTACT_ROWS > 0) await contactsWithResolution(engine);
}
rmSync(dir, { recursive: true, force: true });
console.log(`import of ${ROWS.toLocaleString('en-GB')} purchase lines (${CONTACTS} contacts, ${PRODUCTS} products), one transaction each`);
console.table(results);
if (contactResults.length > 0) {
  console.log(
    `import of ${CONTACT_ROWS.toLocaleString('en-GB')} contacts of whom 1 in ${DUPLICATE_EVERY} is a second record of another, ` +
      'identity resolution off then on, each into a fresh database, same run',
  );
  console.table(contactResults);
}
