import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsentEventInput, recordConsents } from '../../src/consent/consent-recording.service.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { importFile, NOW } from '../imports/import.fixtures.ts';
import { NEIGHBOUR, SUBJECT, seedPeople, THIRD } from '../rights/rights.fixtures.ts';

// The ledger records an event once, whoever writes it and however many at a time: the
// database's unique natural key decides, not a check that a concurrent writer cannot see.

let database: DatabaseHandle;
const files = tempFolder();
const options = { actor: 'test', now: NOW };

beforeAll(async () => {
  database = await createTestDatabase();
  await seedPeople(database);
});
afterAll(() => database.close());

async function eventCount(capturedAt: string): Promise<number> {
  const { rows } = await database.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM consent_events WHERE captured_at = $1', [
    capturedAt,
  ]);
  return rows[0]!.n;
}

/**
 * On PostgreSQL, waits until `work` is blocked on a lock held by the open transaction (or has
 * already finished, as a writer that checks instead of relying on the key would); on the
 * embedded database, which runs one transaction at a time, `work` cannot start before it.
 */
async function blockedOrSettled(work: Promise<unknown>): Promise<void> {
  if (database.engine === 'pglite') return;
  let settled = false;
  work.then(
    () => (settled = true),
    () => (settled = true),
  );
  const watcher = await database.pool.connect();
  try {
    for (;;) {
      if (settled) return;
      const { rows } = await watcher.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
      );
      if (rows[0]!.n > 0) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    watcher.release();
  }
}

describe('consent events recorded at the same time', () => {
  it('a retried POST running while the first is still uncommitted records the event once, and answers with its id', async () => {
    const events: ConsentEventInput[] = [
      {
        externalId: NEIGHBOUR.ref,
        purpose: 'direct_marketing',
        channel: 'sms',
        status: 'withdrawn',
        capturedAt: '2026-05-02T10:00:00Z',
        source: 'sms:STOP',
        method: 'explicit_checkbox',
      },
      {
        externalId: THIRD.ref,
        purpose: 'direct_marketing',
        channel: 'email',
        status: 'granted',
        capturedAt: '2026-05-02T10:00:00Z',
        source: 'web:form',
        method: 'double_opt_in',
        evidenceRef: 'form-77',
      },
    ];
    const first = await database.db.startTransaction().execute();
    const firstResult = await recordConsents(first, events, options);
    const retry = recordConsents(database.db, events, options);
    await blockedOrSettled(retry);
    await first.commit().execute();
    const retried = await retry;

    expect(firstResult.recorded).toBe(2);
    expect(retried).toEqual({ recorded: 0, alreadyRecorded: 2, eventIds: firstResult.eventIds });
    expect(await eventCount('2026-05-02T10:00:00Z')).toBe(2);
  });

  it('an event differing only by its evidence reference is another event', async () => {
    const event: ConsentEventInput = {
      externalId: THIRD.ref,
      purpose: 'direct_marketing',
      channel: 'email',
      status: 'granted',
      capturedAt: '2026-05-02T10:00:00Z',
      source: 'web:form',
      method: 'double_opt_in',
      evidenceRef: 'form-78',
    };
    expect((await recordConsents(database.db, [event], options)).recorded).toBe(1);
  });

  const header = 'external_id,purpose,channel,status,captured_at,source,method,notice_version,evidence_ref,expires_at';
  const lines = [SUBJECT, NEIGHBOUR, THIRD].flatMap((person) => [
    `${person.ref},direct_marketing,phone,granted,2026-05-03T09:00:00Z,call-centre,recorded_verbal,script-v2,rec-${person.ref},`,
    `${person.ref},direct_marketing,sms,refused,2026-05-03T09:00:00Z,call-centre,recorded_verbal,script-v2,,`,
  ]);

  it('an import of a consents file while the same events are being recorded records each event once', async () => {
    const file = files.write('call-centre.csv', csv(header, ...lines));
    const recording = await database.db.startTransaction().execute();
    await recordConsents(
      recording,
      [
        {
          externalId: SUBJECT.ref,
          purpose: 'direct_marketing',
          channel: 'phone',
          status: 'granted',
          capturedAt: '2026-05-03T09:00:00Z',
          source: 'call-centre',
          method: 'recorded_verbal',
          noticeVersion: 'script-v2',
          evidenceRef: `rec-${SUBJECT.ref}`,
        },
      ],
      options,
    );
    const importing = importFile(database, 'consents', file);
    await blockedOrSettled(importing);
    await recording.commit().execute();
    const report = await importing;

    expect(report.status).toBe('committed');
    expect(report.inserted).toBe(5);
    expect(await eventCount('2026-05-03T09:00:00Z')).toBe(6);
  });

  it('two imports of the same file at the same time record each event once', async () => {
    const file = files.write('twice.csv', csv(header, ...lines.map((line) => line.replace('2026-05-03', '2026-05-04'))));
    const reports = await Promise.all([importFile(database, 'consents', file), importFile(database, 'consents', file)]);
    expect(reports.map((report) => report.status)).toEqual(['committed', 'committed']);
    expect(reports.map((report) => report.inserted).sort()).toEqual([0, 6]);
    expect(await eventCount('2026-05-04T09:00:00Z')).toBe(6);
  });
});
