import { type Kysely, type RawBuilder, sql } from 'kysely';
import { objectionStandsAgainst } from '../consent/eligibility.ts';
import type { Database } from '../db/database.ts';

/** Why a current consent (the latest event of a contact × purpose × channel) does or does not count now. */
export const CONSENT_REASONS = ['counting', 'withdrawn', 'refused', 'objected', 'noProofOfMeans', 'invalidMethod', 'expired'] as const;
export type ConsentReason = (typeof CONSENT_REASONS)[number];

/**
 * The current consents of persons not erased (consent_state is per person: contact_id is the
 * person, record_id the record whose ledger event decides), each with the one reason it counts or not.
 * The first matching reason wins, in the order: the event's own status; a later
 * all-channel objection standing against the grant (objectionStandsAgainst, the gate's own rule);
 * no proof of means (no source, or no method recorded); a non-explicit method; expiry.
 * Validity is the state's `counts` (consent_event_counts() at insert, what the gate reads), so
 * `counting` is exactly what the gate lets through less the grants objected to since.
 * Read from consent_state, so `now` must be the present.
 */
function currentConsents(now: Date): RawBuilder<unknown> {
  // The ledger is read only for the grants that do not count (about one in ten), to say why.
  return sql`(
    SELECT s.contact_id, s.record_id, s.event_id, s.purpose, s.channel_key, s.status, s.captured_at, s.expires_at,
           CASE
             WHEN s.status IN ('withdrawn', 'refused', 'objected') THEN s.status
             WHEN o.contact_id IS NOT NULL THEN 'objected'
             WHEN NOT s.counts THEN (
               SELECT CASE WHEN nullif(btrim(e.source), '') IS NULL OR e.method IS NULL THEN 'noProofOfMeans' ELSE 'invalidMethod' END
               FROM consent_events e WHERE e.id = s.event_id)
             WHEN s.expires_at <= ${now} THEN 'expired'
             ELSE 'counting'
           END AS reason
    FROM consent_state s
    LEFT JOIN consent_state o
      ON s.channel_key <> ''
     AND ${objectionStandsAgainst('o', { contactId: sql`s.contact_id`, purpose: sql`s.purpose`, capturedAt: sql`s.captured_at` })}
    WHERE NOT EXISTS (SELECT 1 FROM contacts c WHERE c.id = s.contact_id AND c.erased_at IS NOT NULL)
    -- a fence: without it the planner copies the CASE into every use of reason and, unable to
    -- estimate its values, sorts 2.5M rows to group them instead of hashing a few dozen groups
    OFFSET 0
  )`;
}

export interface LedgerCountRow {
  purpose: string;
  channel: string | null;
  status: string;
  method: string | null;
  is_explicit: boolean | null;
  events: number;
}

/** Ledger events counted per purpose × channel × status × method: a few dozen rows, one pass. */
export async function ledgerCounts(db: Kysely<Database>): Promise<LedgerCountRow[]> {
  const { rows } = await sql<LedgerCountRow>`
    SELECT t.purpose, t.channel, t.status, t.method, m.is_explicit, t.events
    FROM (
      SELECT purpose, channel, status, method, count(*)::int AS events
      FROM consent_events GROUP BY purpose, channel, status, method
    ) t LEFT JOIN consent_methods m ON m.code = t.method
    ORDER BY t.purpose, t.channel NULLS FIRST, t.status, t.method NULLS FIRST`.execute(db);
  return rows;
}

export interface StateCountRow {
  purpose: string;
  channel_key: string;
  reason: ConsentReason | null;
  contacts: number;
}

/**
 * Current consents per purpose × channel × reason, for every purpose × channel the
 * reference tables allow (reason null and 0 contacts when nobody has an event for it),
 * plus any other key found in the state (an all-channel objection is kept under channel '').
 */
export async function stateCounts(db: Kysely<Database>, now: Date): Promise<StateCountRow[]> {
  const { rows } = await sql<StateCountRow>`
    WITH counted AS (
      SELECT purpose, channel_key, reason, count(*)::int AS contacts
      FROM ${currentConsents(now)} current
      GROUP BY purpose, channel_key, reason
    ),
    allowed AS (
      SELECT p.code AS purpose, coalesce(ch.code, '') AS channel_key
      FROM purposes p LEFT JOIN channels ch ON p.requires_channel
    )
    SELECT purpose, channel_key, reason, coalesce(contacts, 0) AS contacts
    FROM counted FULL JOIN allowed USING (purpose, channel_key)
    ORDER BY purpose, channel_key, reason`.execute(db);
  return rows;
}

export interface ContactCountRow {
  total: number;
  erased: number;
}

export async function contactCounts(db: Kysely<Database>): Promise<ContactCountRow> {
  const { rows } = await sql<ContactCountRow>`
    SELECT count(*)::int AS total, count(*) FILTER (WHERE erased_at IS NOT NULL)::int AS erased FROM contacts`.execute(db);
  return rows[0]!;
}

export interface PersonCountRow {
  /** persons with a live record */
  total: number;
  /** persons with two records or more */
  withSeveralRecords: number;
  /** the live records of those persons */
  recordsOfThem: number;
}

/** Persons (the live records grouped by person_id), and how many have several records. */
export async function personCounts(db: Kysely<Database>): Promise<PersonCountRow> {
  const { rows } = await sql<PersonCountRow>`
    SELECT count(*)::int AS "total",
           count(*) FILTER (WHERE records > 1)::int AS "withSeveralRecords",
           coalesce(sum(records) FILTER (WHERE records > 1), 0)::int AS "recordsOfThem"
    FROM (SELECT person_id, count(*) AS records FROM contacts WHERE erased_at IS NULL GROUP BY person_id) p`.execute(db);
  return rows[0]!;
}

export interface DisagreementRow {
  /** the external id of the person's first record */
  person: string;
  purpose: string;
  channel_key: string;
  /** records whose latest event for this purpose × channel counts now */
  granting: string[];
  /** other records whose latest event is a withdrawal, refusal or objection (an all-channel objection counts for every channel) */
  refusing: string[];
}

/**
 * Persons whose records disagree for a purpose × channel: one record's latest ledger event
 * counts now, another record's latest is a withdrawal, a refusal or an objection. The person's
 * state already follows the rule (a later "no" wins); these are shown so the DPO can look at
 * them. Read from the ledger, which stays per record, for records of persons with several only.
 * Ordered by person, purpose, channel.
 */
export async function recordDisagreements(db: Kysely<Database>, now: Date): Promise<DisagreementRow[]> {
  // a person is named by their first record: one with several records has a record named by another.
  // Asked first so that the planner knows how few they are (it cannot estimate person_id <> id)
  const { rows: several } = await sql<{ persons: number[] | null }>`
    SELECT array_agg(DISTINCT person_id) AS persons FROM contacts WHERE person_id <> id AND erased_at IS NULL`.execute(db);
  const persons = several[0]?.persons ?? [];
  if (persons.length === 0) return [];
  const { rows } = await sql<DisagreementRow>`
    WITH records AS (
      SELECT c.id, c.person_id, c.external_id FROM contacts c
      WHERE c.person_id = ANY(${persons}::bigint[]) AND c.erased_at IS NULL
    ), latest AS (
      -- each record's events read through its index: the cost follows the records of such persons, not the ledger's size
      SELECT r.person_id, r.external_id, r.id AS contact_id, e.purpose, e.channel_key, e.status,
             consent_is_valid(e.status, e.source, m.is_explicit) AND (e.expires_at IS NULL OR e.expires_at > ${now}) AS counts
      FROM records r
      CROSS JOIN LATERAL (
        SELECT DISTINCT ON (ev.purpose, coalesce(ev.channel, ''))
               ev.purpose, coalesce(ev.channel, '') AS channel_key, ev.status, ev.source, ev.method, ev.expires_at
        FROM consent_events ev WHERE ev.contact_id = r.id
        ORDER BY ev.purpose, coalesce(ev.channel, ''), ev.captured_at DESC, ev.id DESC
      ) e
      LEFT JOIN consent_methods m ON m.code = e.method
    )
    SELECT p.external_id AS person, g.purpose, g.channel_key,
           array_agg(DISTINCT g.external_id ORDER BY g.external_id) AS granting,
           array_agg(DISTINCT n.external_id ORDER BY n.external_id) AS refusing
    FROM latest g
    JOIN latest n
      ON n.person_id = g.person_id AND n.contact_id <> g.contact_id AND n.purpose = g.purpose
     AND n.status IN ('withdrawn', 'refused', 'objected')
     AND (n.channel_key = g.channel_key OR (n.channel_key = '' AND n.status = 'objected'))
    JOIN contacts p ON p.id = g.person_id
    WHERE g.counts
    GROUP BY p.external_id, g.purpose, g.channel_key
    ORDER BY p.external_id, g.purpose, g.channel_key`.execute(db);
  return rows;
}

export interface CurrentConsentRow {
  external_id: string;
  purpose: string;
  channel_key: string;
  captured_at: Date;
  expires_at: Date | null;
  source: string | null;
  method: string | null;
  reason: ConsentReason;
  non_explicit: boolean;
}

/**
 * In one pass, the current consents the DPO must see by name: grants that do not count for
 * want of proof or of an explicit method, and counting consents that expire by `until`.
 * Ordered by external_id, purpose, channel.
 */
export async function consentsToReview(db: Kysely<Database>, now: Date, until: Date): Promise<CurrentConsentRow[]> {
  const { rows } = await sql<CurrentConsentRow>`
    SELECT c.external_id, cur.purpose, cur.channel_key, cur.captured_at, cur.expires_at, e.source, e.method, cur.reason,
           coalesce(m.is_explicit = false, false) AS non_explicit
    FROM ${currentConsents(now)} cur
    JOIN contacts c ON c.id = cur.record_id
    JOIN consent_events e ON e.id = cur.event_id
    LEFT JOIN consent_methods m ON m.code = e.method
    WHERE cur.reason IN ('noProofOfMeans', 'invalidMethod') OR (cur.reason = 'counting' AND cur.expires_at <= ${until})
    ORDER BY c.external_id, cur.purpose, cur.channel_key`.execute(db);
  return rows;
}
