import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppContext } from '../context.ts';
import { importCsv } from '../imports/import.service.ts';
import type { ImportKind } from '../imports/importer.ts';
import { IMPORTERS } from '../imports/importers.ts';
import { importOppositionList } from '../opposition/opposition.import.ts';
import { type DemoSummary, writeDemoFiles } from './demo.generator.ts';

export interface DemoRequest {
  contacts: number;
  seed: number;
  reset: boolean;
}

export type DemoOutcome = { loaded: true; summary: DemoSummary; seconds: number } | { loaded: false; existingContacts: number };

// Every table the demo fills; reference data (purposes, channels, methods) and migrations stay.
const DOMAIN_TABLES = [
  'audit_log',
  'target_export_manifests',
  'contact_pressure',
  'target_exports',
  'api_keys',
  'scores',
  'score_sets',
  'profiling_snapshots',
  'model_networks',
  'model_versions',
  'models',
  'pipeline_runs',
  'opposition_entries',
  'opposition_lists',
  'purchases',
  'products',
  'consent_events',
  'erasure_tombstones',
  'contact_personal_data',
  'contacts',
  'imports',
];

/**
 * Generates the synthetic base as CSV files and loads it through the ordinary
 * import path, so the demo exercises exactly what a customer's files go through.
 */
export async function loadDemo(context: AppContext, request: DemoRequest): Promise<DemoOutcome> {
  const { pool } = context.database;
  const existing = (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM contacts')).rows[0]!.n;
  if (existing > 0 && !request.reset) return { loaded: false, existingContacts: existing };
  if (request.reset) {
    // score sets are partitions named after their id: ids restart, so the tables must go too
    const partitions = await pool.query<{ name: string }>(
      `SELECT inhrelid::regclass::text AS name FROM pg_inherits WHERE inhparent = 'scores'::regclass`,
    );
    for (const { name } of partitions.rows) await pool.query(`DROP TABLE ${name}`);
    await pool.query(`TRUNCATE ${DOMAIN_TABLES.join(', ')} RESTART IDENTITY CASCADE`);
  }

  const started = Date.now();
  const now = context.clock.now();
  const dir = mkdtempSync(join(tmpdir(), 'cible-demo-'));
  try {
    const { files, summary } = await writeDemoFiles(dir, { contacts: request.contacts, seed: request.seed, now });
    const deps = {
      database: context.database,
      logger: context.logger,
      now,
      defaultPhoneCountry: context.config.defaultPhoneCountry,
      identityPolicy: context.config.identityPolicy,
    };
    const order: Array<[ImportKind, string]> = [
      ['products', files.products],
      ['contacts', files.contacts],
      ['consents', files.consents],
      ['purchases', files.purchases],
    ];
    for (const [kind, file] of order) {
      const report = await importCsv(deps, IMPORTERS[kind], file);
      if (report.status !== 'committed') {
        throw new Error(`the demo ${kind} file was refused: ${report.rejectReasons.map((r) => r.reason).join('; ')}`);
      }
    }
    const threeDaysAgo = new Date(now.getTime() - 3 * 86_400_000);
    await importOppositionList(deps, { name: 'bloctel', channel: 'phone', listDate: threeDaysAgo, file: files.opposition });
    return { loaded: true, summary, seconds: (Date.now() - started) / 1000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatDemoSummary(summary: DemoSummary, seconds: number, engine: string): string {
  const n = (value: number) => value.toLocaleString('en-GB');
  const b = summary.breakdown;
  const p = b.profiling;
  const channels = Object.entries(b.channels)
    .map(([channel, state]) => `${channel} ${n(state.active)}`)
    .join(', ');
  return [
    `demo base loaded into the ${engine} database in ${seconds.toFixed(1)} s:`,
    `  ${n(summary.contacts)} contacts (${n(b.buyers)} customers, ${n(b.prospects)} prospects; ${n(b.withEmail)} with email, ${n(b.withPhone)} with phone)`,
    `  ${n(summary.products)} products in ${summary.categories} categories`,
    `  ${n(summary.purchases)} purchase lines in ${n(summary.orders)} orders over the last year`,
    `  ${n(summary.consentEvents)} consent events: profiling valid for ${n(b.profilingEligible)};` +
      ` never consented ${n(p.neverConsented)}, refused ${n(p.refused)}, withdrew ${n(p.withdrew)},` +
      ` pre-ticked/implied/bundled ${n(p.invalidMethod)}, no proof ${n(p.missingProof)}, expired ${n(p.expired)}`,
    `  channel consents in force: ${channels}; SMS but not phone calls: ${n(b.smsWithoutPhone)}`,
    `  opposition list "bloctel" (phone): ${n(summary.oppositionEntries)} numbers, ${n(b.opposition.contactsMatched)} contacts match`,
  ].join('\n');
}
