import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 as seededRandom } from '../../models/random.ts';
import { stateCounts } from '../../src/audit/consent-audit.repository.ts';
import type { ConsentStatus } from '../../src/consent/consent.table.ts';
import { countingConsents, objectionStandsAgainst, profileableContacts } from '../../src/consent/eligibility.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { refreshPersonConsentState } from '../../src/identities/resolution.repository.ts';
import { createTestDatabase } from '../helpers/database.ts';

/*
 * Property: for random consent histories of persons spread over 1 to 3 records (linked before
 * or after their events are recorded), inserted in random order and in random
 * batches, `countingConsents` (as of T, read from the ledger) and its live form
 * (read from consent_state) give exactly the answer of a plain TypeScript
 * evaluator of the rules, for every contact and every instant checked. Live, the channel
 * consents no objection stands against (objectionStandsAgainst, which the gate, the audit and
 * the access report share) match the reference too, objections at the grant's instant included,
 * and so does the consent audit's count of counting channel consents.
 */

const HOUR = 3_600_000;
const ORIGIN = Date.parse('2025-03-03T08:00:00Z');
/** Event times are ORIGIN + slot hours: few slots, so several events often share a captured_at. */
const SLOTS = 10;
const LAST_SLOT = ORIGIN + (SLOTS - 1) * HOUR;

// ---------------------------------------------------------------- the reference rules

/** The methods the rules call explicit (written out here, independently of the consent_methods table). */
const EXPLICIT_METHODS = new Set(['explicit_checkbox', 'double_opt_in', 'signed_form', 'recorded_verbal']);

interface LedgerEvent {
  id: number;
  contactId: number;
  status: ConsentStatus;
  method: string | null;
  source: string | null;
  capturedAt: number;
  expiresAt: number | null;
}

/** Granted, explicit, with proof of means: what counts before expiry (consent_is_valid in SQL). */
function eventIsValid(event: LedgerEvent): boolean {
  return event.status === 'granted' && event.method !== null && EXPLICIT_METHODS.has(event.method) && (event.source ?? '').trim() !== '';
}

/**
 * The event in force at `at`: the greatest captured_at at or before `at`; at an equal instant an event
 * that is not valid outranks a valid one (a tie is never read as consent), then the greater ledger id.
 */
function latestEvent(events: readonly LedgerEvent[], at: number): LedgerEvent | undefined {
  const rank = (event: LedgerEvent) => [event.capturedAt, eventIsValid(event) ? 0 : 1, event.id] as const;
  let latest: LedgerEvent | undefined;
  for (const event of events) {
    if (event.capturedAt > at) continue;
    if (!latest) {
      latest = event;
      continue;
    }
    const [a, b] = [rank(event), rank(latest)];
    if (a[0] > b[0] || (a[0] === b[0] && (a[1] > b[1] || (a[1] === b[1] && a[2] > b[2])))) latest = event;
  }
  return latest;
}

function eventCounts(event: LedgerEvent, at: number): boolean {
  return eventIsValid(event) && (event.expiresAt === null || event.expiresAt > at);
}

/** contact id -> id of the event that makes the consent count at `at`, for the contacts whose consent counts. */
function referenceCounting(historyByContact: ReadonlyMap<number, LedgerEvent[]>, at: number): Map<number, number> {
  const counting = new Map<number, number>();
  for (const [contactId, events] of historyByContact) {
    const latest = latestEvent(events, at);
    if (latest && eventCounts(latest, at)) counting.set(contactId, latest.id);
  }
  return counting;
}

/**
 * contact id -> channel grant id, for the channel consents that count at `at` and that no objection to
 * every channel stands against: the latest all-channel event is an objection captured at or after the grant.
 */
function referenceNotObjected(
  channelHistory: ReadonlyMap<number, LedgerEvent[]>,
  allChannelHistory: ReadonlyMap<number, LedgerEvent[]>,
  at: number,
): Map<number, number> {
  const result = new Map<number, number>();
  for (const [contactId, grantId] of referenceCounting(channelHistory, at)) {
    const grant = channelHistory.get(contactId)!.find((event) => event.id === grantId)!;
    const objection = latestEvent(allChannelHistory.get(contactId) ?? [], at);
    if (objection?.status === 'objected' && objection.capturedAt === grant.capturedAt) objectionTies += 1;
    if (!(objection?.status === 'objected' && objection.capturedAt >= grant.capturedAt)) result.set(contactId, grantId);
  }
  return result;
}

// ---------------------------------------------------------------- generated histories

interface ConsentKey {
  name: string;
  purpose: string;
  channel: string | null;
}

const PROFILING: ConsentKey = { name: 'profiling', purpose: 'profiling', channel: null };
const KEYS: ConsentKey[] = [
  PROFILING,
  { name: 'direct_marketing/sms', purpose: 'direct_marketing', channel: 'sms' },
  { name: 'direct_marketing/email', purpose: 'direct_marketing', channel: 'email' },
  // where an objection to direct marketing on every channel lives
  { name: 'direct_marketing/(all channels)', purpose: 'direct_marketing', channel: null },
];

interface GeneratedEvent {
  slot: number;
  /** which of the person's records the event was collected on (modulo their number of records) */
  record: number;
  status: ConsentStatus;
  method: string | null;
  source: string | null;
  /** hours after captured_at; 0 or less: already expired when captured */
  expiresAfterHours: number | null;
}

const weighted = <T>(...entries: Array<[T, number]>) =>
  fc.oneof(...entries.map(([value, weight]) => ({ arbitrary: fc.constant(value), weight })));

function eventArbitrary(statuses: fc.Arbitrary<ConsentStatus>): fc.Arbitrary<GeneratedEvent> {
  return fc.record({
    slot: fc.integer({ min: 0, max: SLOTS - 1 }),
    record: fc.integer({ min: 0, max: 2 }),
    status: statuses,
    method: weighted<string | null>(
      ['explicit_checkbox', 3],
      ['double_opt_in', 3],
      ['signed_form', 2],
      ['recorded_verbal', 2],
      ['pre_ticked', 1],
      ['implied', 1],
      ['bundled', 1],
      [null, 1],
    ),
    source: weighted<string | null>(['web_form', 5], ['shop:lyon-3', 2], ['  call_centre  ', 1], ['', 1], ['   ', 1], [null, 1]),
    expiresAfterHours: fc.option(fc.integer({ min: -1, max: SLOTS + 2 }), { nil: null, freq: 3 }),
  });
}

const consentEvent = eventArbitrary(weighted<ConsentStatus>(['granted', 6], ['withdrawn', 2], ['refused', 1], ['objected', 1]));
const allChannelEvent = eventArbitrary(weighted<ConsentStatus>(['objected', 3], ['granted', 1], ['withdrawn', 1]));

/** One person's history: events per consent key, in the order of KEYS, spread over 1 to 3 records. */
const contactHistory = fc.record({
  records: weighted<number>([1, 2], [2, 2], [3, 1]),
  keys: fc.tuple(
    fc.array(consentEvent, { maxLength: 5 }),
    fc.array(consentEvent, { maxLength: 4 }),
    fc.array(consentEvent, { maxLength: 4 }),
    fc.array(allChannelEvent, { maxLength: 2 }),
  ),
});

/** An instant to check, in half hours from ORIGIN (odd: between two slots), shifted by -1, 0 or +1 ms. */
const instant = fc
  .record({ halfHours: fc.integer({ min: -2, max: 2 * (2 * SLOTS + 2) }), jitterMs: fc.constantFrom(-1, 0, 0, 1) })
  .map(({ halfHours, jitterMs }) => ORIGIN + (halfHours * HOUR) / 2 + jitterMs);

/** A "now" for the live answer: at or after the last possible captured_at. */
const liveInstant = fc
  .record({ halfHours: fc.integer({ min: 0, max: 2 * (SLOTS + 4) }), jitterMs: fc.constantFrom(0, 0, 1) })
  .map(({ halfHours, jitterMs }) => LAST_SLOT + (halfHours * HOUR) / 2 + jitterMs);

const scenario = fc.record({
  histories: fc.array(contactHistory, { minLength: 200, maxLength: 320 }),
  instants: fc.uniqueArray(instant, { minLength: 6, maxLength: 9 }),
  liveInstants: fc.uniqueArray(liveInstant, { minLength: 1, maxLength: 2 }),
  /** drives the shuffling of the insertion order and the cutting into INSERT statements */
  insertionSeed: fc.integer({ min: 1, max: 0x7fffffff }),
  statements: fc.integer({ min: 1, max: 6 }),
  /** records linked into persons before their events are recorded (the trigger), or after (the rebuild from the ledger) */
  linkAfterEvents: fc.boolean(),
});
type ScenarioValue = typeof scenario extends fc.Arbitrary<infer T> ? T : never;

// ---------------------------------------------------------------- database side

let database: DatabaseHandle;
let checkedCases = 0;
let countingCases = 0;
/** how often the generated data exercised the tricky parts: ties at one captured_at, late arrivals */
let sameInstantTies = 0;
let lateArrivals = 0;
/** counting channel grants with an all-channel objection at the very same instant */
let objectionTies = 0;
/** person x key whose records disagree: one record's latest event counts, another's latest is a "no" captured later */
let recordDisagreements = 0;
let mismatches: string[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database?.close());

async function emptyLedger(): Promise<void> {
  await sql`TRUNCATE consent_state, consent_events, contact_personal_data, contacts`.execute(database.db);
}

function shuffle<T>(items: T[], random: () => number): T[] {
  const result = [...items];
  for (let index = result.length - 1; index > 0; index -= 1) {
    const other = Math.floor(random() * (index + 1));
    [result[index], result[other]] = [result[other]!, result[index]!];
  }
  return result;
}

/** Cuts `items` into `count` consecutive non-empty pieces at random places. */
function cut<T>(items: T[], count: number, random: () => number): T[][] {
  const cuts = new Set<number>();
  while (cuts.size < Math.min(count, items.length) - 1) cuts.add(1 + Math.floor(random() * (items.length - 1)));
  const bounds = [0, ...[...cuts].sort((a, b) => a - b), items.length];
  return bounds.slice(1).map((end, index) => items.slice(bounds[index], end));
}

interface PendingEvent {
  tag: string;
  contactId: number;
  key: ConsentKey;
  generated: GeneratedEvent;
}

/**
 * Writes the scenario: contacts first, then every event in a shuffled order, in
 * several INSERT statements (each one seen whole by the statement trigger).
 * Returns the ledger as stored, with its ids, per key and contact.
 */
async function writeScenario(value: ScenarioValue, run: number): Promise<Map<string, Map<number, LedgerEvent[]>>> {
  const contacts = await database.db
    .insertInto('contacts')
    .values(
      value.histories.flatMap((history, index) =>
        Array.from({ length: history.records }, (_, record) => ({
          external_id: `P${run}-${index}-${record}`,
          created_at: new Date('2024-01-01T00:00:00Z'),
        })),
      ),
    )
    .returning(['id', 'external_id'])
    .execute();
  const contactIdOf = new Map(contacts.map((row) => [row.external_id, row.id]));
  const recordsOf = (index: number) =>
    Array.from({ length: value.histories[index]!.records }, (_, record) => contactIdOf.get(`P${run}-${index}-${record}`)!);
  /** the person: the id of their first record */
  const personOf = value.histories.map((_, index) => Math.min(...recordsOf(index)));
  const linkRecords = async () => {
    for (const [index, person] of personOf.entries()) {
      const others = recordsOf(index).filter((id) => id !== person);
      if (others.length > 0) await database.db.updateTable('contacts').set({ person_id: person }).where('id', 'in', others).execute();
    }
  };
  if (!value.linkAfterEvents) await linkRecords();

  const pending: PendingEvent[] = [];
  value.histories.forEach((history, index) => {
    const records = recordsOf(index);
    history.keys.forEach((events, keyIndex) => {
      for (const generated of events) {
        const contactId = records[generated.record % records.length]!;
        pending.push({ tag: `run${run}-ev${pending.length}`, contactId, key: KEYS[keyIndex]!, generated });
      }
    });
  });

  const random = seededRandom(value.insertionSeed);
  const insertionOrder = shuffle(pending, random);
  for (const statement of cut(insertionOrder, value.statements, random)) {
    // at most ~1,500 rows a statement keeps under the 65,535 bind parameters of the protocol
    for (let start = 0; start < statement.length; start += 1_500) {
      await database.db
        .insertInto('consent_events')
        .values(
          statement.slice(start, start + 1_500).map(({ tag, contactId, key, generated }) => {
            const capturedAt = ORIGIN + generated.slot * HOUR;
            return {
              contact_id: contactId,
              purpose: key.purpose,
              channel: key.channel,
              status: generated.status,
              captured_at: new Date(capturedAt),
              source: generated.source,
              method: generated.method,
              evidence_ref: tag,
              expires_at: generated.expiresAfterHours === null ? null : new Date(capturedAt + generated.expiresAfterHours * HOUR),
              import_id: null,
              notice_version: null,
            };
          }),
        )
        .execute();
    }
  }
  if (value.linkAfterEvents) {
    await linkRecords();
    // every record was its own person until now: each is rebuilt (rows of records that stopped being persons go)
    await refreshPersonConsentState(database.db, [...contactIdOf.values()]);
  }
  const personOfRecord = new Map(value.histories.flatMap((_, index) => recordsOf(index).map((id) => [id, personOf[index]!] as const)));

  // the ids the ledger gave, found back through the tag each event carries
  const stored = await database.db.selectFrom('consent_events').select(['id', 'evidence_ref']).execute();
  const idOf = new Map(stored.map((row) => [row.evidence_ref!, row.id]));
  expect(idOf.size).toBe(pending.length);
  // ids follow the insertion order (the tie-break the rules rely on)
  const insertedIds = insertionOrder.map((event) => idOf.get(event.tag)!);
  expect(insertedIds.every((id, index) => index === 0 || id > insertedIds[index - 1]!)).toBe(true);

  // events of one contact x key sharing a captured_at (the id decides), and events inserted
  // after an event of the same contact x key that happened later (must not replace it)
  const newestSoFar = new Map<string, number>();
  const seenInstants = new Set<string>();
  for (const { contactId, key, generated } of insertionOrder) {
    const consent = `${personOfRecord.get(contactId)}/${key.name}`;
    if (seenInstants.has(`${consent}@${generated.slot}`)) sameInstantTies += 1;
    seenInstants.add(`${consent}@${generated.slot}`);
    if ((newestSoFar.get(consent) ?? -1) > generated.slot) lateArrivals += 1;
    newestSoFar.set(consent, Math.max(newestSoFar.get(consent) ?? -1, generated.slot));
  }

  // the ledger by person: every event of every record of theirs
  const ledger = new Map<string, Map<number, LedgerEvent[]>>(KEYS.map((key) => [key.name, new Map(personOf.map((id) => [id, []]))]));
  for (const { tag, contactId, key, generated } of pending) {
    const capturedAt = ORIGIN + generated.slot * HOUR;
    ledger
      .get(key.name)!
      .get(personOfRecord.get(contactId)!)!
      .push({
        id: idOf.get(tag)!,
        contactId,
        status: generated.status,
        method: generated.method,
        source: generated.source,
        capturedAt,
        expiresAt: generated.expiresAfterHours === null ? null : capturedAt + generated.expiresAfterHours * HOUR,
      });
  }
  return ledger;
}

async function countingFromDatabase(key: ConsentKey, at: number, live: boolean): Promise<Map<number, number>> {
  const { rows } = await sql<{ contact_id: number; event_id: number }>`
    SELECT contact_id, event_id FROM ${countingConsents(key.purpose, key.channel, new Date(at), live)} c`.execute(database.db);
  const counting = new Map(rows.map((row) => [row.contact_id, row.event_id]));
  expect(counting.size, 'one row per counting contact').toBe(rows.length);
  return counting;
}

/** Compares one answer with the reference for every contact of the run; records and counts each (contact, instant) case. */
function compare(
  label: string,
  contactIds: readonly number[],
  actual: ReadonlyMap<number, number>,
  expected: ReadonlyMap<number, number>,
): void {
  for (const contactId of contactIds) {
    checkedCases += 1;
    if (expected.has(contactId)) countingCases += 1;
    if (actual.get(contactId) !== expected.get(contactId)) {
      mismatches.push(
        `${label}, contact ${contactId}: expected event ${expected.get(contactId) ?? 'none'}, got ${actual.get(contactId) ?? 'none'}`,
      );
    }
  }
  for (const contactId of actual.keys()) {
    if (!contactIds.includes(contactId)) mismatches.push(`${label}: unknown contact ${contactId} in the answer`);
  }
}

/**
 * The merge rule checked on its own terms, independently of the reference: a person is never counted
 * when one of their records' latest event at `at` is a "no" captured at or after the grant used.
 */
function checkNoRecordsNoIsIgnored(
  label: string,
  history: ReadonlyMap<number, LedgerEvent[]>,
  actual: ReadonlyMap<number, number>,
  at: number,
) {
  for (const [person, events] of history) {
    const byRecord = new Map<number, LedgerEvent[]>();
    for (const event of events) byRecord.set(event.contactId, [...(byRecord.get(event.contactId) ?? []), event]);
    const latests = [...byRecord.values()].flatMap((recordEvents) => latestEvent(recordEvents, at) ?? []);
    if (latests.some(eventIsValid) && latests.some((event) => !eventIsValid(event))) recordDisagreements += 1;
    const grantId = actual.get(person);
    if (grantId === undefined) continue;
    const grant = events.find((event) => event.id === grantId);
    const no = latests.find((event) => !eventIsValid(event) && grant !== undefined && event.capturedAt >= grant.capturedAt);
    if (!grant || no) {
      mismatches.push(`${label}, person ${person}: counted on event ${grantId} although record ${no?.contactId} said no (event ${no?.id})`);
    }
  }
}

async function checkScenario(value: ScenarioValue, run: number): Promise<void> {
  await emptyLedger();
  const ledger = await writeScenario(value, run);
  const contactIds = [...ledger.get(PROFILING.name)!.keys()];
  const iso = (at: number) => new Date(at).toISOString();

  for (const key of KEYS) {
    const history = ledger.get(key.name)!;
    // as of T, from the ledger: before, between, exactly at and after event times and expiries
    for (const at of [ORIGIN - HOUR, ...value.instants, LAST_SLOT + 30 * HOUR]) {
      const actual = await countingFromDatabase(key, at, false);
      compare(`${key.name} as of ${iso(at)}`, contactIds, actual, referenceCounting(history, at));
      checkNoRecordsNoIsIgnored(`${key.name} as of ${iso(at)}`, history, actual, at);
    }
    // now, from the state table kept by the trigger (or rebuilt from the ledger when records were linked later)
    for (const at of value.liveInstants) {
      const actual = await countingFromDatabase(key, at, true);
      compare(`${key.name} live at ${iso(at)}`, contactIds, actual, referenceCounting(history, at));
      checkNoRecordsNoIsIgnored(`${key.name} live at ${iso(at)}`, history, actual, at);
    }
  }

  // live, the channel consents no objection stands against, and the audit's count of them
  const allChannels = ledger.get('direct_marketing/(all channels)')!;
  const liveAt = value.liveInstants[0]!;
  const audit = await stateCounts(database.db, new Date(liveAt));
  for (const channel of ['sms', 'email']) {
    const expected = referenceNotObjected(ledger.get(`direct_marketing/${channel}`)!, allChannels, liveAt);
    const { rows } = await sql<{ contact_id: number; event_id: number }>`
      SELECT m.contact_id, m.event_id FROM ${countingConsents('direct_marketing', channel, new Date(liveAt), true)} m
      WHERE NOT EXISTS (SELECT 1 FROM consent_state o
        WHERE ${objectionStandsAgainst('o', { contactId: sql`m.contact_id`, purpose: sql`'direct_marketing'`, capturedAt: sql`m.captured_at` })})`.execute(
      database.db,
    );
    compare(
      `${channel}, not objected, live at ${iso(liveAt)}`,
      contactIds,
      new Map(rows.map((row) => [row.contact_id, row.event_id])),
      expected,
    );
    const counting = audit.find((row) => row.purpose === 'direct_marketing' && row.channel_key === channel && row.reason === 'counting');
    if ((counting?.contacts ?? 0) !== expected.size) {
      mismatches.push(
        `consent audit, ${channel} live at ${iso(liveAt)}: ${counting?.contacts ?? 0} counting, the reference says ${expected.size}`,
      );
    }
  }

  // the profiling gate as the pipelines call it
  const profilingHistory = ledger.get(PROFILING.name)!;
  for (const [at, live] of [
    [value.instants[0]!, false],
    [value.liveInstants[0]!, true],
  ] as const) {
    const profileable = await profileableContacts(database.db, new Date(at), live);
    const actual = new Map(profileable.map((row) => [row.contactId, row.consentEventId]));
    compare(`profileableContacts(${iso(at)}, live=${live})`, contactIds, actual, referenceCounting(profilingHistory, at));
  }
}

describe('countingConsents against a reference evaluator of the consent rules', () => {
  it('agrees for random histories inserted out of order, at random instants, as of T and live', async () => {
    let run = 0;
    const outcome = await fc.check(
      fc.asyncProperty(scenario, async (value) => {
        run += 1;
        mismatches = [];
        await checkScenario(value, run);
        if (mismatches.length > 0) {
          throw new Error(`${mismatches.length} mismatch(es), e.g.:\n${mismatches.slice(0, 10).join('\n')}`);
        }
      }),
      // a few runs of a few hundred contacts each; no shrinking, since each try writes a whole database
      { numRuns: Number(process.env.CONSENT_PROPERTY_RUNS ?? 20), endOnFailure: true },
    );
    if (outcome.failed) {
      // the generated histories are far too long to print: the mismatches and the seed to replay say it all
      throw new Error(
        `run ${outcome.numRuns} disagreed with the reference (replay with seed ${outcome.seed}, path "${outcome.counterexamplePath}"): ` +
          `${(outcome.errorInstance as Error | undefined)?.message ?? String(outcome.errorInstance)}`,
      );
    }
    console.log(
      `consent eligibility property: ${checkedCases} (contact, instant, consent) cases checked in ${run} runs, ` +
        `${countingCases} of them counting, 0 mismatches; the histories held ${sameInstantTies} events sharing a captured_at ` +
        `with an earlier-inserted one and ${lateArrivals} events inserted after a later-captured one; ` +
        `${objectionTies} counting channel grants had an objection at their very instant; ` +
        `${recordDisagreements} (person, consent, instant) cases where one record's latest event counted and another's did not`,
    );
    expect(recordDisagreements, 'persons whose records disagree exercised').toBeGreaterThan(1_000);
    expect(objectionTies, 'ties between a grant and an objection exercised').toBeGreaterThan(run / 2);
    expect(sameInstantTies).toBeGreaterThan(100);
    expect(lateArrivals).toBeGreaterThan(100);
    expect(checkedCases).toBeGreaterThan(10_000);
    expect(countingCases).toBeGreaterThan(1_000);
  }, 180_000);
});
