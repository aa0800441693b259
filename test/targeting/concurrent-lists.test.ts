import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONSENT_POLICY, DEFAULT_TARGETING_POLICY } from '../../src/config.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { buildTargetList, type TargetList, type TargetListRequest } from '../../src/targeting/target-list.service.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { SCORED_SKU, type ScoredBase, seedScoredBase } from './targeting.fixtures.ts';

const NOW = new Date('2026-11-20T09:00:00Z');
const DAY = 86_400_000;
const PEOPLE = 60;
const CAP = 3;
const policies = (pressureMaxLists: number) => ({
  consent: DEFAULT_CONSENT_POLICY,
  targeting: { ...DEFAULT_TARGETING_POLICY, pressureMaxLists, pressureWindowDays: 7, maxMembers: 1000 },
});
const request = (top: number, holdoutPercent = 0): TargetListRequest => ({
  sku: SCORED_SKU,
  channel: 'email',
  size: { top },
  holdoutPercent,
  actor: 'test',
  apiKeyId: null,
});
const positions = (list: TargetList) => [...list.members, ...list.holdout].map((member) => member.rank);

/**
 * Lists run at the same time (no global lock): each reserves its members' contact pressure
 * per person, so the cap holds exactly whatever runs beside it, and each decides consent at
 * its own request time.
 */
describe('lists served at the same time', () => {
  let database: DatabaseHandle;
  let base: ScoredBase;

  beforeAll(async () => {
    database = await createTestDatabase();
    base = await seedScoredBase(database, PEOPLE, NOW);
  });
  afterAll(async () => {
    await database?.close();
  });

  it('8 lists at once over the same people never put anyone in more than 3 of them, round after round', async () => {
    // each round is a week later: the sends of the round before have left the 7-day window
    for (let round = 0; round < 8; round++) {
      const at = new Date(NOW.getTime() + round * 8 * DAY);
      const lists = await Promise.all(
        Array.from({ length: 8 }, (_, i) => buildTargetList(database.db, request(25, i % 2 === 0 ? 0 : 10), policies(CAP), at)),
      );
      const contacted = new Map<number, number>();
      for (const list of lists) {
        expect(list.members.length + list.holdout.length).toBeGreaterThan(0);
        expect(new Set(positions(list)).size, 'nobody twice in one list').toBe(list.members.length + list.holdout.length);
        for (const member of list.members) contacted.set(member.rank, (contacted.get(member.rank) ?? 0) + 1);
      }
      expect(Math.max(...contacted.values()), `round ${round}`).toBeLessThanOrEqual(CAP);
      // the lists did share people up to the cap: 8 lists of 25 over 60 people
      const sends = [...contacted.values()].reduce((sum, n) => sum + n, 0);
      expect(sends, `round ${round}`).toBeGreaterThan(PEOPLE);
      expect(sends).toBeLessThanOrEqual(PEOPLE * CAP);
      const pressure = await database.pool.query<{ over: number }>(
        `SELECT count(*)::int AS over FROM contact_pressure
         WHERE (SELECT count(*) FROM unnest(sends) s WHERE s.sent_at > $1) > $2`,
        [new Date(at.getTime() - 7 * DAY), CAP],
      );
      expect(pressure.rows[0]!.over).toBe(0);
    }
  });

  it('a withdrawal committed while lists are served is in no list asked after it', async () => {
    const at = new Date(NOW.getTime() + 100 * DAY);
    const best = base.people[0]!;
    const first = await buildTargetList(database.db, request(10), policies(1000), at);
    expect(first.members[0]!.rank).toBe(best.rank);

    let withdrawnAt: number | null = null;
    const asked: Array<{ afterWithdrawal: boolean; list: Promise<TargetList> }> = [];
    // lists keep being asked until three were asked after the withdrawal committed, however long the
    // insert waits behind them (on a loaded machine twelve asks 5 ms apart all came before it)
    const serving = (async () => {
      while (asked.filter((entry) => entry.afterWithdrawal).length < 3) {
        asked.push({ afterWithdrawal: withdrawnAt !== null, list: buildTargetList(database.db, request(10), policies(1000), at) });
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 15));
    await database.db
      .insertInto('consent_events')
      .values({
        contact_id: best.id,
        purpose: 'direct_marketing',
        channel: 'email',
        status: 'withdrawn',
        captured_at: new Date(at.getTime() - 1),
        source: 'web:account-form',
        method: 'double_opt_in',
        notice_version: 'privacy-v3',
        evidence_ref: null,
        expires_at: null,
        import_id: null,
      })
      .execute();
    withdrawnAt = Date.now();
    await serving;
    const lists = await Promise.all(asked.map(async (entry) => ({ ...entry, list: await entry.list })));
    const after = lists.filter((entry) => entry.afterWithdrawal);
    expect(after.length).toBeGreaterThan(0);
    for (const { list } of after) expect(positions(list)).not.toContain(best.rank);
    const later = await buildTargetList(database.db, request(10), policies(1000), at);
    expect(positions(later)).not.toContain(best.rank);
  });
});
