import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepConsent } from '../../pipelines/consent-sweep.ts';
import { buildScoreSetTable, writeScoreTable } from '../../pipelines/scoring.ts';
import { loadConfig } from '../../src/config.ts';
import { recordConsents } from '../../src/consent/consent-recording.service.ts';
import { sha256Hex } from '../../src/contacts/identity.ts';
import type { AppContext } from '../../src/context.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { erase } from '../../src/rights/rights.service.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { databaseUrlFor } from '../helpers/postgres.ts';
import { captureLogger } from '../helpers/silent-logger.ts';
import { TEST_TOMBSTONE_KEYS } from '../helpers/tombstone-keys.ts';
import { importFile, NOW } from '../imports/import.fixtures.ts';
import { contactIdOf, findAnywhere, NEIGHBOUR, personalValues, SUBJECT, seedLiveScores, seedPeople, THIRD } from './rights.fixtures.ts';

// What a crash or a shared identifier must not break: an erasure reaches every table that
// holds scores, even those a killed run left behind; a tombstone refuses the erased person
// only, and says nothing without the secret.

let database: DatabaseHandle;
const ids: Record<string, number> = {};
const files = tempFolder();

beforeAll(async () => {
  database = await createTestDatabase();
  await seedPeople(database);
  for (const person of [SUBJECT, NEIGHBOUR, THIRD]) ids[person.ref] = await contactIdOf(database, person.ref);
  await seedLiveScores(database, [ids[SUBJECT.ref]!, ids[NEIGHBOUR.ref]!, ids[THIRD.ref]!]);
});
afterAll(() => database.close());

/** What `cible pipeline run` writes before it publishes: a shard's part table, and a ranked set table not yet attached. */
async function leaveScoringTablesBehind(partSet: number, rankedSet: number, people: string[]): Promise<void> {
  const data = () => ({
    contactIds: Float64Array.from(people.map((ref) => ids[ref]!)),
    scores: Float32Array.from(people.map((_, index) => 0.9 - index / 10)),
    reasonCodes: new Uint8Array(people.length * 3).fill(0),
    contributions: new Float32Array(people.length * 3).fill(0.5),
  });
  await writeScoreTable(database, `score_part_${partSet}_0_a1`, partSet, data());
  await writeScoreTable(database, `score_part_${rankedSet}_0_a1`, rankedSet, data());
  await buildScoreSetTable(database, rankedSet, [`score_part_${rankedSet}_0_a1`]);
}

/** Rows of this contact in every table that holds scores (published or not), by table. */
async function scoreRowsOf(contactId: number): Promise<Record<string, number>> {
  const { rows: tables } = await database.pool.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c
     WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
       AND (c.relname ~ '^scores_p?[0-9]+$' OR c.relname ~ '^score_part_') ORDER BY 1`,
  );
  const counts: Record<string, number> = {};
  for (const { name } of tables) {
    const { rows } = await database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ONLY "${name}" WHERE contact_id = $1`, [
      contactId,
    ]);
    counts[name] = rows[0]!.n;
  }
  return counts;
}

const total = (counts: Record<string, number>) => Object.values(counts).reduce((sum, n) => sum + n, 0);

describe('an erasure after a run was killed during scoring', () => {
  it('deletes the person from the tables the run left behind, and scrubs what was typed into their consent proof', async () => {
    await leaveScoringTablesBehind(9001, 9002, [SUBJECT.ref, NEIGHBOUR.ref, THIRD.ref]);
    // proof fields are free text: whoever collected the consent may have typed the person into them
    await recordConsents(
      database.db,
      [
        {
          externalId: SUBJECT.ref,
          purpose: 'direct_marketing',
          channel: 'email',
          status: 'granted',
          capturedAt: '2026-05-01T09:00:00Z',
          source: `call centre, spoke to ${SUBJECT.firstName} ${SUBJECT.lastName}`,
          method: 'double_opt_in',
          noticeVersion: `sent to ${SUBJECT.email}`,
        },
      ],
      { actor: 'test', now: NOW },
    );
    const before = await scoreRowsOf(ids[SUBJECT.ref]!);
    expect(before).toMatchObject({ score_part_9001_0_a1: 1, scores_9002: 1 });
    expect(total(before)).toBe(3); // the live set's row too

    const receipt = await erase(database.db, SUBJECT.ref, 'cli', NOW, TEST_TOMBSTONE_KEYS);

    expect(receipt.deleted.scores).toBe(3);
    expect(total(await scoreRowsOf(ids[SUBJECT.ref]!))).toBe(0);
    expect(total(await scoreRowsOf(ids[NEIGHBOUR.ref]!))).toBe(3);
    expect(await findAnywhere(database, personalValues(SUBJECT))).toEqual([]);
    const { rows } = await database.pool.query(
      'SELECT purpose, channel, status, method, captured_at FROM consent_events WHERE contact_id = $1 AND channel = $2',
      [ids[SUBJECT.ref], 'email'],
    );
    expect(rows).toContainEqual({
      purpose: 'direct_marketing',
      channel: 'email',
      status: 'granted',
      method: 'double_opt_in',
      captured_at: new Date('2026-05-01T09:00:00Z'),
    });
  });

  it.runIf(process.env.DATABASE_URL)(
    'pg_dump --data-only holds no row of the erased person in any score table, and none of their values',
    async () => {
      const { rows } = await database.pool.query<{ name: string }>('SELECT current_database() AS name');
      const dump = execFileSync('pg_dump', ['--data-only', '--no-owner', databaseUrlFor(process.env.DATABASE_URL!, rows[0]!.name)], {
        encoding: 'utf8',
        maxBuffer: 256 * 2 ** 20,
      });
      const scoreRows = (contactId: number) => {
        const found: string[] = [];
        let table: string | null = null;
        let contactColumn = -1;
        for (const line of dump.split('\n')) {
          const copy = /^COPY (?:public\.)?"?(scores_p?\d+|score_part_\w+)"? \((.*)\) FROM stdin;$/.exec(line);
          if (copy) {
            table = copy[1]!;
            contactColumn = copy[2]!.split(', ').indexOf('contact_id');
          } else if (line === '\\.') table = null;
          else if (table && line.split('\t')[contactColumn] === String(contactId)) found.push(`${table}: ${line}`);
        }
        return found;
      };
      expect(scoreRows(ids[NEIGHBOUR.ref]!).length).toBe(3); // the scan does find people who are there
      expect(scoreRows(ids[SUBJECT.ref]!)).toEqual([]);
      for (const value of personalValues(SUBJECT)) expect(dump.toLowerCase()).not.toContain(value.toLowerCase());
    },
  );
});

describe('withdrawals and the consent sweep', () => {
  it('a withdrawal of profiling deletes the person from unpublished score tables too', async () => {
    expect(total(await scoreRowsOf(ids[NEIGHBOUR.ref]!))).toBe(3);
    await recordConsents(
      database.db,
      [
        {
          externalId: NEIGHBOUR.ref,
          purpose: 'profiling',
          status: 'withdrawn',
          capturedAt: '2026-05-20T08:00:00Z',
          source: 'web:preferences',
          method: 'explicit_checkbox',
        },
      ],
      { actor: 'test', now: NOW },
    );
    expect(await scoreRowsOf(ids[NEIGHBOUR.ref]!)).toEqual(expect.objectContaining({ score_part_9001_0_a1: 0, scores_9002: 0 }));
    expect(total(await scoreRowsOf(ids[NEIGHBOUR.ref]!))).toBe(0);
    expect(total(await scoreRowsOf(ids[THIRD.ref]!))).toBe(3);
  });

  it('the sweep deletes an expired consent’s scores from unpublished score tables too', async () => {
    // a profiling consent that counts today and expires in mid-2027
    await recordConsents(
      database.db,
      [
        {
          externalId: THIRD.ref,
          purpose: 'profiling',
          status: 'granted',
          capturedAt: '2026-05-01T08:00:00Z',
          source: 'web:account-form',
          method: 'explicit_checkbox',
          expiresAt: '2027-06-01T00:00:00Z',
        },
      ],
      { actor: 'test', now: NOW },
    );
    expect(total(await scoreRowsOf(ids[THIRD.ref]!))).toBe(3);
    const context = {
      database,
      logger: captureLogger().logger,
      config: loadConfig({}),
      clock: { now: () => NOW },
    } as unknown as AppContext;
    const report = await sweepConsent(context, new Date('2027-07-01T00:00:00Z'));
    expect(report.unpublishedScoresDeleted).toBe(2);
    expect(total(await scoreRowsOf(ids[THIRD.ref]!))).toBe(0);
  });
});

describe('tombstones', () => {
  const header = 'external_id,email,phone,first_name,last_name,country,created_at';
  const keys = { tombstoneKeys: TEST_TOMBSTONE_KEYS };

  it('say nothing without the secret: no plain SHA-256 of the erased person’s phone, email or id anywhere in the database', async () => {
    const plain = [SUBJECT.phone, SUBJECT.email, SUBJECT.ref, SUBJECT.ref.toLowerCase()].map((value) => sha256Hex(value));
    expect(await findAnywhere(database, plain)).toEqual([]);
  });

  it('a living person who shares the erased person’s household phone and email imports; the erased person does not', async () => {
    const household = await importFile(
      database,
      'contacts',
      files.write('household.csv', csv(header, `RGT-8100,${SUBJECT.email},${SUBJECT.phoneRaw},Octave,Quillardet,FR,2024-02-01`)),
      {},
      keys,
    );
    expect(household.status).toBe('committed');
    expect(household.inserted).toBe(1);
    for (const ref of [SUBJECT.ref, SUBJECT.ref.toLowerCase(), ` ${SUBJECT.ref.toUpperCase()} `]) {
      const back = await importFile(database, 'contacts', files.write('back.csv', csv(header, `${ref},,,,,FR,2024-01-15`)), {}, keys);
      expect(back.status).toBe('rejected');
      expect(back.rejects).toEqual([
        { line: 2, field: 'external_id', message: 'this person was erased on 2026-06-01 at their request and cannot be imported again' },
      ]);
    }
  });

  it('refuses a contacts import that cannot recognise the tombstones: no secret, or another one', async () => {
    const file = files.write('someone.csv', csv(header, 'RGT-8200,,,,,FR,2024-02-01'));
    await expect(importFile(database, 'contacts', file)).rejects.toThrow(/needs the tombstone secret/);
    const other = (await import('../../src/rights/tombstone-keys.ts')).tombstoneKeys({
      secret: 'another-secret-0123456789abcdef0123',
      previousSecrets: [],
      secretFile: '/nonexistent',
    });
    await expect(importFile(database, 'contacts', file, {}, { tombstoneKeys: other })).rejects.toThrow(
      /1 erasure tombstone\(s\) were keyed with a secret this process does not hold/,
    );
    // after a rotation, the earlier secret given as a previous one: recognised
    const rotated = (await import('../../src/rights/tombstone-keys.ts')).tombstoneKeys({
      secret: 'another-secret-0123456789abcdef0123',
      previousSecrets: ['test-tombstone-secret-0123456789abcdef'],
      secretFile: '/nonexistent',
    });
    const back = await importFile(
      database,
      'contacts',
      files.write('back2.csv', csv(header, `${SUBJECT.ref},,,,,FR,2024-01-15`)),
      {},
      { tombstoneKeys: rotated },
    );
    expect(back.status).toBe('rejected');
  });
});
