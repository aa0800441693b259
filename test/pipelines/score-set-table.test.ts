import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../../models/random.ts';
import { buildScoreSetTable, scoreSetTable, writeScoreTable } from '../../pipelines/scoring.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { createTestDatabase } from '../helpers/database.ts';

/*
 * A score set scored in shards is ranked across them: the same ranks and percentiles as if one
 * process had scored everyone (ties broken by contact id), whatever shard a person fell in.
 */

const PEOPLE = 2_000;
let database: DatabaseHandle;

beforeAll(async () => {
  database = await createTestDatabase();
}, 60_000);
afterAll(async () => {
  await database?.close();
});

/** Scores on a coarse grid, so that many people tie, some of them across shards. */
function scoresOf(contactIds: number[], seed: number): Float32Array {
  const random = mulberry32(seed);
  return Float32Array.from(contactIds, () => Math.round(random() * 50) / 50);
}

function targetScores(contactIds: number[], scores: Float32Array) {
  const reasonCodes = new Uint8Array(contactIds.length * 3).fill(255);
  return { contactIds: Float64Array.from(contactIds), scores, reasonCodes, contributions: new Float32Array(contactIds.length * 3) };
}

async function ranksOf(scoreSetId: number): Promise<Array<{ contact_id: number; rank: number; percentile: number }>> {
  const { rows } = await sql<{ contact_id: number; rank: number; percentile: number }>`
    SELECT contact_id::int, rank, percentile FROM ${sql.table(scoreSetTable(scoreSetId))} ORDER BY contact_id`.execute(database.db);
  return rows;
}

describe('ranking a score set across its scoring shards', () => {
  it('gives every person the rank and percentile of a one-process run, with the keys and indexes built', async () => {
    const everyone = Array.from({ length: PEOPLE }, (_, i) => 10 + i * 3);
    const scores = scoresOf(everyone, 42);

    // one process: one part, ranked as it is written
    await writeScoreTable(database, 'score_part_1_0_a1', 1, targetScores(everyone, scores));
    expect(await buildScoreSetTable(database, 1, ['score_part_1_0_a1'])).toBe(PEOPLE);

    // three shards by contact id modulo 3, as the scoring jobs split people
    const parts: string[] = [];
    for (let shard = 0; shard < 3; shard++) {
      const rows = everyone.flatMap((id, row) => (id % 3 === shard ? [row] : []));
      const table = `score_part_2_${shard}_a1`;
      await writeScoreTable(
        database,
        table,
        2,
        targetScores(
          rows.map((row) => everyone[row]!),
          Float32Array.from(rows, (row) => scores[row]!),
        ),
      );
      parts.push(table);
    }
    expect(await buildScoreSetTable(database, 2, parts)).toBe(PEOPLE);

    const single = await ranksOf(1);
    const sharded = await ranksOf(2);
    expect(new Set(sharded.map((row) => row.rank)).size).toBe(PEOPLE);
    expect(sharded).toEqual(single);
    // the definition itself: score descending, then contact id; percentile 100 for the best
    const expected = everyone
      .map((contactId, row) => ({ contactId, score: scores[row]! }))
      .sort((a, b) => b.score - a.score || a.contactId - b.contactId);
    const best = sharded.find((row) => row.contact_id === expected[0]!.contactId);
    const worst = sharded.find((row) => row.contact_id === expected[PEOPLE - 1]!.contactId);
    expect(best).toMatchObject({ rank: 1, percentile: 100 });
    expect(worst).toMatchObject({ rank: PEOPLE });
    expect(worst!.percentile).toBeCloseTo(100 / PEOPLE, 5);
    const rankOf = new Map(sharded.map((row) => [row.contact_id, row.rank]));
    expect(expected.every((person, index) => rankOf.get(person.contactId) === index + 1)).toBe(true);

    const { rows: leftovers } = await sql<{
      name: string;
    }>`SELECT tablename AS name FROM pg_tables WHERE tablename ~ '^score_part_2_'`.execute(database.db);
    expect(leftovers).toEqual([]);
    const { rows: indexes } = await sql<{ definition: string }>`
      SELECT indexdef AS definition FROM pg_indexes WHERE tablename = ${scoreSetTable(2)}`.execute(database.db);
    expect(indexes.map((index) => index.definition.replace(/^.* USING btree /, '')).sort()).toEqual([
      '(contact_id)',
      '(score_set_id, contact_id)',
      '(score_set_id, rank)',
    ]);
  });

  it('says which parts are missing, and leaves the others in place for a retry', async () => {
    await writeScoreTable(database, 'score_part_3_0_a1', 3, targetScores([1, 2], Float32Array.of(0.5, 0.25)));
    await expect(buildScoreSetTable(database, 3, ['score_part_3_0_a1', 'score_part_3_1_a1'])).rejects.toThrow(
      'score set 3: 1 of its 2 scored parts are missing',
    );
    const { rows } = await sql<{ name: string }>`SELECT tablename AS name FROM pg_tables WHERE tablename ~ '^score(s|_part)_3'`.execute(
      database.db,
    );
    expect(rows).toEqual([{ name: 'score_part_3_0_a1' }]);
  });
});
