import type { Transaction } from 'kysely';
import { sha256Hex } from '../contacts/identity.ts';
import type { Database } from '../db/database.ts';

// The steps of an erasure. Each takes the transaction: erase() runs them all or none.

type Trx = Transaction<Database>;

function deletedCount(result: { numDeletedRows: bigint }): number {
  return Number(result.numDeletedRows);
}

export async function deletePersonalData(trx: Trx, contactId: number): Promise<number> {
  return deletedCount(await trx.deleteFrom('contact_personal_data').where('contact_id', '=', contactId).executeTakeFirstOrThrow());
}

export async function deletePurchases(trx: Trx, contactId: number): Promise<number> {
  return deletedCount(await trx.deleteFrom('purchases').where('contact_id', '=', contactId).executeTakeFirstOrThrow());
}

/** Scores and the per-person reasons stored with them, in every score set (live or not). */
export async function deleteScores(trx: Trx, contactId: number): Promise<number> {
  return deletedCount(await trx.deleteFrom('scores').where('contact_id', '=', contactId).executeTakeFirstOrThrow());
}

/** Export lines lose who they were (id, email/phone); score, rank and member_hash stay so the manifest still verifies. */
export async function scrubExportMembers(trx: Trx, contactId: number): Promise<number> {
  const result = await trx
    .updateTable('target_export_members')
    .set({ external_id: null, contact_value: null })
    .where('contact_id', '=', contactId)
    .executeTakeFirstOrThrow();
  return Number(result.numUpdatedRows);
}

/**
 * The ledger keeps what was decided and when (purpose, channel, status, dates, source,
 * method, notice version): the proof that past processing was lawful. The evidence
 * reference points at a recording, a signed form or a log line about the person: removed.
 */
export async function scrubConsentEvidence(trx: Trx, contactId: number): Promise<{ kept: number; evidenceRemoved: number }> {
  const result = await trx
    .updateTable('consent_events')
    .set({ evidence_ref: null })
    .where('contact_id', '=', contactId)
    .where('evidence_ref', 'is not', null)
    .executeTakeFirstOrThrow();
  const { kept } = await trx
    .selectFrom('consent_events')
    .select((eb) => eb.fn.countAll<number>().as('kept'))
    .where('contact_id', '=', contactId)
    .executeTakeFirstOrThrow();
  return { kept: Number(kept), evidenceRemoved: Number(result.numUpdatedRows) };
}

export async function markContactErased(trx: Trx, contactId: number, now: Date): Promise<void> {
  await trx
    .updateTable('contacts')
    .set({ external_id: null, erased_at: now, updated_at: now })
    .where('id', '=', contactId)
    .executeTakeFirstOrThrow();
}

export interface ErasedIdentifiers {
  externalId: string;
  email: string | null;
  phone: string | null;
}

/** Hashes of the normalised identifiers, which the contacts importer refuses; the receipt goes with them. */
export async function insertTombstone(
  trx: Trx,
  identifiers: ErasedIdentifiers,
  erasedAt: Date,
  receipt: unknown,
): Promise<number> {
  const { id } = await trx
    .insertInto('erasure_tombstones')
    .values({
      external_id_hash: sha256Hex(identifiers.externalId),
      email_hash: identifiers.email === null ? null : sha256Hex(identifiers.email),
      phone_hash: identifiers.phone === null ? null : sha256Hex(identifiers.phone),
      erased_at: erasedAt,
      receipt: JSON.stringify(receipt),
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return id;
}
