import type { Kysely } from 'kysely';
import type { Database } from '../db/database.ts';
import { appendAuditLog } from './audit-log.repository.ts';
import {
  CONSENT_REASONS,
  type ConsentReason,
  type ContactCountRow,
  type CurrentConsentRow,
  consentsToReview,
  contactCounts,
  type DisagreementRow,
  type LedgerCountRow,
  ledgerCounts,
  type PersonCountRow,
  personCounts,
  recordDisagreements,
  type StateCountRow,
  stateCounts,
} from './consent-audit.repository.ts';

/** The day the GDPR became applicable: consents collected before it typically lack proof. */
export const GDPR_APPLICABLE_FROM = new Date('2018-05-25T00:00:00Z');

const DAY_MS = 86_400_000;

export interface ConsentAuditOptions {
  /** list the counting consents that expire within this many days (default 30) */
  expiringWithinDays?: number;
}

export interface EventCount {
  value: string | null;
  events: number;
}

export interface StateCount {
  purpose: string;
  /** null for a purpose without channel, and for an all-channel objection */
  channel: string | null;
  /** persons (not erased) with at least one event for this purpose × channel, on any of their records */
  contacts: number;
  counting: number;
  notCounting: Record<Exclude<ConsentReason, 'counting'>, number>;
  /** persons (not erased) with no event at all for this purpose × channel */
  noEvent: number;
}

export interface AuditedConsent {
  externalId: string;
  purpose: string;
  channel: string | null;
  capturedAt: string;
  expiresAt: string | null;
  source: string | null;
  method: string | null;
}

/** A person whose records disagree for a purpose × channel (records named by external id). */
export interface RecordDisagreement {
  /** the external id of the person's first record */
  person: string;
  purpose: string;
  channel: string | null;
  /** records whose latest event for it counts */
  granting: string[];
  /** other records whose latest event is a withdrawal, refusal or objection */
  refusing: string[];
}

export interface ConsentList<T> {
  /** consents listed (one per contact × purpose × channel) */
  total: number;
  /** distinct contacts among them */
  people: number;
  contacts: T[];
}

/**
 * The DPO's consent audit (GDPR rule 3). JSON-serialisable. It names contacts by
 * external_id: print it or write it to a file, never log it.
 */
export interface ConsentAuditReport {
  at: string;
  /** contact records */
  contacts: { total: number; erased: number };
  /** persons above the live records (several records of one person are linked by email or phone) */
  persons: PersonCountRow;
  events: {
    total: number;
    byPurpose: EventCount[];
    byChannel: EventCount[];
    byStatus: EventCount[];
    byMethod: Array<EventCount & { explicit: boolean | null }>;
  };
  /** current state (latest event) per purpose × channel, contacts not erased */
  state: StateCount[];
  /** latest grant without proof of means: these people must be asked again */
  withoutProof: ConsentList<AuditedConsent & { beforeGdpr: boolean }> & { beforeGdpr: number };
  /** latest grant by a pre-ticked, implied or bundled method: never consent */
  nonExplicit: ConsentList<AuditedConsent> & { byMethod: Record<string, number> };
  /** counting consents that stop counting within `withinDays` days */
  expiring: ConsentList<AuditedConsent> & { withinDays: number };
  /**
   * persons whose records disagree: one record's latest event for a purpose × channel counts,
   * another's is a withdrawal, refusal or objection (the person is not reachable on it unless the grant came later)
   */
  disagreements: { total: number; persons: number; list: RecordDisagreement[] };
}

/**
 * The consent audit as of `now`, which must be the present: the current state is the
 * state table kept with the ledger (the latest event of each contact × purpose × channel).
 * Runs in one read-only snapshot.
 */
export async function consentAudit(
  db: Kysely<Database>,
  now: Date,
  { expiringWithinDays = 30 }: ConsentAuditOptions = {},
): Promise<ConsentAuditReport> {
  if (!Number.isInteger(expiringWithinDays) || expiringWithinDays < 0) {
    throw new RangeError(`expiringWithinDays must be a whole number of days, got ${expiringWithinDays}`);
  }
  const until = new Date(now.getTime() + expiringWithinDays * DAY_MS);
  // one snapshot, so that the counts and the lists agree even while an import commits
  return db
    .transaction()
    .setIsolationLevel('repeatable read')
    .setAccessMode('read only')
    .execute(async (trx) => {
      const contacts = await contactCounts(trx);
      const persons = await personCounts(trx);
      const ledger = await ledgerCounts(trx);
      const state = await stateCounts(trx, now);
      const toReview = await consentsToReview(trx, now, until);
      const disagreements = await recordDisagreements(trx, now);
      return assemble(now, expiringWithinDays, { contacts, persons, ledger, state, toReview, disagreements });
    });
}

interface AuditRows {
  contacts: ContactCountRow;
  persons: PersonCountRow;
  disagreements: DisagreementRow[];
  ledger: LedgerCountRow[];
  state: StateCountRow[];
  toReview: CurrentConsentRow[];
}

function assemble(
  now: Date,
  expiringWithinDays: number,
  { contacts, persons, ledger, state, toReview, disagreements }: AuditRows,
): ConsentAuditReport {
  // a stable sort: soonest first, then in the database's order
  const expiring = toReview.filter((row) => row.reason === 'counting').sort((a, b) => a.expires_at!.getTime() - b.expires_at!.getTime());
  return {
    at: now.toISOString(),
    contacts,
    persons,
    events: eventCounts(ledger),
    // the consent state is per person
    state: stateCountsByKey(state, persons.total),
    withoutProof: withoutProofList(toReview.filter((row) => row.reason === 'noProofOfMeans')),
    nonExplicit: nonExplicitList(toReview.filter((row) => row.non_explicit)),
    expiring: { withinDays: expiringWithinDays, ...list(expiring.map(toAuditedConsent)) },
    disagreements: {
      total: disagreements.length,
      persons: new Set(disagreements.map((row) => row.person)).size,
      list: disagreements.map((row) => ({
        person: row.person,
        purpose: row.purpose,
        channel: row.channel_key === '' ? null : row.channel_key,
        granting: row.granting,
        refusing: row.refusing,
      })),
    },
  };
}

function eventCounts(rows: LedgerCountRow[]): ConsentAuditReport['events'] {
  const by = <K extends 'purpose' | 'channel' | 'status' | 'method'>(key: K) => {
    const counts = new Map<LedgerCountRow[K], number>();
    for (const row of rows) counts.set(row[key], (counts.get(row[key]) ?? 0) + row.events);
    return [...counts].map(([value, events]) => ({ value, events })).sort(byValue);
  };
  const explicit = new Map(rows.map((row) => [row.method, row.is_explicit]));
  return {
    total: rows.reduce((sum, row) => sum + row.events, 0),
    byPurpose: by('purpose'),
    byChannel: by('channel'),
    byStatus: by('status'),
    byMethod: by('method').map((count) => ({ value: count.value, explicit: explicit.get(count.value) ?? null, events: count.events })),
  };
}

/** null (no channel, no method) first, then by code. */
function byValue(a: EventCount, b: EventCount): number {
  if (a.value === b.value) return 0;
  if (a.value === null) return -1;
  if (b.value === null) return 1;
  return a.value < b.value ? -1 : 1;
}

/** One entry per purpose × channel, with a count for every reason (0 when absent). */
function stateCountsByKey(rows: StateCountRow[], livePersons: number): StateCount[] {
  const states = new Map<string, StateCount>();
  for (const row of rows) {
    const key = `${row.purpose}\u0000${row.channel_key}`;
    let state = states.get(key);
    if (!state) {
      const notCounting = Object.fromEntries(CONSENT_REASONS.filter((r) => r !== 'counting').map((r) => [r, 0]));
      state = {
        purpose: row.purpose,
        channel: row.channel_key === '' ? null : row.channel_key,
        contacts: 0,
        counting: 0,
        notCounting: notCounting as StateCount['notCounting'],
        noEvent: livePersons,
      };
      states.set(key, state);
    }
    if (row.reason === null) continue;
    state.contacts += row.contacts;
    state.noEvent -= row.contacts;
    if (row.reason === 'counting') state.counting += row.contacts;
    else state.notCounting[row.reason] += row.contacts;
  }
  return [...states.values()];
}

function toAuditedConsent(row: CurrentConsentRow): AuditedConsent {
  return {
    externalId: row.external_id,
    purpose: row.purpose,
    channel: row.channel_key === '' ? null : row.channel_key,
    capturedAt: row.captured_at.toISOString(),
    expiresAt: row.expires_at?.toISOString() ?? null,
    source: row.source,
    method: row.method,
  };
}

function list<T extends AuditedConsent>(contacts: T[]): ConsentList<T> {
  return { total: contacts.length, people: new Set(contacts.map((contact) => contact.externalId)).size, contacts };
}

function withoutProofList(rows: CurrentConsentRow[]): ConsentAuditReport['withoutProof'] {
  const contacts = rows.map((row) => ({ ...toAuditedConsent(row), beforeGdpr: row.captured_at < GDPR_APPLICABLE_FROM }));
  return { ...list(contacts), beforeGdpr: contacts.filter((contact) => contact.beforeGdpr).length };
}

function nonExplicitList(rows: CurrentConsentRow[]): ConsentAuditReport['nonExplicit'] {
  const byMethod: Record<string, number> = {};
  for (const row of rows) byMethod[row.method!] = (byMethod[row.method!] ?? 0) + 1;
  return { ...list(rows.map(toAuditedConsent)), byMethod };
}

/** Records that a consent audit was produced (GDPR rule 10): who, when, where it went, and its totals only. */
export async function recordConsentAudit(
  db: Kysely<Database>,
  report: ConsentAuditReport,
  actor: string,
  output: 'stdout' | 'file',
): Promise<number> {
  return appendAuditLog(db, {
    at: new Date(report.at),
    actor,
    action: 'audit.consents',
    details: {
      at: report.at,
      output,
      expiringWithinDays: report.expiring.withinDays,
      withoutProof: report.withoutProof.total,
      nonExplicit: report.nonExplicit.total,
      expiring: report.expiring.total,
      persons: report.persons.total,
      personsWhoseRecordsDisagree: report.disagreements.persons,
    },
  });
}
