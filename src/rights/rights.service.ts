import type { Kysely, Transaction } from 'kysely';
import { normalizeEmail, normalizePhone } from '../contacts/identity.ts';
import type { Database } from '../db/database.ts';
import { parseOptionalText } from '../imports/values.ts';
import type { ScoreReason } from '../scores/score.table.ts';
import {
  type ConsentStateRow,
  consentEventsOf,
  consentStateOf,
  exportsOf,
  liveScoresOf,
  oppositionListsOf,
  purchasesOf,
} from './access.repository.ts';
import {
  deleteContactPressure,
  deletePersonalData,
  deletePurchases,
  deleteScores,
  insertTombstones,
  manifestsHolding,
  markContactsErased,
  scrubConsentEvidence,
} from './erasure.repository.ts';
import { channelCodes, countScores, insertObjectionEvent, purposeRules } from './objection.repository.ts';
import { InvalidRightsRequestError } from './rights.errors.ts';
import { recordRightsAudit } from './rights-audit.repository.ts';
import {
  findSubject,
  lockSubject,
  NO_PERSONAL_DATA,
  type PersonalData,
  personalDataOf,
  personalDataOfRecords,
  type Subject,
  savePersonalData,
} from './subject.repository.ts';
import type { TombstoneKeys } from './tombstone-keys.ts';
import { inTransaction } from './transaction.ts';

// Data-subject rights (GDPR art. 15 to 21). A request names one record (by its external id)
// and acts on the person it belongs to: every record linked to it (contacts.person_id).
// Every right writes one audit_log line whose subject is the person (the id of their first
// record) and whose details hold names, ids and counts only: the record named and every
// record acted on.

const iso = (date: Date | string) => new Date(date).toISOString();
const isoOrNull = (date: Date | string | null) => (date === null ? null : iso(date));

// ---------------------------------------------------------------- access and portability

export interface Identity {
  email: string | null;
  phone: string | null;
  firstName: string | null;
  lastName: string | null;
  country: string | null;
}

export interface AccessReport {
  generatedAt: string;
  /** the record the request named */
  subject: { contactId: number; externalId: string; createdAt: string };
  /** the named record's identity fields (every record's are under person.records) */
  identity: Identity;
  /** the person the named record belongs to, with every one of their records */
  person: {
    /** the id of the person's first record */
    personId: number;
    records: Array<{ contactId: number; externalId: string; createdAt: string; identity: Identity }>;
  };
  consents: {
    /**
     * per purpose x channel (null: no channel, or every channel for an objection): the event in
     * force for the person, over all their records (recordId: whose event), and whether it counts now
     */
    status: ConsentStatusNow[];
    /** the whole ledger of every record, with the proof of each event (contactId: the record) */
    events: ConsentProof[];
  };
  /** every record's purchases (contactId: the record) */
  purchases: Array<{
    contactId: number;
    orderId: string;
    sku: string | null;
    productName: string | null;
    category: string | null;
    quantity: number;
    unitPrice: number;
    purchasedAt: string;
  }>;
  scores: Array<{
    modelId: number;
    targetKind: string;
    targetKey: string;
    modelVersion: number;
    algorithm: string;
    features: string[];
    horizonDays: number;
    scoredAt: string;
    score: number;
    rank: number;
    percentile: number;
    reasons: ScoreReason[];
  }>;
  exports: Array<{
    exportId: string;
    exportedAt: string;
    channel: string;
    modelId: number;
    position: number;
    isHoldout: boolean;
    contactValue: string | null;
    score: number;
    rank: number;
    consentEventIds: number[];
  }>;
  /** opposition lists an email or phone of one of the records is on (contactId: the record) */
  oppositionLists: Array<{ contactId: number; listName: string; channel: string; listDate: string; matchedOn: 'email' | 'phone' }>;
}

export interface ConsentStatusNow {
  purpose: string;
  channel: string | null;
  status: string;
  eventId: number;
  /** the record whose event decides for the person */
  recordId: number;
  capturedAt: string;
  expiresAt: string | null;
  validNow: boolean;
}

export interface ConsentProof {
  eventId: number;
  /** the record whose ledger holds the event */
  contactId: number;
  purpose: string;
  channel: string | null;
  status: string;
  capturedAt: string;
  recordedAt: string;
  source: string | null;
  method: string | null;
  methodIsExplicit: boolean | null;
  noticeVersion: string | null;
  evidenceRef: string | null;
  expiresAt: string | null;
}

/**
 * Everything held on the person (art. 15), over every record of theirs, as one JSON-ready
 * document that is also the portability export (art. 20). Read in one snapshot; audited as
 * access or portability.
 */
export async function accessReport(
  db: Kysely<Database>,
  ref: string,
  actor: string,
  now: Date,
  right: 'access' | 'portability' = 'access',
  keys?: TombstoneKeys,
): Promise<AccessReport> {
  const build = async (trx: Transaction<Database>) => {
    const subject = await findSubject(trx, ref, keys);
    const report = await collectReport(trx, subject, now);
    await recordRightsAudit(trx, {
      actor,
      action: right === 'access' ? 'rights.access' : 'rights.portability',
      personId: subject.personId,
      at: now,
      details: { ...actedOn(subject), sections: sectionSizes(report) },
    });
    return report;
  };
  return db.isTransaction ? build(db as Transaction<Database>) : db.transaction().setIsolationLevel('repeatable read').execute(build);
}

/** What audit details say of the person a right acted on: the record named, and every record. */
function actedOn(subject: Subject): { contactId: number; records: number[] } {
  return { contactId: subject.contactId, records: recordIds(subject) };
}

const recordIds = (subject: Subject) => subject.records.map((record) => record.contactId);

function identityOf(data: PersonalData): Identity {
  return { email: data.email, phone: data.phone, firstName: data.first_name, lastName: data.last_name, country: data.country };
}

async function collectReport(trx: Transaction<Database>, subject: Subject, now: Date): Promise<AccessReport> {
  const { contactId, personId } = subject;
  const ids = recordIds(subject);
  const identities = await personalDataOfRecords(trx, ids);
  const states = await consentStateOf(trx, personId, now);
  const events = await consentEventsOf(trx, ids);
  const purchases = await purchasesOf(trx, ids);
  const scores = await liveScoresOf(trx, personId);
  const exports = await exportsOf(trx, ids);
  const oppositionLists = await oppositionListsOf(trx, ids);
  return {
    generatedAt: iso(now),
    subject: { contactId, externalId: subject.externalId, createdAt: iso(subject.createdAt) },
    identity: identityOf(identities.get(contactId) ?? NO_PERSONAL_DATA),
    person: {
      personId,
      records: subject.records.map((record) => ({
        contactId: record.contactId,
        externalId: record.externalId,
        createdAt: iso(record.createdAt),
        identity: identityOf(identities.get(record.contactId) ?? NO_PERSONAL_DATA),
      })),
    },
    consents: {
      status: consentStatusNow(states),
      events: events.map((event) => ({
        ...event,
        capturedAt: iso(event.capturedAt),
        recordedAt: iso(event.recordedAt),
        expiresAt: isoOrNull(event.expiresAt),
      })),
    },
    purchases: purchases.map((purchase) => ({ ...purchase, purchasedAt: iso(purchase.purchasedAt) })),
    scores: scores.map((score) => ({ ...score, scoredAt: iso(score.scoredAt), reasons: score.reasons ?? [] })),
    // bigint[] comes back from pg as strings (engine.ts parses scalar bigint only)
    exports: exports.map((line) => ({ ...line, exportedAt: iso(line.exportedAt), consentEventIds: line.consentEventIds })),
    oppositionLists,
  };
}

function consentStatusNow(states: ConsentStateRow[]): ConsentStatusNow[] {
  return states.map((state) => ({
    purpose: state.purpose,
    channel: state.channel,
    status: state.status,
    eventId: state.eventId,
    recordId: state.recordId,
    capturedAt: iso(state.capturedAt),
    expiresAt: isoOrNull(state.expiresAt),
    validNow: state.validNow,
  }));
}

function sectionSizes(report: AccessReport): Record<string, number> {
  return {
    records: report.person.records.length,
    consentEvents: report.consents.events.length,
    purchases: report.purchases.length,
    scores: report.scores.length,
    exports: report.exports.length,
    oppositionLists: report.oppositionLists.length,
  };
}

// ---------------------------------------------------------------- rectification

export const IDENTITY_FIELDS = ['email', 'phone', 'first_name', 'last_name', 'country'] as const;
export type IdentityField = (typeof IDENTITY_FIELDS)[number];
/** New values; null or an empty string clears the field. */
export type IdentityChanges = Partial<Record<IdentityField, string | null>>;

export interface RectifyOptions {
  /** how to read a phone number written without an international prefix (config CIBLE_DEFAULT_PHONE_COUNTRY) */
  defaultPhoneCountry: string;
  /** to say that an unknown reference was erased (tombstoneKeys(config.tombstones)) */
  tombstoneKeys?: TombstoneKeys;
}

export interface RectificationResult {
  /** the record rectified: the one the request named (the person's other records are left as they are) */
  contactId: number;
  /** the person it belongs to */
  personId: number;
  /** names of the fields whose value changed (unchanged values are not rewritten) */
  changed: IdentityField[];
}

/**
 * Corrects identity fields (art. 16) of the record the request names, normalised like an
 * import, with their hashes recomputed. The person's other records keep theirs: each record
 * holds what one source collected, and a rectification names the one that is wrong.
 */
export async function rectify(
  db: Kysely<Database>,
  ref: string,
  changes: IdentityChanges,
  actor: string,
  now: Date,
  options: RectifyOptions,
): Promise<RectificationResult> {
  const wanted = normalizeChanges(changes, options.defaultPhoneCountry);
  return inTransaction(db, async (trx) => {
    const subject = await lockSubject(trx, ref, options.tombstoneKeys);
    const { contactId, personId } = subject;
    const current = await personalDataOf(trx, contactId);
    const changed = IDENTITY_FIELDS.filter((field) => field in wanted && wanted[field] !== current[field]);
    if (changed.length > 0) await savePersonalData(trx, contactId, { ...current, ...wanted }, now);
    await recordRightsAudit(trx, {
      actor,
      action: 'rights.rectification',
      personId,
      at: now,
      details: { ...actedOn(subject), fields: changed },
    });
    return { contactId, personId, changed };
  });
}

const TEXT_LIMITS: Record<'first_name' | 'last_name' | 'country', number> = { first_name: 200, last_name: 200, country: 56 };

function normalizeChanges(changes: IdentityChanges, defaultPhoneCountry: string): Partial<PersonalData> {
  const entries = Object.entries(changes).filter(([, value]) => value !== undefined);
  if (entries.length === 0) {
    throw new InvalidRightsRequestError('changes', `name no field to rectify (expected some of ${IDENTITY_FIELDS.join(', ')})`);
  }
  const normalized: Partial<PersonalData> = {};
  for (const [field, raw] of entries) {
    if (!(IDENTITY_FIELDS as readonly string[]).includes(field)) {
      throw new InvalidRightsRequestError(field, `is not an identity field (expected one of ${IDENTITY_FIELDS.join(', ')})`);
    }
    normalized[field as IdentityField] = normalizeField(field as IdentityField, raw ?? '', defaultPhoneCountry);
  }
  return normalized;
}

function normalizeField(field: IdentityField, raw: string, defaultPhoneCountry: string): string | null {
  if (raw.trim() === '') return null;
  const result =
    field === 'email'
      ? normalizeEmail(raw)
      : field === 'phone'
        ? normalizePhone(raw, defaultPhoneCountry)
        : parseOptionalText(raw, TEXT_LIMITS[field]);
  if (!result.ok) throw new InvalidRightsRequestError(field, result.error);
  return result.value;
}

// ---------------------------------------------------------------- objection

export interface ObjectionRequest {
  /** a purpose code of the purposes table, e.g. profiling or direct_marketing */
  purpose: string;
  /** a channel code; omitted for a per-channel purpose, the objection stands against every channel */
  channel?: string | null;
}

export interface ObjectionResult {
  /** the record whose ledger holds the objection: the one the request named */
  contactId: number;
  /** the person it stands for: their consent state is decided over all their records */
  personId: number;
  eventId: number;
  purpose: string;
  channel: string | null;
  capturedAt: string;
  /** scores deleted because profiling stopped counting (done by the consent_state trigger) */
  scoresDeleted: number;
}

/**
 * Records an objection (art. 21) in the consent ledger of the named record; the person-level
 * consent state makes it stand for the whole person, at once for lists and scores.
 */
export async function object(
  db: Kysely<Database>,
  ref: string,
  request: ObjectionRequest,
  actor: string,
  now: Date,
  keys?: TombstoneKeys,
): Promise<ObjectionResult> {
  return inTransaction(db, async (trx) => {
    const channel = await validateObjection(trx, request);
    const subject = await lockSubject(trx, ref, keys);
    const { contactId, personId } = subject;
    const scoresBefore = await countScores(trx, personId);
    const eventId = await insertObjectionEvent(trx, contactId, request.purpose, channel, now);
    const scoresDeleted = scoresBefore - (await countScores(trx, personId));
    await recordRightsAudit(trx, {
      actor,
      action: 'rights.objection',
      personId,
      at: now,
      details: { ...actedOn(subject), purpose: request.purpose, channel, eventId, scoresDeleted },
    });
    return { contactId, personId, eventId, purpose: request.purpose, channel, capturedAt: iso(now), scoresDeleted };
  });
}

async function validateObjection(db: Kysely<Database>, request: ObjectionRequest): Promise<string | null> {
  const purposes = await purposeRules(db);
  const rule = purposes.get(request.purpose);
  if (!rule) {
    throw new InvalidRightsRequestError('purpose', `"${request.purpose}" is unknown (expected one of ${[...purposes.keys()].join(', ')})`);
  }
  const channel = request.channel?.trim() || null;
  if (channel === null) return null;
  if (!rule.requiresChannel) throw new InvalidRightsRequestError('channel', `is not used with purpose ${request.purpose}`);
  const channels = await channelCodes(db);
  if (!channels.includes(channel)) {
    throw new InvalidRightsRequestError('channel', `"${channel}" is unknown (expected one of ${channels.join(', ')})`);
  }
  return channel;
}

// ---------------------------------------------------------------- erasure

export type ErasureReason = 'data_subject_request' | 'retention';

/** What an erasure did, with no personal data: given to the person, kept in the tombstone and the audit log. */
export interface ErasureReceipt {
  /** the record the request named (for a retention purge: the person's first record) */
  contactId: number;
  /** the person erased: the id of their first record */
  personId: number;
  /** every record of the person erased (internal ids, in order) */
  records: number[];
  erasedAt: string;
  reason: ErasureReason;
  /** rows deleted over all the records, per table */
  deleted: { contact_personal_data: number; purchases: number; scores: number; contact_pressure: number };
  /** rows kept with their personal fields emptied, per table */
  scrubbed: { consent_events: number };
  /** lists that keep the person's internal id, score, rank and consent event ids, and no identifier: their manifests still verify */
  manifestsKept: number;
  /** ledger events kept without their free-text proof, as proof that processing before the erasure was lawful */
  consentEventsKept: number;
  /**
   * identifiers kept only as keyed hashes (HMAC-SHA-256, secret outside the database) so that a
   * later import cannot bring the person back: the external id of every record alone (one
   * tombstone each), so that nobody who shares a phone or an email with them is refused
   */
  tombstoneHashes: Array<'external_id' | 'email' | 'phone'>;
}

/** Erases the person (art. 17), every record of theirs, in one transaction and returns the receipt. */
export async function erase(db: Kysely<Database>, ref: string, actor: string, now: Date, keys: TombstoneKeys): Promise<ErasureReceipt> {
  return inTransaction(db, async (trx) => eraseSubject(trx, await lockSubject(trx, ref, keys), actor, now, 'data_subject_request', keys));
}

/** The erasure itself, of a person whose records the caller has locked in `trx` (erase() and the retention purge). */
export async function eraseSubject(
  trx: Transaction<Database>,
  subject: Subject,
  actor: string,
  now: Date,
  reason: ErasureReason,
  keys: TombstoneKeys,
): Promise<ErasureReceipt> {
  const { contactId, personId } = subject;
  const records = recordIds(subject);
  // scores and pressure are kept per person; the person id is one of the records' unless the
  // first record was erased on its own before
  const perPerson = records.includes(personId) ? records : [personId, ...records];
  const deleted = {
    contact_personal_data: await deletePersonalData(trx, records),
    purchases: await deletePurchases(trx, records),
    scores: await deleteScores(trx, perPerson),
    contact_pressure: await deleteContactPressure(trx, perPerson),
  };
  const manifestsKept = await manifestsHolding(trx, perPerson);
  const ledger = await scrubConsentEvidence(trx, records, now);
  await markContactsErased(trx, records, now);
  const receipt: ErasureReceipt = {
    contactId,
    personId,
    records,
    erasedAt: iso(now),
    reason,
    deleted,
    scrubbed: { consent_events: ledger.evidenceRemoved },
    manifestsKept,
    consentEventsKept: ledger.kept,
    tombstoneHashes: ['external_id'],
  };
  const externalIds = subject.records.map((record) => record.externalId);
  const tombstoneIds = await insertTombstones(trx, externalIds, keys, now, receipt);
  await recordRightsAudit(trx, {
    actor,
    action: 'rights.erasure',
    personId,
    at: now,
    details: { ...actedOn(subject), tombstoneIds, receipt },
  });
  return receipt;
}
