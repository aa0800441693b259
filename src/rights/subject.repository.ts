import type { Kysely, Transaction } from 'kysely';
import { normalizeExternalId, phoneLineType, sha256Hex } from '../contacts/identity.ts';
import type { Database } from '../db/database.ts';
import { InvalidRightsRequestError, SubjectNotFoundError } from './rights.errors.ts';
import { erasedExternalIds, type TombstoneKeys } from './tombstone-keys.ts';

/** The person a rights request is about, as the company refers to them. */
export interface Subject {
  contactId: number;
  externalId: string;
  createdAt: Date;
}

function normalizedRef(ref: string): string {
  const externalId = normalizeExternalId(ref);
  if (externalId === '') throw new InvalidRightsRequestError('ref', 'is empty: give the contact external id');
  return externalId;
}

/**
 * The live (not erased) contact with this external id, or a SubjectNotFoundError saying why
 * not (that the person was erased needs the tombstone keys: without them, both cases are named).
 */
export async function findSubject(db: Kysely<Database>, ref: string, keys?: TombstoneKeys): Promise<Subject> {
  const externalId = normalizedRef(ref);
  const row = await db
    .selectFrom('contacts')
    .select(['id as contactId', 'external_id as externalId', 'created_at as createdAt'])
    .where('external_id', '=', externalId)
    .where('erased_at', 'is', null)
    .executeTakeFirst();
  return row ? { ...row, externalId } : notFound(db, externalId, keys);
}

/** As findSubject, and locks the contact row until the end of the transaction (no two requests interleave). */
export async function lockSubject(trx: Transaction<Database>, ref: string, keys?: TombstoneKeys): Promise<Subject> {
  const externalId = normalizedRef(ref);
  const row = await trx
    .selectFrom('contacts')
    .select(['id as contactId', 'created_at as createdAt'])
    .where('external_id', '=', externalId)
    .where('erased_at', 'is', null)
    .forUpdate()
    .executeTakeFirst();
  return row ? { ...row, externalId } : notFound(trx, externalId, keys);
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

/** Locks a live contact found by internal id (retention works on ids, not on the company's references). */
export async function lockSubjectById(trx: Transaction<Database>, contactId: number): Promise<Subject | undefined> {
  const row = await trx
    .selectFrom('contacts')
    .select(['id as contactId', 'external_id as externalId', 'created_at as createdAt'])
    .where('id', '=', contactId)
    .where('erased_at', 'is', null)
    .where('external_id', 'is not', null)
    .forUpdate()
    .executeTakeFirst();
  return row ? { ...row, externalId: row.externalId! } : undefined;
}
