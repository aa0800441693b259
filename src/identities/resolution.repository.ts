import { type Kysely, sql } from 'kysely';
import type pg from 'pg';
import type { Database } from '../db/database.ts';
import { DomainError } from '../errors.ts';

/**
 * Persons above records. Records are linked to one person by deterministic matches on their
 * normalised identifiers only (the lower-cased email, the E.164 phone: their hashes in
 * contact_personal_data), never by name similarity. An identifier links the records holding
 * it unless it is a generic address (contact@, info@...) or its holders bear different names;
 * a person whose linked records still bear different names is not merged either. Both are
 * left for review (identityConflicts). Records a reviewer split apart carry their own
 * partition, and only records of the same partition are linked.
 *
 * A person is named by the id of their first record; see migrations 20261203_1600.
 */

export interface IdentityPolicy {
  /** email local parts that name a role or a household, never one person (compared lower-cased) */
  genericEmailLocalParts: readonly string[];
  /** link records inside every contacts import (off: only `cible identities resolve` links them) */
  linkOnImport: boolean;
}

export const DEFAULT_IDENTITY_POLICY: IdentityPolicy = {
  genericEmailLocalParts: [
    'contact',
    'info',
    'infos',
    'hello',
    'bonjour',
    'admin',
    'office',
    'accueil',
    'sales',
    'commercial',
    'support',
    'service',
    'team',
    'equipe',
    'compta',
    'noreply',
    'no-reply',
    'famille',
    'family',
  ],
  linkOnImport: true,
};

export type Queryable = Pick<pg.ClientBase, 'query'>;

export interface RelinkedRecord {
  recordId: number;
  externalId: string | null;
  fromPerson: number;
  toPerson: number;
  /** which identifiers link it to its new person: 'email', 'phone' (none when it leaves a person) */
  via: string[];
}

export interface IdentityConflict {
  /** what the records share, or 'names' for records linked only through others */
  identifier: 'email' | 'phone' | 'names';
  reason: 'generic address' | 'different names' | 'linked records bear different names';
  records: Array<{ recordId: number; externalId: string | null; personId: number }>;
}

export interface ResolutionReport {
  /** records looked at (the whole base, or an import's records and those they may link to) */
  examined: number;
  /** records whose person changes */
  relinked: RelinkedRecord[];
  /** persons before and after, over the records examined */
  personsBefore: number;
  personsAfter: number;
  dryRun: boolean;
  /** what was not linked and why, for review (only when asked for: options.conflicts) */
  conflicts: IdentityConflict[];
}

const NAME_KEY = `nullif(lower(btrim(concat_ws(' ', btrim(d.first_name), btrim(d.last_name)))), '')`;

/**
 * Resolve the persons of `scope` (record ids, a contacts import's staged records, or the whole base) and, unless `dryRun`, apply
 * the result in the caller's transaction: records change person, the pressure of merged
 * persons is pooled, and the consent state of every person involved is rebuilt from the
 * ledger (which drops the scores of ids that are no longer persons).
 */
export async function resolveIdentities(
  client: Queryable,
  scope: readonly number[] | 'all' | 'staged contacts',
  policy: IdentityPolicy,
  options: { dryRun?: boolean; conflicts?: boolean } = {},
): Promise<ResolutionReport> {
  const dryRun = options.dryRun ?? false;
  await client.query(
    `DROP TABLE IF EXISTS identity_scope, identity_shared, identity_involved, identity_keys, identity_links,
       identity_labels, identity_moves, identity_name_conflicts`,
  );
  await client.query('CREATE TEMP TABLE identity_scope (contact_id bigint PRIMARY KEY)');
  if (scope === 'all') {
    await client.query('INSERT INTO identity_scope SELECT id FROM contacts WHERE erased_at IS NULL');
  } else if (scope === 'staged contacts') {
    // a contacts import's records, in its transaction
    await client.query(
      `INSERT INTO identity_scope SELECT DISTINCT c.id FROM import_staging s
       JOIN contacts c ON c.external_id = s.external_id AND c.erased_at IS NULL`,
    );
  } else {
    await client.query('INSERT INTO identity_scope SELECT DISTINCT id FROM contacts WHERE id = ANY($1::bigint[]) AND erased_at IS NULL', [
      scope,
    ]);
  }
  await client.query('ANALYZE identity_scope');
  await findInvolvedRecords(client);

  // every shared identifier of the records involved, with what decides whether it may link
  await client.query(
    `CREATE TEMP TABLE identity_keys AS
     SELECT i.contact_id, k.kind, k.hash, coalesce(c.identity_partition, 0) AS part, ${NAME_KEY} AS name, k.generic
     FROM identity_involved i
     JOIN contacts c ON c.id = i.contact_id
     JOIN contact_personal_data d ON d.contact_id = i.contact_id
     CROSS JOIN LATERAL (VALUES
       ('email', d.email_hash, lower(split_part(d.email, '@', 1)) = ANY($1::text[])),
       ('phone', d.phone_hash, false)) k(kind, hash, generic)
     JOIN identity_shared sh ON sh.kind = k.kind AND sh.hash = k.hash`,
    [policy.genericEmailLocalParts.map((part) => part.toLowerCase())],
  );
  // an identifier links when it is shared, not generic, and its holders bear at most one name
  await client.query(
    `CREATE TEMP TABLE identity_links AS
     SELECT kind, hash, part FROM identity_keys
     GROUP BY kind, hash, part
     HAVING count(*) > 1 AND NOT bool_or(generic) AND count(DISTINCT name) <= 1`,
  );
  await client.query(
    `CREATE TEMP TABLE identity_labels AS
     SELECT i.contact_id, i.contact_id AS label, c.person_id AS old_person
     FROM identity_involved i JOIN contacts c ON c.id = i.contact_id`,
  );
  await client.query('ALTER TABLE identity_labels ADD PRIMARY KEY (contact_id)');
  await client.query('ANALYZE identity_keys, identity_links, identity_labels');
  // label propagation: each record takes the smallest label among the records it shares a
  // linking identifier with, until nothing changes (as many rounds as the longest chain)
  for (;;) {
    const { rowCount } = await client.query(
      `WITH linked AS (
         SELECT k.contact_id, k.kind, k.hash, k.part FROM identity_keys k
         JOIN identity_links li ON li.kind = k.kind AND li.hash = k.hash AND li.part = k.part
       ), key_label AS (
         SELECT lk.kind, lk.hash, lk.part, min(l.label) AS label
         FROM linked lk JOIN identity_labels l ON l.contact_id = lk.contact_id
         GROUP BY lk.kind, lk.hash, lk.part
       ), record_label AS (
         SELECT lk.contact_id, min(kl.label) AS label
         FROM linked lk JOIN key_label kl ON kl.kind = lk.kind AND kl.hash = lk.hash AND kl.part = lk.part
         GROUP BY lk.contact_id
       )
       UPDATE identity_labels l SET label = r.label
       FROM record_label r WHERE r.contact_id = l.contact_id AND r.label < l.label`,
    );
    if (!rowCount) break;
  }
  // a person whose records still bear different names is not merged: left for review
  await client.query(
    `CREATE TEMP TABLE identity_name_conflicts AS
     SELECT l.label FROM identity_labels l
     JOIN contact_personal_data d ON d.contact_id = l.contact_id
     GROUP BY l.label HAVING count(DISTINCT ${NAME_KEY}) > 1`,
  );
  const conflicts = options.conflicts ? await readConflicts(client) : [];
  await client.query(`UPDATE identity_labels l SET label = l.contact_id FROM identity_name_conflicts n WHERE l.label = n.label`);

  const { rows } = await client.query<RelinkedRecord & { via: string[] | null }>(
    `WITH moved AS (
       SELECT contact_id, label, old_person FROM identity_labels WHERE label <> old_person
     ), via AS (
       SELECT k.contact_id, array_agg(DISTINCT k.kind ORDER BY k.kind) AS via
       FROM moved mv
       JOIN identity_keys k ON k.contact_id = mv.contact_id
       JOIN identity_links li ON li.kind = k.kind AND li.hash = k.hash AND li.part = k.part
       JOIN identity_keys other ON other.kind = k.kind AND other.hash = k.hash AND other.part = k.part
         AND other.contact_id <> k.contact_id
       JOIN identity_labels ol ON ol.contact_id = other.contact_id AND ol.label = mv.label
       GROUP BY k.contact_id
     )
     SELECT mv.contact_id AS "recordId", c.external_id AS "externalId", mv.old_person AS "fromPerson", mv.label AS "toPerson", via.via
     FROM moved mv JOIN contacts c ON c.id = mv.contact_id LEFT JOIN via ON via.contact_id = mv.contact_id
     ORDER BY mv.label, mv.contact_id`,
  );
  const relinked = rows.map((row) => ({ ...row, via: row.via ?? [] }));
  // records of the scope that are not involved share nothing and are, and stay, persons of their own
  const { rows: counts } = await client.query<{ alone: number; involved: number; before: number; after: number }>(
    `WITH alone AS (
       SELECT count(*) AS n FROM identity_scope s
       WHERE NOT EXISTS (SELECT 1 FROM identity_involved i WHERE i.contact_id = s.contact_id)
     )
     SELECT (SELECT n FROM alone) AS alone, count(*) AS involved,
            count(DISTINCT old_person) AS before, count(DISTINCT label) AS after
     FROM identity_labels`,
  );
  const alone = Number(counts[0]!.alone);
  const report: ResolutionReport = {
    examined: alone + Number(counts[0]!.involved),
    relinked,
    personsBefore: alone + Number(counts[0]!.before),
    personsAfter: alone + Number(counts[0]!.after),
    dryRun,
    conflicts,
  };
  if (!dryRun && relinked.length > 0) await applyLabels(client);
  await client.query(
    'DROP TABLE identity_scope, identity_shared, identity_involved, identity_keys, identity_links, identity_labels, identity_name_conflicts',
  );
  return report;
}

/** Identifiers shared by records that were not linked, and linked groups whose names disagree. */
async function readConflicts(client: Queryable): Promise<IdentityConflict[]> {
  const { rows } = await client.query<{
    identifier: IdentityConflict['identifier'];
    reason: IdentityConflict['reason'];
    records: number[];
  }>(
    `SELECT kind AS identifier,
            CASE WHEN bool_or(generic) THEN 'generic address' ELSE 'different names' END AS reason,
            array_agg(contact_id ORDER BY contact_id) AS records
     FROM identity_keys
     GROUP BY kind, hash, part
     HAVING count(*) > 1 AND (bool_or(generic) OR count(DISTINCT name) > 1)
     UNION ALL
     SELECT 'names', 'linked records bear different names', array_agg(l.contact_id ORDER BY l.contact_id)
     FROM identity_labels l JOIN identity_name_conflicts n ON n.label = l.label
     GROUP BY l.label
     ORDER BY 1, 3`,
  );
  const ids = [...new Set(rows.flatMap((row) => row.records))];
  const { rows: records } = await client.query<{ id: number; external_id: string | null; person_id: number }>(
    'SELECT id, external_id, person_id FROM contacts WHERE id = ANY($1::bigint[])',
    [ids],
  );
  const byId = new Map(records.map((record) => [record.id, record]));
  return rows.map((row) => ({
    identifier: row.identifier,
    reason: row.reason,
    records: row.records.map((id) => ({
      recordId: id,
      externalId: byId.get(id)?.external_id ?? null,
      personId: byId.get(id)?.person_id ?? id,
    })),
  }));
}

/**
 * The records resolution must look at: those holding an identifier another record holds too
 * (identity_shared), those already linked to a person of several records, and, until nothing
 * changes, the records sharing such an identifier or a person with them. A record of the scope
 * that is none of these is a person of its own and stays one; at 5% duplicates this leaves
 * a twentieth of an import to resolve.
 */
async function findInvolvedRecords(client: Queryable): Promise<void> {
  const { rows } = await client.query<{ scope: number; base: number }>(
    'SELECT (SELECT count(*) FROM identity_scope)::int AS scope, (SELECT count(*) FROM contacts)::int AS base',
  );
  // a scope of a fifth of the base or more (a first import, a whole-base resolve): every shared
  // identifier of the base, from one pass over the hash indexes; a smaller one: its own
  // identifiers, each looked up in the index (a daily import costs what it holds, not the base)
  const wide = rows[0]!.scope * 5 >= rows[0]!.base;
  const shared = (column: 'email_hash' | 'phone_hash') =>
    wide
      ? `SELECT ${column} FROM contact_personal_data WHERE ${column} IS NOT NULL GROUP BY ${column} HAVING count(*) > 1`
      : `SELECT DISTINCT d.${column} FROM identity_scope s JOIN contact_personal_data d ON d.contact_id = s.contact_id
         WHERE EXISTS (SELECT 1 FROM contact_personal_data o WHERE o.${column} = d.${column} AND o.contact_id <> d.contact_id)`;
  await client.query(
    `CREATE TEMP TABLE identity_shared AS
     SELECT 'email' AS kind, hash FROM (${shared('email_hash')}) e(hash)
     UNION ALL
     SELECT 'phone', hash FROM (${shared('phone_hash')}) p(hash)`,
  );
  await client.query(
    `CREATE TEMP TABLE identity_involved AS
     SELECT d.contact_id FROM identity_shared sh JOIN contact_personal_data d ON d.email_hash = sh.hash WHERE sh.kind = 'email'
     UNION
     SELECT d.contact_id FROM identity_shared sh JOIN contact_personal_data d ON d.phone_hash = sh.hash WHERE sh.kind = 'phone'
     UNION
     SELECT c.id FROM identity_scope s JOIN contacts c ON c.id = s.contact_id WHERE c.person_id <> c.id
     UNION
     SELECT o.id FROM identity_scope s JOIN contacts o ON o.person_id = s.contact_id AND o.id <> o.person_id`,
  );
  await client.query('ALTER TABLE identity_involved ADD PRIMARY KEY (contact_id)');
  for (;;) {
    const { rowCount: persons } = await client.query(
      `INSERT INTO identity_involved
       SELECT DISTINCT o.id FROM identity_involved i
       JOIN contacts c ON c.id = i.contact_id
       JOIN contacts o ON o.person_id = c.person_id
       ON CONFLICT (contact_id) DO NOTHING`,
    );
    // identifiers of records brought in from outside the scope (a wide pass already has them all)
    const { rowCount: identifiers } = wide
      ? { rowCount: 0 }
      : await client.query(
          `WITH added AS (
         INSERT INTO identity_shared
         SELECT DISTINCT 'email', d.email_hash
         FROM identity_involved i JOIN contact_personal_data d ON d.contact_id = i.contact_id
         WHERE NOT EXISTS (SELECT 1 FROM identity_shared sh WHERE sh.kind = 'email' AND sh.hash = d.email_hash)
           AND EXISTS (SELECT 1 FROM contact_personal_data o WHERE o.email_hash = d.email_hash AND o.contact_id <> d.contact_id)
         UNION
         SELECT DISTINCT 'phone', d.phone_hash
         FROM identity_involved i JOIN contact_personal_data d ON d.contact_id = i.contact_id
         WHERE NOT EXISTS (SELECT 1 FROM identity_shared sh WHERE sh.kind = 'phone' AND sh.hash = d.phone_hash)
           AND EXISTS (SELECT 1 FROM contact_personal_data o WHERE o.phone_hash = d.phone_hash AND o.contact_id <> d.contact_id)
         RETURNING kind, hash
       )
       INSERT INTO identity_involved
       SELECT d.contact_id FROM added a JOIN contact_personal_data d ON d.email_hash = a.hash WHERE a.kind = 'email'
       UNION
       SELECT d.contact_id FROM added a JOIN contact_personal_data d ON d.phone_hash = a.hash WHERE a.kind = 'phone'
       ON CONFLICT (contact_id) DO NOTHING`,
        );
    if (!persons && !identifiers) break;
  }
  await client.query(`DELETE FROM identity_involved i USING contacts c WHERE c.id = i.contact_id AND c.erased_at IS NOT NULL`);
  await client.query('ANALYZE identity_shared, identity_involved');
}

/** Writes identity_labels: new persons, pooled pressure, rebuilt consent state. */
async function applyLabels(client: Queryable): Promise<void> {
  await client.query(
    `CREATE TEMP TABLE identity_moves ON COMMIT DROP AS
     SELECT DISTINCT old_person, label AS new_person FROM identity_labels WHERE label <> old_person`,
  );
  await client.query(
    `UPDATE contacts c SET person_id = l.label
     FROM identity_labels l WHERE l.contact_id = c.id AND c.person_id <> l.label`,
  );
  // a person counts every list any of their records was sent, whichever way the records move
  await client.query(
    `WITH pooled AS (
       SELECT m.new_person, array_agg(DISTINCT send) AS sends
       FROM (SELECT new_person, old_person AS source FROM identity_moves
             UNION SELECT new_person, new_person FROM identity_moves) m
       JOIN contact_pressure p ON p.contact_id = m.source AND cardinality(p.sends) > 0
       CROSS JOIN LATERAL unnest(p.sends) send
       GROUP BY m.new_person
     )
     UPDATE contact_pressure p SET sends = pooled.sends FROM pooled WHERE p.contact_id = pooled.new_person`,
  );
  await client.query(
    `UPDATE contact_pressure p SET sends = '{}'
     WHERE p.contact_id IN (SELECT old_person FROM identity_moves) AND cardinality(p.sends) > 0
       AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.person_id = p.contact_id)`,
  );
  // no consent may be recorded between reading the ledger and writing the state
  await client.query('LOCK TABLE consent_state IN SHARE ROW EXCLUSIVE MODE');
  await client.query(
    `SELECT refresh_person_consent_state(array_agg(DISTINCT id))
     FROM (SELECT old_person AS id FROM identity_moves UNION SELECT new_person FROM identity_moves) persons`,
  );
  await client.query('DROP TABLE identity_moves');
}

/** The consent state of `persons` rebuilt from the ledger (after person_id was changed by hand, e.g. in a test). */
export async function refreshPersonConsentState(db: Kysely<Database>, persons: readonly number[]): Promise<void> {
  await sql`SELECT refresh_person_consent_state(${[...persons]}::bigint[])`.execute(db);
}

export class IdentitySplitError extends DomainError {
  constructor(field: string, problem: string) {
    super('invalid', 'Invalid split', problem, field);
  }
}

export interface SplitRequest {
  /** the person (the id of their first record), or any of their records' external ids resolved by the caller */
  personId: number;
  /** the records taken out of the person: they form persons of their own and are never linked back by resolution */
  recordIds: readonly number[];
  reason: string;
  actor: string;
}

export interface SplitReport {
  personId: number;
  partition: number;
  /** record id -> person after the split */
  persons: Array<{ recordId: number; externalId: string | null; personId: number }>;
  /** persons whose scores were dropped until the next run */
  scoresDroppedFor: number[];
}

/**
 * Undo a wrong link, in the caller's transaction: the records named get a partition of their
 * own (resolution never links across partitions, so no later import links them back), the
 * persons are resolved again, their consent state is rebuilt, their scores are dropped until
 * the next run (they were computed on the merged history), and the decision is kept and audited.
 */
export async function splitPerson(client: Queryable, request: SplitRequest, policy: IdentityPolicy): Promise<SplitReport> {
  const reason = request.reason.trim();
  if (reason === '') throw new IdentitySplitError('reason', 'must say why the link was wrong');
  const { rows: records } = await client.query<{ id: number; external_id: string | null }>(
    'SELECT id, external_id FROM contacts WHERE person_id = $1 AND erased_at IS NULL ORDER BY id FOR UPDATE',
    [request.personId],
  );
  if (records.length === 0) throw new IdentitySplitError('person', `${request.personId} is not a person of this base`);
  const held = new Set(records.map((record) => record.id));
  const named = [...new Set(request.recordIds)];
  if (named.length === 0) throw new IdentitySplitError('records', 'must name at least one record of the person');
  const foreign = named.filter((id) => !held.has(id));
  if (foreign.length > 0) throw new IdentitySplitError('records', `${foreign.join(', ')} are not records of person ${request.personId}`);
  if (named.length === records.length) {
    throw new IdentitySplitError('records', `names every record of person ${request.personId}: leave at least one with the person`);
  }
  const { rows: partitions } = await client.query<{ partition: number }>("SELECT nextval('identity_partitions') AS partition");
  const partition = partitions[0]!.partition;
  await client.query('UPDATE contacts SET identity_partition = $2 WHERE id = ANY($1::bigint[])', [named, partition]);
  await resolveIdentities(client, [...held], policy);
  const { rows: after } = await client.query<{ recordId: number; externalId: string | null; personId: number }>(
    `SELECT id AS "recordId", external_id AS "externalId", person_id AS "personId" FROM contacts
     WHERE id = ANY($1::bigint[]) ORDER BY id`,
    [[...held]],
  );
  const persons = [...new Set([request.personId, ...after.map((record) => record.personId)])];
  await client.query('DELETE FROM scores WHERE contact_id = ANY($1::bigint[])', [persons]);
  await client.query('SELECT delete_unpublished_scores($1::bigint[])', [persons]);
  await client.query('INSERT INTO identity_splits (person_id, record_ids, partition, reason, actor) VALUES ($1, $2, $3, $4, $5)', [
    request.personId,
    named,
    partition,
    reason,
    request.actor,
  ]);
  await client.query(
    `INSERT INTO audit_log (actor, action, subject_type, subject_id, details) VALUES ($1, 'identities.split', 'person', $2, $3)`,
    [request.actor, String(request.personId), JSON.stringify({ records: named, partition, persons, reason })],
  );
  return { personId: request.personId, partition, persons: after, scoresDroppedFor: persons };
}
