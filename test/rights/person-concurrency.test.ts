import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { refreshPersonConsentState } from '../../src/identities/resolution.repository.ts';
import { SubjectNotFoundError } from '../../src/rights/rights.errors.ts';
import { type ErasureReceipt, erase, object } from '../../src/rights/rights.service.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { TEST_TOMBSTONE_KEYS } from '../helpers/tombstone-keys.ts';
import { importFile, NOW } from '../imports/import.fixtures.ts';
import { contactIdOf } from './rights.fixtures.ts';

// Issue 19: requests naming two records of one person at once lock the same rows (every record
// of the person, in id order) and so run one after the other: the person is erased once, with
// both records, and the erasure that comes second finds the person erased. (Whether the requests
// really interleave depends on timing: this checks the outcome, it does not prove the lock order.)

let database: DatabaseHandle;
const files = tempFolder();
const PERSONS = ['K', 'L', 'M'];
const ids: Record<string, number> = {};

beforeAll(async () => {
  database = await createTestDatabase();
  const lines = PERSONS.flatMap((person, i) => [
    `${person}-1,${person.toLowerCase()}1.concurrency@example.com,06 39 98 50 ${i}1,2024-01-15`,
    `${person}-2,${person.toLowerCase()}2.concurrency@example.com,06 39 98 50 ${i}2,2024-02-15`,
  ]);
  const report = await importFile(database, 'contacts', files.write('contacts.csv', csv('external_id,email,phone,created_at', ...lines)));
  expect(report.status).toBe('committed');
  for (const person of PERSONS) {
    for (const ref of [`${person}-1`, `${person}-2`]) ids[ref] = await contactIdOf(database, ref);
    await database.pool.query('UPDATE contacts SET person_id = $1 WHERE id IN ($1, $2)', [ids[`${person}-1`], ids[`${person}-2`]]);
    await refreshPersonConsentState(database.db, [ids[`${person}-1`]!]);
  }
});
afterAll(() => database.close());

describe('concurrent requests about one person', () => {
  it('an objection and two erasures naming different records at once: the person is erased once, with both records', async () => {
    const outcomes = await Promise.allSettled(
      PERSONS.flatMap((person) => [
        object(database.db, `${person}-2`, { purpose: 'profiling' }, 'cli', NOW, TEST_TOMBSTONE_KEYS),
        erase(database.db, `${person}-2`, 'cli', NOW, TEST_TOMBSTONE_KEYS),
        erase(database.db, `${person}-1`, 'cli', NOW, TEST_TOMBSTONE_KEYS),
      ]),
    );
    for (const [index, person] of PERSONS.entries()) {
      const [, second, first] = outcomes.slice(index * 3, index * 3 + 3);
      const erasures = [second!, first!];
      const done = erasures.filter((outcome) => outcome.status === 'fulfilled');
      expect(done, person).toHaveLength(1);
      expect((done[0] as PromiseFulfilledResult<ErasureReceipt>).value.records).toEqual([ids[`${person}-1`], ids[`${person}-2`]]);
      const refused = erasures.find((outcome) => outcome.status === 'rejected') as PromiseRejectedResult;
      expect(refused.reason).toBeInstanceOf(SubjectNotFoundError);
      expect(String(refused.reason.message)).toMatch(/was erased on 2026-06-01/);
    }
    const { rows } = await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM contacts WHERE erased_at IS NULL');
    expect(rows[0]!.n).toBe(0);
    const tombstones = await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM erasure_tombstones');
    expect(tombstones.rows[0]!.n).toBe(PERSONS.length * 2);
  });
});
