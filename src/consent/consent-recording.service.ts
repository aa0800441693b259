import { type Kysely, sql, type Transaction } from 'kysely';
import { appendAuditLog } from '../audit/audit-log.repository.ts';
import { normalizeExternalId } from '../contacts/identity.ts';
import type { Database } from '../db/database.ts';
import { type Parsed, parseOptionalText, parseText, parseTimestamp } from '../imports/values.ts';
import { erasedExternalIds, type TombstoneKeys } from '../rights/tombstone-keys.ts';
import { inTransaction } from '../rights/transaction.ts';

// Consent events given as objects (the API), recorded all or nothing in one transaction.
// The rules are those of the CSV import (consent.import.ts), field by field; unlike the
// import, every problem of every event is reported, and messages never repeat an external id.

/** The largest batch one request may record. */
export const MAX_CONSENT_EVENTS = 10_000;

/** Statuses a consent event may be given with; 'objected' is written only by the objection right. */
export const RECORDABLE_STATUSES = ['granted', 'withdrawn', 'refused'] as const;
export type RecordableStatus = (typeof RECORDABLE_STATUSES)[number];

/** Longest accepted value per text field, as in the CSV import. */
export const CONSENT_FIELD_LIMITS = {
  externalId: 200,
  purpose: 100,
  channel: 100,
  status: 20,
  source: 200,
  method: 100,
  noticeVersion: 100,
  evidenceRef: 500,
} as const;

export interface ConsentEventInput {
  /** the company's reference of the contact, who must already be imported */
  externalId: string;
  /** a purpose code of the purposes table */
  purpose: string;
  /** a channel code: required iff the purpose is given per channel */
  channel?: string | null;
  status: string;
  /** a Date, or ISO 8601 text (taken as UTC without an offset, as in the import) */
  capturedAt: string | Date;
  /** how and where it was collected: without a source and an explicit method the event is kept but never counts */
  source?: string | null;
  method?: string | null;
  noticeVersion?: string | null;
  evidenceRef?: string | null;
  expiresAt?: string | Date | null;
}

export type ConsentEventField = keyof ConsentEventInput;

export interface ConsentEventProblem {
  /** position of the event in the request; null for a problem with the request as a whole */
  index: number | null;
  /** the field at fault, or 'consents' for the request as a whole */
  field: ConsentEventField | 'consents';
  problem: string;
}

/** Nothing was recorded: every problem found is listed. */
export class InvalidConsentEventsError extends Error {
  constructor(readonly problems: ConsentEventProblem[]) {
    super(`${problems.length} problem(s) in the consent events; nothing was recorded`);
  }
}

export interface RecordConsentsOptions {
  /** who asks, for the audit log, e.g. apikey:3:crm-sync */
  actor: string;
  now: Date;
  requestId?: string;
  /** to say that a reference names an erased person (tombstoneKeys(config.tombstones)) */
  tombstoneKeys?: TombstoneKeys;
}

export interface ConsentRecordingResult {
  /** events written to the ledger */
  recorded: number;
  /** events identical to one already in the ledger (same contact, purpose, channel, instant, status, source, method): not written again */
  alreadyRecorded: number;
  /** the ledger event id of each event given, in the order given (the existing event for one already recorded) */
  eventIds: number[];
}

interface ValidEvent {
  externalId: string;
  purpose: string;
  channel: string | null;
  status: RecordableStatus;
  capturedAt: Date;
  source: string | null;
  method: string | null;
  noticeVersion: string | null;
  evidenceRef: string | null;
  expiresAt: Date | null;
}

interface ReferenceData {
  /** purpose code -> given per channel */
  purposes: Map<string, boolean>;
  channels: Set<string>;
  methods: Set<string>;
}

/**
 * Records consent events in the ledger, all or none, in one transaction (the caller's when
 * given one). The consent_state trigger applies them in the same transaction. Writes one
 * audit_log line with counts only. Throws InvalidConsentEventsError when any event is refused.
 */
export async function recordConsents(
  db: Kysely<Database>,
  events: readonly ConsentEventInput[],
  options: RecordConsentsOptions,
): Promise<ConsentRecordingResult> {
  if (events.length === 0) throw new InvalidConsentEventsError([{ index: null, field: 'consents', problem: 'holds no event' }]);
  if (events.length > MAX_CONSENT_EVENTS) {
    throw new InvalidConsentEventsError([
      { index: null, field: 'consents', problem: `holds ${events.length} events: at most ${MAX_CONSENT_EVENTS} per request` },
    ]);
  }
  return inTransaction(db, async (trx) => {
    const reference = await readReferenceData(trx);
    const problems: ConsentEventProblem[] = [];
    const valid: Array<ValidEvent | undefined> = events.map((event, index) => {
      const checked = checkEvent(event, reference, options.now);
      for (const { field, problem } of checked.problems) problems.push({ index, field, problem });
      return checked.event;
    });
    problems.push(...duplicateProblems(valid));
    const contactIds = await resolveContacts(trx, valid, problems, options.tombstoneKeys);
    if (problems.length > 0) throw new InvalidConsentEventsError(sortProblems(problems));

    const rows = valid.map((event, index) => ({ ...event!, contactId: contactIds[index]! }));
    const written = await insertEvents(trx, rows, options.now);
    const recorded = written.filter((row) => row.created).length;
    const result = { recorded, alreadyRecorded: rows.length - recorded, eventIds: written.map((row) => row.id) };
    await appendAuditLog(trx, {
      at: options.now,
      actor: options.actor,
      action: 'consents.recorded',
      requestId: options.requestId,
      details: { events: rows.length, recorded, alreadyRecorded: result.alreadyRecorded, ...countsOf(rows) },
    });
    return result;
  });
}

// ---------------------------------------------------------------- one event

async function readReferenceData(db: Kysely<Database>): Promise<ReferenceData> {
  // purposes, channels and methods are data: read them, never hard-code them
  const purposes = await db.selectFrom('purposes').select(['code', 'requires_channel']).orderBy('code').execute();
  const channels = await db.selectFrom('channels').select('code').orderBy('code').execute();
  const methods = await db.selectFrom('consent_methods').select('code').orderBy('code').execute();
  return {
    purposes: new Map(purposes.map((row) => [row.code, row.requires_channel])),
    channels: new Set(channels.map((row) => row.code)),
    methods: new Set(methods.map((row) => row.code)),
  };
}

type FieldProblem = { field: ConsentEventField; problem: string };

/** Every problem of one event (the import stops at the first; an API caller wants them all). */
function checkEvent(input: ConsentEventInput, reference: ReferenceData, now: Date): { problems: FieldProblem[]; event?: ValidEvent } {
  const problems: FieldProblem[] = [];
  const read = <T>(field: ConsentEventField, parse: (raw: string) => Parsed<T>): T | undefined => {
    const raw = input[field];
    if (raw !== undefined && raw !== null && typeof raw !== 'string') {
      problems.push({ field, problem: 'must be text' });
      return undefined;
    }
    const parsed = parse(raw ?? '');
    if (parsed.ok) return parsed.value;
    problems.push({ field, problem: parsed.error });
    return undefined;
  };
  const fail = (field: ConsentEventField, problem: string) => problems.push({ field, problem });
  const known = (codes: Iterable<string>) => [...codes].join(', ');

  const externalId = read('externalId', (raw) => parseText(normalizeExternalId(raw), CONSENT_FIELD_LIMITS.externalId));

  const purpose = read('purpose', (raw) => parseText(raw, CONSENT_FIELD_LIMITS.purpose));
  const requiresChannel = purpose === undefined ? undefined : reference.purposes.get(purpose);
  if (purpose !== undefined && requiresChannel === undefined)
    fail('purpose', `unknown purpose "${purpose}" (known: ${known(reference.purposes.keys())})`);

  const channel = read('channel', (raw) => parseOptionalText(raw, CONSENT_FIELD_LIMITS.channel));
  if (channel !== undefined) {
    if (requiresChannel === true && channel === null) {
      fail('channel', `a ${purpose} consent needs a channel (one of ${known(reference.channels)})`);
    } else if (requiresChannel === false && channel !== null) {
      fail('channel', `a ${purpose} consent takes no channel, found "${channel}"`);
    } else if (channel !== null && !reference.channels.has(channel)) {
      fail('channel', `unknown channel "${channel}" (known: ${known(reference.channels)})`);
    }
  }

  const status = read('status', (raw) => parseText(raw, CONSENT_FIELD_LIMITS.status));
  if (status !== undefined && !(RECORDABLE_STATUSES as readonly string[]).includes(status)) {
    fail('status', `unknown status "${status}" (expected ${RECORDABLE_STATUSES.join(', ')})`);
  }

  const capturedAt = readInstant(input.capturedAt, 'capturedAt', problems, false);
  if (capturedAt && capturedAt > now) fail('capturedAt', `${capturedAt.toISOString()} is in the future`);

  // an empty source or method is kept for the audit: such a record never counts as consent
  const source = read('source', (raw) => parseOptionalText(raw, CONSENT_FIELD_LIMITS.source));
  const method = read('method', (raw) => parseOptionalText(raw, CONSENT_FIELD_LIMITS.method));
  if (method && !reference.methods.has(method)) fail('method', `unknown method "${method}" (known: ${known(reference.methods)})`);
  const noticeVersion = read('noticeVersion', (raw) => parseOptionalText(raw, CONSENT_FIELD_LIMITS.noticeVersion));
  const evidenceRef = read('evidenceRef', (raw) => parseOptionalText(raw, CONSENT_FIELD_LIMITS.evidenceRef));
  const expiresAt = readInstant(input.expiresAt, 'expiresAt', problems, true);
  if (expiresAt && capturedAt && expiresAt <= capturedAt) fail('expiresAt', `${expiresAt.toISOString()} is not after capturedAt`);

  if (problems.length > 0) return { problems };
  return {
    problems,
    event: {
      externalId: externalId!,
      purpose: purpose!,
      channel: channel!,
      status: status as RecordableStatus,
      capturedAt: capturedAt!,
      source: source!,
      method: method!,
      noticeVersion: noticeVersion!,
      evidenceRef: evidenceRef!,
      expiresAt: expiresAt ?? null,
    },
  };
}

function readInstant(
  raw: unknown,
  field: 'capturedAt' | 'expiresAt',
  problems: FieldProblem[],
  optional: boolean,
): Date | null | undefined {
  if (raw instanceof Date) {
    if (!Number.isNaN(raw.getTime())) return raw;
    problems.push({ field, problem: 'is not a valid date' });
    return undefined;
  }
  if (raw === undefined || raw === null || (typeof raw === 'string' && raw.trim() === '' && optional)) {
    if (optional) return null;
    problems.push({ field, problem: 'is empty' });
    return undefined;
  }
  if (typeof raw !== 'string') {
    problems.push({ field, problem: 'must be an ISO 8601 date-time' });
    return undefined;
  }
  const parsed = parseTimestamp(raw);
  if (parsed.ok) return parsed.value;
  problems.push({ field, problem: parsed.error });
  return undefined;
}

// ---------------------------------------------------------------- the batch as a set

const eventKey = (event: ValidEvent) =>
  `${event.externalId}\u0000${event.purpose}\u0000${event.channel ?? ''}\u0000${event.capturedAt.getTime()}`;

/** Two events of one request for the same consent at the same instant: which one holds is undecidable. */
function duplicateProblems(events: ReadonlyArray<ValidEvent | undefined>): ConsentEventProblem[] {
  const first = new Map<string, number>();
  const problems: ConsentEventProblem[] = [];
  events.forEach((event, index) => {
    if (!event) return;
    const key = eventKey(event);
    const earlier = first.get(key);
    if (earlier === undefined) first.set(key, index);
    else
      problems.push({
        index,
        field: 'capturedAt',
        problem: `the same consent (contact, purpose, channel) at the same instant as event ${earlier} of this request`,
      });
  });
  return problems;
}

/**
 * The live contact id of each valid event. The contacts are locked FOR SHARE until commit,
 * so an erasure running at the same time waits for this request (and is not overtaken by it).
 */
async function resolveContacts(
  trx: Transaction<Database>,
  events: ReadonlyArray<ValidEvent | undefined>,
  problems: ConsentEventProblem[],
  keys: TombstoneKeys | undefined,
): Promise<Array<number | undefined>> {
  const externalIds = [...new Set(events.flatMap((event) => (event ? [event.externalId] : [])))];
  if (externalIds.length === 0) return events.map(() => undefined);
  const rows = await trx
    .selectFrom('contacts')
    .select(['id', 'external_id'])
    .where(sql<boolean>`external_id = any(${externalIds}::text[])`)
    .where('erased_at', 'is', null)
    .orderBy('id')
    .forShare()
    .execute();
  const idOf = new Map(rows.map((row) => [row.external_id!, row.id]));
  const missing = externalIds.filter((externalId) => !idOf.has(externalId));
  const erased = keys && missing.length > 0 ? new Set((await erasedExternalIds(trx, keys, missing)).keys()) : new Set<string>();
  // the reference itself is never repeated: messages can reach logs
  return events.map((event, index) => {
    if (!event) return undefined;
    const id = idOf.get(event.externalId);
    if (id === undefined) {
      problems.push({
        index,
        field: 'externalId',
        problem: erased.has(event.externalId)
          ? 'names a contact erased at their request: nothing is recorded about them any more'
          : keys
            ? 'no contact has this external id (import the contact first)'
            : 'no live contact has this external id (import the contact first; or it was erased at their request)',
      });
    }
    return id;
  });
}

function sortProblems(problems: ConsentEventProblem[]): ConsentEventProblem[] {
  return problems
    .map((problem, order) => ({ problem, order }))
    .sort((a, b) => (a.problem.index ?? -1) - (b.problem.index ?? -1) || a.order - b.order)
    .map(({ problem }) => problem);
}

// ---------------------------------------------------------------- writing

type EventRow = ValidEvent & { contactId: number };

/**
 * One statement, so the consent_state trigger runs once for the batch. An event identical
 * to one in the ledger (its natural key: contact, purpose, channel, status, instant, source,
 * method, evidence reference) is not written again: the unique index consent_events_natural_key
 * decides, so a retried request, even one running at the same time as the first, records the
 * event once. Then every event's id is read back, the existing one for those not written.
 */
async function insertEvents(trx: Transaction<Database>, rows: EventRow[], now: Date): Promise<Array<{ id: number; created: boolean }>> {
  const column = <T>(pick: (row: EventRow) => T) => rows.map(pick);
  const instant = (date: Date | null) => (date === null ? null : date.toISOString());
  const incoming = sql`
    SELECT * FROM unnest(
      ${column((r) => r.contactId)}::bigint[], ${column((r) => r.purpose)}::text[], ${column((r) => r.channel)}::text[],
      ${column((r) => r.status)}::text[], ${column((r) => instant(r.capturedAt))}::timestamptz[], ${column((r) => r.source)}::text[],
      ${column((r) => r.method)}::text[], ${column((r) => r.noticeVersion)}::text[], ${column((r) => r.evidenceRef)}::text[],
      ${column((r) => instant(r.expiresAt))}::timestamptz[]
    ) WITH ORDINALITY AS i (contact_id, purpose, channel, status, captured_at, source, method, notice_version, evidence_ref, expires_at, ord)`;
  const { rows: written } = await sql<{ ord: number; id: number | null; created: boolean }>`
    WITH matched AS (
      SELECT i.*, (
        SELECT e.id FROM consent_events e
        WHERE e.contact_id = i.contact_id AND e.purpose = i.purpose AND e.channel IS NOT DISTINCT FROM i.channel
          AND e.captured_at = i.captured_at AND e.status = i.status
          AND e.method IS NOT DISTINCT FROM i.method AND e.source IS NOT DISTINCT FROM i.source
          AND e.evidence_ref IS NOT DISTINCT FROM i.evidence_ref AND e.duplicate_of IS NULL AND e.proof_scrubbed_at IS NULL
        ORDER BY e.id LIMIT 1
      ) AS existing_id
      FROM (${incoming}) i
    ),
    inserted AS (
      INSERT INTO consent_events
        (contact_id, purpose, channel, status, captured_at, recorded_at, source, method, notice_version, evidence_ref, expires_at)
      SELECT contact_id, purpose, channel, status, captured_at, ${now.toISOString()}::timestamptz, source, method,
             notice_version, evidence_ref, expires_at
      FROM matched WHERE existing_id IS NULL ORDER BY ord
      ${NATURAL_KEY_CONFLICT}
      RETURNING id, contact_id, purpose, channel, captured_at
    )
    SELECT m.ord, coalesce(m.existing_id, n.id) AS id, n.id IS NOT NULL AS created
    FROM matched m
    LEFT JOIN inserted n ON m.existing_id IS NULL AND n.contact_id = m.contact_id AND n.purpose = m.purpose
      AND n.channel IS NOT DISTINCT FROM m.channel AND n.captured_at = m.captured_at
    ORDER BY m.ord`.execute(trx);
  // an event a concurrent writer committed after this statement began: skipped by the key, its id read now
  const lost = written.filter((row) => row.id === null).map((row) => Number(row.ord));
  if (lost.length > 0) {
    const { rows: found } = await sql<{ ord: number; id: number }>`
      SELECT i.ord, (
        SELECT e.id FROM consent_events e
        WHERE e.contact_id = i.contact_id AND e.purpose = i.purpose AND e.channel IS NOT DISTINCT FROM i.channel
          AND e.captured_at = i.captured_at AND e.status = i.status
          AND e.method IS NOT DISTINCT FROM i.method AND e.source IS NOT DISTINCT FROM i.source
          AND e.evidence_ref IS NOT DISTINCT FROM i.evidence_ref AND e.duplicate_of IS NULL AND e.proof_scrubbed_at IS NULL
        ORDER BY e.id LIMIT 1
      ) AS id
      FROM (${incoming}) i WHERE i.ord = ANY(${lost}::bigint[])`.execute(trx);
    const byOrd = new Map(found.map((row) => [Number(row.ord), Number(row.id)]));
    for (const row of written) if (row.id === null) row.id = byOrd.get(Number(row.ord)) ?? null;
  }
  return written.map((row) => ({ id: Number(row.id), created: row.created }));
}

/** The ledger's natural key (migration 20261203_1300): an event already recorded is skipped, even by a concurrent writer. */
export const NATURAL_KEY_CONFLICT = sql`
  ON CONFLICT (contact_id, purpose, coalesce(channel, ''), status, captured_at, coalesce(source, ''), coalesce(method, ''), coalesce(evidence_ref, ''))
  WHERE duplicate_of IS NULL AND proof_scrubbed_at IS NULL DO NOTHING`;

/** What the audit line says about the batch: counts per purpose/channel and per status, nothing about anyone. */
function countsOf(rows: EventRow[]): { byPurpose: Record<string, number>; byStatus: Record<string, number> } {
  const byPurpose: Record<string, number> = {};
  const byStatus: Record<string, number> = {};
  for (const row of rows) {
    const key = row.channel === null ? row.purpose : `${row.purpose}/${row.channel}`;
    byPurpose[key] = (byPurpose[key] ?? 0) + 1;
    byStatus[row.status] = (byStatus[row.status] ?? 0) + 1;
  }
  return { byPurpose, byStatus };
}
