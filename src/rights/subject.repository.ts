import type { Kysely, Transaction } from 'kysely';
import { normalizeExternalId, phoneLineType, sha256Hex } from '../contacts/identity.ts';
import type { Database } from '../db/database.ts';
import { InvalidRightsRequestError, SubjectNotFoundError } from './rights.errors.ts';
import { erasedExternalIds, type TombstoneKeys } from './tombstone-keys.ts';

/** One record (contact row) of a person: the company's reference for it and when it was created. */
export interface PersonRecord {
  contactId: number;
  externalId: string;
  createdAt: Date;
}

/**
 * What a rights request is about: the record it names (by external id) and the person that
 * record belongs to, with every live record of that person. A right acts on the person.
 */
export interface Subject extends PersonRecord {
  /** the person: the id of their first record (contacts.person_id) */
  personId: number;
  /** every live record of the person in id order, the named one among them */
  records: PersonRecord[];
}

function normalizedRef(ref: string): string {
  const externalId = normalizeExternalId(ref);
  if (externalId === '') throw new InvalidRightsRequestError('ref', 'is empty: give the contact external id');
  return externalId;
}

type RecordRow = { contactId: number; externalId: string | null; createdAt: Date; personId: number };

function liveRecords(db: Kysely<Database>) {
  return db
    .selectFrom('contacts')
    .select(['id as contactId', 'external_id as externalId', 'created_at as createdAt', 'person_id as personId'])
    .where('erased_at', 'is', null)
    .where('external_id', 'is not', null);
}

function subjectOf(named: RecordRow, rows: RecordRow[]): Subject {
  const records = rows
    .filter((row) => row.personId === named.personId)
    .map((row) => ({ contactId: row.contactId, externalId: row.externalId!, createdAt: row.createdAt }));
  return { contactId: named.contactId, externalId: named.externalId!, createdAt: named.createdAt, personId: named.personId, records };
}

/**
 * The live (not erased) contact with this external id and its person, or a SubjectNotFoundError
 * saying why not (that the person was erased needs the tombstone keys: without them, both cases are named).
 */
export async function findSubject(db: Kysely<Database>, ref: string, keys?: TombstoneKeys): Promise<Subject> {
  const externalId = normalizedRef(ref);
  const named = await liveRecords(db).where('external_id', '=', externalId).executeTakeFirst();
  if (!named) return notFound(db, externalId, keys);
  const rows = await liveRecords(db).where('person_id', '=', named.personId).orderBy('id').execute();
  return subjectOf(named, rows);
}

/**
 * As findSubject, and locks every live record of the person until the end of the transaction,
 * in id order (two requests naming two records of one person wait for each other, never in a
 * circle), so that no two requests about the person interleave.
 */
export async function lockSubject(trx: Transaction<Database>, ref: string, keys?: TombstoneKeys): Promise<Subject> {
  const externalId = normalizedRef(ref);
  const named = await liveRecords(trx).where('external_id', '=', externalId).executeTakeFirst();
  const subject = named && (await lockPersonOf(trx, named.contactId));
  return subject ?? notFound(trx, externalId, keys);
}

/** Locks a live contact found by internal id, and its person's records (retention works on ids, not on the company's references). */
export async function lockSubjectById(trx: Transaction<Database>, contactId: number): Promise<Subject | undefined> {
  return lockPersonOf(trx, contactId);
}

/**
 * Locks the records of the person of record `contactId`, read again under lock: an import that
 * links the record to another person meanwhile makes it lock that person's records instead.
 */
async function lockPersonOf(trx: Transaction<Database>, contactId: number): Promise<Subject | undefined> {
  for (let attempt = 0; attempt < 5; attempt += 1) {
    const seen = await liveRecords(trx).where('id', '=', contactId).executeTakeFirst();
    if (!seen) return undefined;
    const rows = await liveRecords(trx)
      .where((eb) => eb.or([eb('person_id', '=', seen.personId), eb('id', '=', contactId)]))
      .orderBy('id')
      .forUpdate()
      .execute();
    const named = rows.find((row) => row.contactId === contactId);
    if (!named) return undefined;
    if (named.personId === seen.personId) return subjectOf(named, rows);
  }
  throw new Error(`the records of contact #${contactId} kept being linked to other persons while a rights request waited for them`);
}

async function notFound(db: Kysely<Database>, externalId: string, keys: TombstoneKeys | undefined): Promise<never> {
  if (!keys) throw new SubjectNotFoundError('no live contact has this external id (unknown, or erased at their request)');
  const erasedAt = (await erasedExternalIds(db, keys, [externalId])).get(externalId);
  if (erasedAt) {
    const day = erasedAt.toISOString().slice(0, 10);
    throw new SubjectNotFoundError(`this contact was erased on ${day} at their request: nothing is held about them any more`);
  }
  throw new SubjectNotFoundError('no contact has this external id');
}

export interface PersonalData {
  email: string | null;
  phone: string | null;
  first_name: string | null;
  last_name: string | null;
  country: string | null;
}

export const NO_PERSONAL_DATA: PersonalData = { email: null, phone: null, first_name: null, last_name: null, country: null };

export async function personalDataOf(db: Kysely<Database>, contactId: number): Promise<PersonalData> {
  const row = await db
    .selectFrom('contact_personal_data')
    .select(['email', 'phone', 'first_name', 'last_name', 'country'])
    .where('contact_id', '=', contactId)
    .executeTakeFirst();
  return row ?? NO_PERSONAL_DATA;
}

/** The identity fields of each of these records (a record without any is absent from the map). */
export async function personalDataOfRecords(db: Kysely<Database>, contactIds: readonly number[]): Promise<Map<number, PersonalData>> {
  if (contactIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('contact_personal_data')
    .select(['contact_id', 'email', 'phone', 'first_name', 'last_name', 'country'])
    .where('contact_id', 'in', contactIds)
    .execute();
  return new Map(rows.map(({ contact_id, ...data }) => [contact_id, data]));
}

/** Writes the identity fields with their hashes (the keys opposition lists and tombstones match on). */
export async function savePersonalData(trx: Transaction<Database>, contactId: number, data: PersonalData, now: Date): Promise<void> {
  const row = {
    ...data,
    email_hash: data.email === null ? null : sha256Hex(data.email),
    phone_hash: data.phone === null ? null : sha256Hex(data.phone),
    phone_line_type: data.phone === null ? null : phoneLineType(data.phone),
  };
  await trx
    .insertInto('contact_personal_data')
    .values({ contact_id: contactId, ...row })
    .onConflict((oc) => oc.column('contact_id').doUpdateSet(row))
    .execute();
  await trx.updateTable('contacts').set({ updated_at: now }).where('id', '=', contactId).execute();
}
