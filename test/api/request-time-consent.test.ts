import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/clock.ts';
import { importOppositionList } from '../../src/opposition/opposition.import.ts';
import { erase, object } from '../../src/rights/rights.service.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { captureLogger } from '../helpers/silent-logger.ts';
import { TEST_TOMBSTONE_KEYS } from '../helpers/tombstone-keys.ts';
import { SCORED_SKU, type ScoredBase, type ScoredPerson, seedScoredBase } from '../targeting/targeting.fixtures.ts';
import { type ApiHarness, bodyOf, createApiHarness } from './api.fixtures.ts';

/*
 * The key promise: eligibility is decided when the list is asked for, not when scores
 * were computed. Each change below happens one millisecond before the request, long
 * after the person was scored, and the person must not be in the list.
 */

const SCORED_AT = new Date('2026-11-01T02:00:00Z');
const REQUEST_AT = new Date('2026-11-20T09:00:00Z');
const JUST_BEFORE = new Date(REQUEST_AT.getTime() - 1);
const files = tempFolder();

describe('eligibility at request time', () => {
  let api: ApiHarness | undefined;
  let base: ScoredBase;
  let target: ScoredPerson;

  beforeEach(async () => {
    await api?.close();
    api = await createApiHarness({ clock: fixedClock(REQUEST_AT) });
    base = await seedScoredBase(api.database, 20, SCORED_AT);
    target = base.people[2]!;
  });
  afterAll(() => api?.close());

  async function listRanks(channel = 'email'): Promise<number[]> {
    const response = await api!.call('marketer', `/v1/products/${SCORED_SKU}/targets?channel=${channel}&top=10`);
    expect(response.status).toBe(200);
    return (await bodyOf(response)).members.map((m: { rank: number }) => m.rank);
  }

  async function expectLeftOut(): Promise<void> {
    // the score is still there (or went with the erasure) and older than the change
    const ranks = await listRanks();
    expect(ranks).not.toContain(target.rank);
    expect(ranks).toHaveLength(10);
    expect(ranks[0]).toBe(1);
  }

  it('includes the person when nothing changed', async () => {
    expect(await listRanks()).toContain(target.rank);
  });

  it('leaves out a person who withdrew the channel consent', async () => {
    await api!.database.db
      .insertInto('consent_events')
      .values({
        contact_id: target.id,
        purpose: 'direct_marketing',
        channel: 'email',
        status: 'withdrawn',
        captured_at: JUST_BEFORE,
        source: 'preference_centre',
        method: 'double_opt_in',
        notice_version: 'privacy-v3',
        evidence_ref: null,
        expires_at: null,
        import_id: null,
      })
      .execute();
    const scores = await api!.database.db.selectFrom('scores').select('contact_id').where('contact_id', '=', target.id).execute();
    expect(scores).toHaveLength(1);
    await expectLeftOut();
  });

  it('leaves out a person who objected to direct marketing', async () => {
    await object(api!.database.db, target.ref, { purpose: 'direct_marketing' }, 'test', JUST_BEFORE);
    await expectLeftOut();
  });

  it('leaves out a person who withdrew profiling consent', async () => {
    await api!.database.db
      .insertInto('consent_events')
      .values({
        contact_id: target.id,
        purpose: 'profiling',
        channel: null,
        status: 'withdrawn',
        captured_at: JUST_BEFORE,
        source: 'preference_centre',
        method: 'explicit_checkbox',
        notice_version: 'privacy-v3',
        evidence_ref: null,
        expires_at: null,
        import_id: null,
      })
      .execute();
    await expectLeftOut();
  });

  it('leaves out a person who was erased', async () => {
    await erase(api!.database.db, target.ref, 'test', JUST_BEFORE, TEST_TOMBSTONE_KEYS);
    await expectLeftOut();
  });

  it('leaves out a person on a newly imported opposition list', async () => {
    const report = await importOppositionList(
      { database: api!.database, logger: captureLogger().logger, now: JUST_BEFORE, defaultPhoneCountry: 'FR' },
      {
        name: 'company-suppression',
        channel: 'email',
        listDate: JUST_BEFORE,
        file: files.write('suppression.csv', csv('value', target.email.toUpperCase())),
      },
    );
    expect(report.status).toBe('committed');
    await expectLeftOut();
  });
});
