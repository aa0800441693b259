import { sha256Hex } from '../../src/contacts/identity.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { DEFAULT_IDENTITY_POLICY } from '../../src/identities/resolution.repository.ts';
import type { ManifestMember } from '../../src/targeting/manifest.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { importFile } from '../imports/import.fixtures.ts';
import { recordManifest } from '../targeting/manifest.fixtures.ts';

// A small synthetic base loaded through the real imports, plus the model, score set,
// scores and list export that later stages will write (inserted here with plain SQL).

export interface Person {
  ref: string;
  email: string;
  /** as written in the file */
  phoneRaw: string;
  /** E.164, as stored */
  phone: string;
  firstName: string;
  lastName: string;
}

export const SUBJECT: Person = {
  ref: 'RGT-7301',
  email: 'zephyrine.quillardet@example.com',
  phoneRaw: '06 39 98 73 01',
  phone: '+33639987301',
  firstName: 'Zéphyrine',
  lastName: 'Quillardet',
};

export const NEIGHBOUR: Person = {
  ref: 'RGT-7302',
  email: 'anatole.brisebarre@example.com',
  phoneRaw: '06 39 98 73 02',
  phone: '+33639987302',
  firstName: 'Anatole',
  lastName: 'Brisebarre',
};

export const THIRD: Person = {
  ref: 'RGT-7303',
  email: 'philomene.gastinel@example.com',
  phoneRaw: '06 39 98 73 03',
  phone: '+33639987303',
  firstName: 'Philomène',
  lastName: 'Gastinel',
};

export const PEOPLE = [SUBJECT, NEIGHBOUR, THIRD];

export const EVIDENCE_REF = 'form-submission-8812';

async function importOrFail(database: DatabaseHandle, kind: Parameters<typeof importFile>[1], path: string, linkOnImport = true) {
  const report = await importFile(database, kind, path, {}, { identityPolicy: { ...DEFAULT_IDENTITY_POLICY, linkOnImport } });
  if (report.status !== 'committed') throw new Error(`fixture ${kind} refused: ${JSON.stringify(report.rejects)}`);
}

/**
 * Everyone: profiling + SMS + email consents with proofs, two purchases for the subject, one for the neighbour.
 * `schemaBeforePersons`: the database is migrated to before persons existed (a migration test), so contacts are not linked.
 */
export async function seedPeople(database: DatabaseHandle, options: { schemaBeforePersons?: boolean } = {}): Promise<void> {
  const files = tempFolder();
  await importOrFail(
    database,
    'products',
    files.write('products.csv', csv('sku,name,category', 'SKU-1,Garden hose,garden', 'SKU-2,"Pan, 28 cm",kitchen')),
  );
  await importOrFail(
    database,
    'contacts',
    files.write(
      'contacts.csv',
      csv(
        'external_id,email,phone,first_name,last_name,country,created_at',
        ...PEOPLE.map((p) => `${p.ref},${p.email},${p.phoneRaw},${p.firstName},${p.lastName},FR,2024-01-15`),
      ),
    ),
    !options.schemaBeforePersons,
  );
  const consentLines = PEOPLE.flatMap((p, i) => [
    `${p.ref},profiling,,granted,2025-0${i + 1}-10T10:00:00Z,web:account-form,explicit_checkbox,notice-v3,${EVIDENCE_REF}-${i}p,`,
    `${p.ref},direct_marketing,sms,granted,2025-0${i + 1}-10T10:00:00Z,web:account-form,double_opt_in,notice-v3,${EVIDENCE_REF}-${i}s,`,
    `${p.ref},direct_marketing,email,granted,2025-0${i + 1}-10T10:00:00Z,web:account-form,double_opt_in,notice-v3,${EVIDENCE_REF}-${i}e,2027-01-01`,
  ]);
  await importOrFail(
    database,
    'consents',
    files.write(
      'consents.csv',
      csv('external_id,purpose,channel,status,captured_at,source,method,notice_version,evidence_ref,expires_at', ...consentLines),
    ),
  );
  await importOrFail(
    database,
    'purchases',
    files.write(
      'purchases.csv',
      csv(
        'order_id,external_id,sku,quantity,unit_price,purchased_at',
        `O-1,${SUBJECT.ref},SKU-1,2,19.90,2025-03-01`,
        `O-2,${SUBJECT.ref},SKU-2,1,34.50,2025-04-02`,
        `O-3,${NEIGHBOUR.ref},SKU-1,1,19.90,2025-04-03`,
      ),
    ),
  );
}

export async function contactIdOf(database: DatabaseHandle, ref: string): Promise<number> {
  const { rows } = await database.pool.query<{ id: number }>('SELECT id FROM contacts WHERE external_id = $1', [ref]);
  if (!rows[0]) throw new Error(`no contact ${ref}`);
  return rows[0].id;
}

export interface ScoreFixture {
  modelId: number;
  modelVersionId: number;
  scoreSetId: number;
}

/** A model for SKU-1 with a live score set (in its own partition) scoring the given contacts. */
export async function seedLiveScores(database: DatabaseHandle, contactIds: number[]): Promise<ScoreFixture> {
  const { pool } = database;
  const model = await pool.query<{ id: number }>(
    `INSERT INTO models (target_kind, target_key, product_id)
     SELECT 'product', 'SKU-1', id FROM products WHERE sku = 'SKU-1' RETURNING id`,
  );
  const modelId = model.rows[0]!.id;
  // reasons are stored as codes into the network's explanation groups
  const network = await pool.query<{ id: number }>(
    `INSERT INTO model_networks (role, algorithm, feature_list, metadata, format, model_topology, weight_specs, weight_data)
     VALUES ('production', 'logistic', '["recency_days","frequency_12m"]',
       '{"explanationGroups":["recency_days","frequency_12m"]}', 'layers-model', '{}', '[]', '\\x00') RETURNING id`,
  );
  const version = await pool.query<{ id: number }>(
    `INSERT INTO model_versions (model_id, version, algorithm, status, trained_at, consent_snapshot_at, population_size,
       training_cutoff, horizon_days, feature_list, code_version, training_data_hash, network_id, output_index)
     VALUES ($1, 1, 'logistic_regression', 'champion', '2026-05-31', '2026-05-31', 3, '2026-05-01', 30,
       '["recency_days","frequency_12m"]', 'test', 'hash-1', $2, 0) RETURNING id`,
    [modelId, network.rows[0]!.id],
  );
  const modelVersionId = version.rows[0]!.id;
  const set = await pool.query<{ id: number }>(
    `INSERT INTO score_sets (model_id, model_version_id, status, scored_at, row_count) VALUES ($1, $2, 'live', '2026-05-31T02:00:00Z', $3) RETURNING id`,
    [modelId, modelVersionId, contactIds.length],
  );
  const scoreSetId = set.rows[0]!.id;
  await pool.query(`CREATE TABLE scores_p${scoreSetId} PARTITION OF scores FOR VALUES IN (${scoreSetId})`);
  for (const [index, contactId] of contactIds.entries()) {
    await pool.query(
      `INSERT INTO scores (score_set_id, contact_id, score, rank, percentile, reason_1, contribution_1, reason_2, contribution_2)
       VALUES ($1, $2, $3, $4, $5, 0, $6, 1, 0.12)`,
      [scoreSetId, contactId, 0.8 - index / 10, index + 1, 1 - index / contactIds.length, 0.31 - index / 100],
    );
  }
  return { modelId, modelVersionId, scoreSetId };
}

/** An SMS list export holding the given people, as the targeting stage records it (a scheme-2 manifest). */
export async function seedExport(database: DatabaseHandle, scores: ScoreFixture, people: Person[]): Promise<string> {
  const { pool } = database;
  const exported = await pool.query<{ id: string }>(
    `INSERT INTO target_exports (actor, model_id, model_version_id, score_set_id, channel, params, funnel, member_count, manifest_hash, created_at, delivery)
     VALUES ('marketer-key', $1, $2, $3, 'sms', '{"top":10}', '{"contacts":3}', $4, 'manifest-hash', '2026-05-31T09:00:00Z', 'delivered') RETURNING id`,
    [scores.modelId, scores.modelVersionId, scores.scoreSetId, people.length],
  );
  const exportId = exported.rows[0]!.id;
  const members: ManifestMember[] = [];
  for (const [index, person] of people.entries()) {
    const contactId = await contactIdOf(database, person.ref);
    // the events that made them eligible for an SMS list: profiling, then the SMS grant
    const events = await pool.query<{ id: number }>(
      `SELECT id FROM consent_events WHERE contact_id = $1 AND (purpose = 'profiling' OR channel = 'sms') ORDER BY purpose = 'profiling' DESC, id`,
      [contactId],
    );
    members.push({
      position: index + 1,
      contactId,
      score: 0.7,
      rank: index + 1,
      percentile: 0.9,
      isHoldout: false,
      consentEventIds: events.rows.map((row) => Number(row.id)),
    });
  }
  await recordManifest(database.db, exportId, members, 2);
  return exportId;
}

/** The subject's phone on a suppression list, stored hashed as the opposition import does. */
export async function seedOppositionList(database: DatabaseHandle, phone: string): Promise<void> {
  const list = await database.pool.query<{ id: number }>(
    `INSERT INTO opposition_lists (name, channel, list_date, imported_at, entry_count)
     VALUES ('own-suppression', 'phone', '2026-05-20', '2026-05-20T08:00:00Z', 1) RETURNING id`,
  );
  await database.pool.query('INSERT INTO opposition_entries (list_id, value_hash) VALUES ($1, $2)', [list.rows[0]!.id, sha256Hex(phone)]);
}

interface ColumnRef {
  table: string;
  column: string;
}

async function publicColumns(database: DatabaseHandle): Promise<ColumnRef[]> {
  const { rows } = await database.pool.query<{ table_name: string; column_name: string }>(
    `SELECT c.table_name, c.column_name
     FROM information_schema.columns c
     JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
     WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE'
     ORDER BY c.table_name, c.ordinal_position`,
  );
  return rows.map((row) => ({ table: row.table_name, column: row.column_name }));
}

const quoted = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** Every place, as "table.column", where one of `needles` appears in any column of any public table (case-insensitive). */
export async function findAnywhere(database: DatabaseHandle, needles: string[]): Promise<string[]> {
  const found: string[] = [];
  for (const { table, column } of await publicColumns(database)) {
    const { rows } = await database.pool.query<{ value: string }>(
      `SELECT ${quoted(column)}::text AS value FROM ${quoted(table)} WHERE ${quoted(column)} IS NOT NULL`,
    );
    for (const needle of needles) {
      if (rows.some((row) => row.value.toLowerCase().includes(needle.toLowerCase()))) found.push(`${table}.${column}: ${needle}`);
    }
  }
  return found;
}

/** Every row of every public table as text, sorted: equal snapshots mean nothing was written. */
export async function snapshotTables(database: DatabaseHandle): Promise<Record<string, string[]>> {
  const tables = [...new Set((await publicColumns(database)).map((column) => column.table))];
  const snapshot: Record<string, string[]> = {};
  for (const table of tables) {
    const { rows } = await database.pool.query<{ row: string }>(`SELECT t::text AS row FROM ${quoted(table)} t ORDER BY 1`);
    snapshot[table] = rows.map((row) => row.row);
  }
  return snapshot;
}

export function personalValues(person: Person): string[] {
  return [person.ref, person.email, person.phone, person.phone.slice(3), person.firstName, person.lastName];
}
