import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/clock.ts';
import type { Database } from '../../src/db/database.ts';
import { accessReport, erase } from '../../src/rights/rights.service.ts';
import { exportMembers, manifestMembersQuery } from '../../src/targeting/export.repository.ts';
import { verifyExport } from '../../src/targeting/export.service.ts';
import type { ManifestMember } from '../../src/targeting/manifest.ts';
import { type ApiHarness, bodyOf, createApiHarness } from '../api/api.fixtures.ts';
import { TEST_TOMBSTONE_KEYS } from '../helpers/tombstone-keys.ts';
import { NOW } from '../imports/import.fixtures.ts';
import {
  contactIdOf,
  NEIGHBOUR,
  type Person,
  personalValues,
  type ScoreFixture,
  SUBJECT,
  seedExport,
  seedLiveScores,
  seedPeople,
  THIRD,
} from '../rights/rights.fixtures.ts';
import { recordManifest } from './manifest.fixtures.ts';

/*
 * Manifests read back: one row per list, members as arrays, who they are resolved when read.
 * Two lists over the same people: one recorded now (hash scheme 2, SMS) and one as the migration
 * converts a list recorded before (scheme 1, email, with a holdout member).
 */

let api: ApiHarness;
let db: Kysely<Database>;
let scores: ScoreFixture;
let current: string;
let converted: string;

async function eligibilityEvents(person: Person, channel: string): Promise<number[]> {
  const { rows } = await api.database.pool.query<{ id: number }>(
    `SELECT e.id FROM consent_events e JOIN contacts c ON c.id = e.contact_id
     WHERE c.external_id = $1 AND (e.purpose = 'profiling' OR e.channel = $2) ORDER BY e.purpose = 'profiling' DESC, e.id`,
    [person.ref, channel],
  );
  return rows.map((row) => Number(row.id));
}

/** An email list of [NEIGHBOUR, SUBJECT, THIRD] recorded with the old text hashes; THIRD is held out. */
async function seedConvertedList(): Promise<string> {
  const { rows } = await api.database.pool.query<{ id: string }>(
    `INSERT INTO target_exports (actor, model_id, model_version_id, score_set_id, channel, params, funnel, member_count, holdout_seed,
       manifest_hash, created_at, delivery)
     VALUES ('marketer-key', $1, $2, $3, 'email', '{"top":3,"holdout":30}', '{"contacts":3}', 3, '0123456789abcdef', 'pending',
       '2026-04-30T08:00:00Z', 'delivered') RETURNING id`,
    [scores.modelId, scores.modelVersionId, scores.scoreSetId],
  );
  const members: ManifestMember[] = [];
  for (const [index, person] of [NEIGHBOUR, SUBJECT, THIRD].entries()) {
    members.push({
      position: index + 1,
      contactId: await contactIdOf(api.database, person.ref),
      score: 0.61 - index / 10,
      rank: index + 2,
      percentile: 0.8 - index / 10,
      isHoldout: person === THIRD,
      consentEventIds: await eligibilityEvents(person, 'email'),
    });
  }
  await recordManifest(db, rows[0]!.id, members, 1);
  return rows[0]!.id;
}

/** Runs `tamper` and `check` in a transaction that is rolled back: the stored manifest stays as it was. */
async function whileTampered(tamper: ReturnType<typeof sql>, check: (trx: Kysely<Database>) => Promise<void>): Promise<void> {
  const rolledBack = new Error('rolled back');
  await db
    .transaction()
    .execute(async (trx) => {
      await tamper.execute(trx);
      await check(trx);
      throw rolledBack;
    })
    .catch((error) => {
      if (error !== rolledBack) throw error;
    });
}

beforeAll(async () => {
  api = await createApiHarness({ clock: fixedClock(NOW) });
  db = api.database.db;
  await seedPeople(api.database);
  const ids = await Promise.all([SUBJECT, NEIGHBOUR, THIRD].map((person) => contactIdOf(api.database, person.ref)));
  scores = await seedLiveScores(api.database, ids);
  current = await seedExport(api.database, scores, [SUBJECT, NEIGHBOUR]);
  converted = await seedConvertedList();
}, 60_000);
afterAll(() => api?.close());

describe('a list recorded before manifests were one row per list (hash scheme 1)', () => {
  it('verifies, and reads back in list order with who each member is now', async () => {
    expect(await verifyExport(db, converted)).toMatchObject({
      valid: true,
      memberCount: 3,
      alteredPositions: [],
      erasedMembers: 0,
    });
    const members = await exportMembers(db, converted);
    expect(members.map((member) => [member.position, member.externalId, member.contactValue, member.isHoldout])).toEqual([
      [1, NEIGHBOUR.ref, NEIGHBOUR.email, false],
      [2, SUBJECT.ref, SUBJECT.email, false],
      [3, THIRD.ref, THIRD.email, true],
    ]);
    expect(members[0]!.memberHash).toMatch(/^[0-9a-f]{64}$/);
    expect(members[1]!.consentEventIds).toEqual(await eligibilityEvents(SUBJECT, 'email'));
  });

  it.each([
    ['a score', 'scores[2] = 0.99', [2]],
    ['a holdout flag', 'holdout[3] = false', [3]],
    ['a profiling consent event', 'profiling_event_ids[1] = 1', [1]],
    ["a member's stored hash", 'member_hashes = set_byte(member_hashes, 32, 255 - get_byte(member_hashes, 32))', [2]],
  ])('names the position when %s is altered', async (_what, assignment, positions) => {
    await whileTampered(
      sql`UPDATE target_export_manifests SET ${sql.raw(assignment)} WHERE export_id = ${converted}::uuid`,
      async (trx) => {
        expect(await verifyExport(trx, converted)).toMatchObject({ valid: false, alteredPositions: positions });
      },
    );
    expect((await verifyExport(db, converted)).valid).toBe(true);
  });
});

describe('a list recorded now (hash scheme 2)', () => {
  it('verifies, and names the position whose channel consent event was swapped', async () => {
    expect(await verifyExport(db, current)).toMatchObject({ valid: true, memberCount: 2, alteredPositions: [] });
    await whileTampered(
      sql`UPDATE target_export_manifests SET channel_event_ids[2] = 1 WHERE export_id = ${current}::uuid`,
      async (trx) => {
        expect(await verifyExport(trx, current)).toMatchObject({ valid: false, alteredPositions: [2] });
      },
    );
  });

  it('gives CSV and JSON answers their rows: contacts then holdout, each in list order, with score reasons', async () => {
    const { rows } = await manifestMembersQuery(converted, 'email').execute(db);
    expect(rows.map((row) => [row.position, row.external_id, row.contact, row.is_holdout])).toEqual([
      [1, NEIGHBOUR.ref, NEIGHBOUR.email, false],
      [2, SUBJECT.ref, SUBJECT.email, false],
      [3, THIRD.ref, THIRD.email, true],
    ]);
    // the fixture's scores carry reason codes 0 then 1 into the explanation groups
    expect(rows[0]).toMatchObject({ reason_1: 0, reason_2: 1, reason_3: null, rank: 2 });
    const events = await eligibilityEvents(SUBJECT, 'email');
    expect(rows[1]).toMatchObject({ profiling_event_id: events[0], channel_event_id: events[1] });
  });
});

describe('after an erasure', () => {
  let manifestsBefore: unknown[];

  beforeAll(async () => {
    const report = await accessReport(db, SUBJECT.ref, 'test', NOW);
    expect(report.exports.map((line) => [line.exportId, line.position, line.isHoldout, line.contactValue])).toEqual([
      [converted, 2, false, SUBJECT.email],
      [current, 1, false, SUBJECT.phone],
    ]);
    manifestsBefore = (await api.database.pool.query('SELECT * FROM target_export_manifests ORDER BY export_id')).rows;
    const receipt = await erase(db, SUBJECT.ref, 'test', NOW, TEST_TOMBSTONE_KEYS);
    expect(receipt.manifestsKept).toBe(2);
  });

  const needles = personalValues(SUBJECT);
  const holdsNone = (read: unknown) => {
    const text = JSON.stringify(read);
    expect(needles.filter((needle) => text.includes(needle))).toEqual([]);
  };

  it('leaves every manifest as it was, and verifiable', async () => {
    expect((await api.database.pool.query('SELECT * FROM target_export_manifests ORDER BY export_id')).rows).toEqual(manifestsBefore);
    for (const exportId of [converted, current]) {
      expect(await verifyExport(db, exportId)).toMatchObject({ valid: true, alteredPositions: [], erasedMembers: 1 });
    }
  });

  it('no manifest read returns their external id or contact value; the others keep theirs', async () => {
    const members = await exportMembers(db, converted);
    expect(members[1]).toMatchObject({ externalId: null, contactValue: null });
    expect(members[0]).toMatchObject({ externalId: NEIGHBOUR.ref, contactValue: NEIGHBOUR.email });
    holdsNone(members);
    holdsNone(await exportMembers(db, current));

    const { rows } = await manifestMembersQuery(converted, 'email').execute(db);
    expect(rows[1]).toMatchObject({ external_id: null, contact: null, reason_1: null });
    holdsNone(rows);

    const neighbour = await accessReport(db, NEIGHBOUR.ref, 'test', NOW);
    expect(neighbour.exports.map((line) => [line.exportId, line.position])).toEqual([
      [converted, 1],
      [current, 2],
    ]);
    holdsNone(neighbour);

    for (const [exportId, hashScheme] of [
      [converted, 1],
      [current, 2],
    ] as const) {
      const response = await api.call('dpo', `/v1/exports/${exportId}`);
      expect(response.status).toBe(200);
      const manifest = await bodyOf(response);
      expect(manifest).toMatchObject({ exportId, hashScheme, memberCount: exportId === converted ? 3 : 2 });
      expect(manifest.members.filter((member: { externalId: string | null }) => member.externalId === null)).toHaveLength(1);
      holdsNone(manifest);
    }
  });
});
