import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { InvalidRightsRequestError, SubjectNotFoundError } from '../../src/rights/rights.errors.ts';
import { accessReport, erase, type IdentityChanges, object, rectify } from '../../src/rights/rights.service.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { TEST_TOMBSTONE_KEYS } from '../helpers/tombstone-keys.ts';
import { NOW } from '../imports/import.fixtures.ts';
import { contactIdOf, NEIGHBOUR, SUBJECT, seedExport, seedLiveScores, seedPeople, snapshotTables, THIRD } from './rights.fixtures.ts';

let database: DatabaseHandle;
const FR = { defaultPhoneCountry: 'FR', tombstoneKeys: TEST_TOMBSTONE_KEYS };

beforeAll(async () => {
  database = await createTestDatabase();
  await seedPeople(database);
  const ids = [await contactIdOf(database, SUBJECT.ref), await contactIdOf(database, NEIGHBOUR.ref)];
  const scores = await seedLiveScores(database, ids);
  const exportId = await seedExport(database, scores, [SUBJECT, NEIGHBOUR]);
  // the list counts towards their contact pressure: erasure deletes that row too
  await database.pool.query(
    `UPDATE contact_pressure SET sends = ARRAY[ROW($2::uuid, '2026-05-31T09:00:00Z')::pressure_send] WHERE contact_id = $1`,
    [ids[0], exportId],
  );
});
afterAll(() => database.close());

/** Runs a request that must fail, and checks that no table changed. */
async function refusedWithoutWrites(request: () => Promise<unknown>): Promise<Error> {
  const before = await snapshotTables(database);
  const error = await request().then(
    () => {
      throw new Error('the request was accepted');
    },
    (failure: Error) => failure,
  );
  expect(await snapshotTables(database)).toEqual(before);
  return error;
}

describe('rights requests refused', () => {
  it.each([
    ['access', (ref: string) => accessReport(database.db, ref, 'cli', NOW, 'access', TEST_TOMBSTONE_KEYS)],
    ['rectify', (ref: string) => rectify(database.db, ref, { first_name: 'Irénée' }, 'cli', NOW, FR)],
    ['object', (ref: string) => object(database.db, ref, { purpose: 'profiling' }, 'cli', NOW, TEST_TOMBSTONE_KEYS)],
    ['erase', (ref: string) => erase(database.db, ref, 'cli', NOW, TEST_TOMBSTONE_KEYS)],
  ])('%s: an unknown or empty reference, nothing written', async (_right, request) => {
    const unknown = await refusedWithoutWrites(() => request('RGT-0000'));
    expect(unknown).toBeInstanceOf(SubjectNotFoundError);
    expect(unknown.message).toBe('no contact has this external id');
    const empty = await refusedWithoutWrites(() => request('  '));
    expect(empty).toBeInstanceOf(InvalidRightsRequestError);
    expect(empty.message).toBe('ref is empty: give the contact external id');
  });

  it.each<[IdentityChanges, string, RegExp]>([
    [{ email: 'not-an-email' }, 'email', /^email is not a valid email address$/],
    [{ email: 'zoe@example' }, 'email', /^email is not a valid email address$/],
    [{ phone: '12' }, 'phone', /^phone is not a (possible|valid) phone number$/],
    [{ phone: 'call me' }, 'phone', /^phone is not a (possible|valid) phone number$/],
    [{ last_name: 'x'.repeat(201) }, 'last_name', /^last_name is longer than 200 characters$/],
    [{ first_name: 'Irénée', phone: '+33 6 39' }, 'phone', /^phone is not/],
    [{ birth_date: '1990-01-01' } as IdentityChanges, 'birth_date', /^birth_date is not an identity field \(expected one of email, phone/],
    [{}, 'changes', /^changes name no field to rectify/],
  ])('rectify %j: refused naming the field, nothing written', async (changes, field, message) => {
    const error = await refusedWithoutWrites(() => rectify(database.db, THIRD.ref, changes, 'cli', NOW, FR));
    expect(error).toBeInstanceOf(InvalidRightsRequestError);
    expect((error as InvalidRightsRequestError).field).toBe(field);
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain('not-an-email');
  });

  it.each([
    [{ purpose: 'newsletters' }, /^purpose "newsletters" is unknown \(expected one of direct_marketing, profiling\)$/],
    [
      { purpose: 'direct_marketing', channel: 'carrier_pigeon' },
      /^channel "carrier_pigeon" is unknown \(expected one of email, phone, postal, push, sms\)$/,
    ],
    [{ purpose: 'profiling', channel: 'sms' }, /^channel is not used with purpose profiling$/],
  ])('object %j: refused, nothing written', async (request, message) => {
    const error = await refusedWithoutWrites(() => object(database.db, THIRD.ref, request, 'cli', NOW));
    expect(error).toBeInstanceOf(InvalidRightsRequestError);
    expect(error.message).toMatch(message);
  });
});

describe('erasure is all or nothing', () => {
  it.each([
    ['scores', 'BEFORE DELETE', 'OLD'],
    ['contact_pressure', 'BEFORE DELETE', 'OLD'],
    ['erasure_tombstones', 'BEFORE INSERT', 'NEW'],
  ])('a failure while writing %s leaves every table exactly as it was', async (table, timing, row) => {
    const contactId = await contactIdOf(database, SUBJECT.ref);
    // a tombstone row has no contact id: it fails for any insert
    const condition = table === 'erasure_tombstones' ? 'true' : `${row}.contact_id = ${contactId}`;
    await database.pool.query(`
      CREATE FUNCTION fail_for_test() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF ${condition} THEN RAISE EXCEPTION 'injected failure in ${table}'; END IF;
        RETURN ${row};
      END $$;
      CREATE TRIGGER fail_for_test ${timing} ON ${table} FOR EACH ROW EXECUTE FUNCTION fail_for_test();`);
    try {
      const error = await refusedWithoutWrites(() => erase(database.db, SUBJECT.ref, 'cli', NOW, TEST_TOMBSTONE_KEYS));
      expect(error.message).toBe(`injected failure in ${table}`);
    } finally {
      await database.pool.query(`DROP TRIGGER fail_for_test ON ${table}; DROP FUNCTION fail_for_test();`);
    }
  });

  it('once the failure is gone, the same erasure goes through; then every right says the person was erased', async () => {
    const receipt = await erase(database.db, SUBJECT.ref, 'cli', NOW, TEST_TOMBSTONE_KEYS);
    expect(receipt.deleted).toEqual({ contact_personal_data: 1, purchases: 2, scores: 1, contact_pressure: 1 });

    const requests = [
      () => accessReport(database.db, SUBJECT.ref, 'cli', NOW, 'access', TEST_TOMBSTONE_KEYS),
      () => rectify(database.db, SUBJECT.ref, { first_name: 'Irénée' }, 'cli', NOW, FR),
      () => object(database.db, SUBJECT.ref, { purpose: 'direct_marketing' }, 'cli', NOW, TEST_TOMBSTONE_KEYS),
      () => erase(database.db, SUBJECT.ref, 'cli', NOW, TEST_TOMBSTONE_KEYS),
    ];
    for (const request of requests) {
      const error = await refusedWithoutWrites(request);
      expect(error).toBeInstanceOf(SubjectNotFoundError);
      expect(error.message).toMatch(/^this contact was erased on 2026-06-01 at their request/);
    }
  });
});
