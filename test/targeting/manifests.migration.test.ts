import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Migration, Migrator, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DatabaseHandle, openDatabase } from '../../src/db/engine.ts';
import { MIGRATIONS_DIR } from '../../src/db/migrate.ts';
import { exportMembers } from '../../src/targeting/export.repository.ts';
import { verifyExport } from '../../src/targeting/export.service.ts';
import { type ManifestHeader, type ManifestMember, manifestHash, memberHashV1 } from '../../src/targeting/manifest.ts';
import { adminPool, databaseUrlFor } from '../helpers/postgres.ts';
import { contactIdOf, NEIGHBOUR, PEOPLE, SUBJECT, seedLiveScores, seedPeople, THIRD } from '../rights/rights.fixtures.ts';

/*
 * The migration to one manifest row per list, on lists recorded the old way (one line per
 * member with a copy of the external id and contact value): they become hash scheme 1 and still
 * verify; the pressure they hold moves to contact_pressure. PGlite, or a fresh PostgreSQL
 * database when the run uses PostgreSQL.
 */

const MIGRATION = '20261203_1500_compact_manifests_and_contact_pressure';
const serverUrl = process.env.DATABASE_URL;
const databaseName = `cible_manifest_migration_${randomBytes(5).toString('hex')}`;
let database: DatabaseHandle;
let migrator: Migrator;

beforeAll(async () => {
  if (serverUrl) {
    const admin = adminPool(serverUrl);
    await admin.query(`CREATE DATABASE ${databaseName}`);
    await admin.end();
    database = await openDatabase({ kind: 'postgres', url: databaseUrlFor(serverUrl, databaseName) });
  } else {
    database = await openDatabase({ kind: 'pglite', dataDir: 'memory://' });
  }
  const files = (await readdir(MIGRATIONS_DIR)).filter((file) => /^\d.*\.ts$/.test(file)).sort();
  const migrations: Record<string, Migration> = {};
  for (const file of files) migrations[file.slice(0, -3)] = (await import(pathToFileURL(join(MIGRATIONS_DIR, file)).href)) as Migration;
  migrator = new Migrator({ db: database.db, provider: { getMigrations: async () => migrations } });
  const names = Object.keys(migrations).sort();
  expect((await migrator.migrateTo(names[names.indexOf(MIGRATION) - 1]!)).error).toBeUndefined();
}, 120_000);

afterAll(async () => {
  await database?.close();
  if (!serverUrl) return;
  const admin = adminPool(serverUrl);
  await admin.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
  await admin.end();
});

interface OldList {
  exportId: string;
  delivery: 'delivered' | 'undelivered';
}

/** An email list of the three people as the old code recorded it; THIRD held out. */
async function recordOldList(delivery: OldList['delivery'], createdAt: string): Promise<OldList> {
  const { pool } = database;
  const fixture = (
    await pool.query<{ model_id: number; model_version_id: number; id: number }>('SELECT model_id, model_version_id, id FROM score_sets')
  ).rows[0]!;
  const { rows } = await pool.query<{ id: string }>(
    `INSERT INTO target_exports (actor, model_id, model_version_id, score_set_id, channel, params, funnel, member_count, holdout_count,
       holdout_seed, manifest_hash, created_at, delivery)
     VALUES ('marketer-key', $1, $2, $3, 'email', '{"top":3}', '{"contacts":3}', 3, 1, 'fedcba9876543210', 'pending', $4, $5) RETURNING id`,
    [fixture.model_id, fixture.model_version_id, fixture.id, createdAt, delivery],
  );
  const exportId = rows[0]!.id;
  const header: ManifestHeader = {
    exportId,
    createdAt: new Date(createdAt).toISOString(),
    actor: 'marketer-key',
    modelVersionId: Number(fixture.model_version_id),
    scoreSetId: Number(fixture.id),
    channel: 'email',
    params: { top: 3 },
    memberCount: 3,
    holdoutCount: 1,
    holdoutSeed: 'fedcba9876543210',
  };
  const hashes: string[] = [];
  for (const [index, person] of [SUBJECT, NEIGHBOUR, THIRD].entries()) {
    const contactId = await contactIdOf(database, person.ref);
    const events = await pool.query<{ id: number }>(
      `SELECT id FROM consent_events WHERE contact_id = $1 AND (purpose = 'profiling' OR channel = 'email') ORDER BY purpose = 'profiling' DESC, id`,
      [contactId],
    );
    const member: ManifestMember = {
      position: index + 1,
      contactId,
      score: 0.7 - index / 7,
      rank: index + 1,
      percentile: 1 - index / 3,
      isHoldout: person === THIRD,
      consentEventIds: events.rows.map((row) => Number(row.id)),
    };
    const memberHash = memberHashV1(member);
    hashes.push(memberHash);
    await pool.query(
      `INSERT INTO target_export_members (export_id, position, contact_id, exported_at, external_id, contact_value, score, rank,
         percentile, is_holdout, consent_event_ids, member_hash, released)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
      [
        exportId,
        member.position,
        contactId,
        createdAt,
        person.ref,
        person.email,
        member.score,
        member.rank,
        member.percentile,
        member.isHoldout,
        member.consentEventIds,
        memberHash,
        delivery === 'undelivered' && !member.isHoldout,
      ],
    );
  }
  await pool.query('UPDATE target_exports SET manifest_hash = $1 WHERE id = $2', [manifestHash(1, header, hashes), exportId]);
  return { exportId, delivery };
}

describe(`migration ${MIGRATION}`, { timeout: 120_000 }, () => {
  it('converts lists recorded one line per member into scheme-1 manifests that still verify, and their pressure', async () => {
    await seedPeople(database, { schemaBeforePersons: true });
    await seedLiveScores(database, await Promise.all(PEOPLE.map((person) => contactIdOf(database, person.ref))));
    const delivered = await recordOldList('delivered', '2026-05-30T09:00:00Z');
    const undelivered = await recordOldList('undelivered', '2026-05-31T09:00:00Z');
    const oldLines = await sql<{ n: number }>`SELECT count(*)::int AS n FROM target_export_members`.execute(database.db);
    expect(oldLines.rows).toEqual([{ n: 6 }]);

    expect((await migrator.migrateTo(MIGRATION)).error).toBeUndefined();

    for (const list of [delivered, undelivered]) {
      expect(await verifyExport(database.db, list.exportId)).toMatchObject({ valid: true, memberCount: 3, alteredPositions: [] });
      const members = await exportMembers(database.db, list.exportId);
      expect(members.map((member) => [member.position, member.externalId, member.contactValue, member.isHoldout])).toEqual([
        [1, SUBJECT.ref, SUBJECT.email, false],
        [2, NEIGHBOUR.ref, NEIGHBOUR.email, false],
        [3, THIRD.ref, THIRD.email, true],
      ]);
    }
    const schemes = await sql<{ hash_scheme: number }>`SELECT hash_scheme FROM target_export_manifests`.execute(database.db);
    expect(schemes.rows).toEqual([{ hash_scheme: 1 }, { hash_scheme: 1 }]);

    // pressure: the delivered list only, for the members it was sent to (not the holdout)
    const pressure = await sql<{ contact_id: number; export_ids: string[] }>`
      SELECT p.contact_id, array_agg(s.export_id::text) AS export_ids
      FROM contact_pressure p CROSS JOIN LATERAL unnest(p.sends) AS s GROUP BY p.contact_id ORDER BY p.contact_id`.execute(database.db);
    const sentTo = await Promise.all([SUBJECT, NEIGHBOUR].map((person) => contactIdOf(database, person.ref)));
    expect(pressure.rows).toEqual(sentTo.map((contactId) => ({ contact_id: contactId, export_ids: [delivered.exportId] })));

    // an altered element after the conversion is still named by its position
    await sql`UPDATE target_export_manifests SET ranks[2] = 9 WHERE export_id = ${delivered.exportId}::uuid`.execute(database.db);
    expect(await verifyExport(database.db, delivered.exportId)).toMatchObject({ valid: false, alteredPositions: [2] });
  });
});
