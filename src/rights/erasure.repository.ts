import { sql, type Transaction } from 'kysely';
import type { Database } from '../db/database.ts';
import { type TombstoneKeys, tombstoneHash } from './tombstone-keys.ts';

// The steps of an erasure. Each takes the transaction: erase() runs them all or none. Each
// acts on every record of the person at once (`contactIds`: the record ids, the person's
// own id, the first record's, among them).

type Trx = Transaction<Database>;
type Ids = readonly number[];

const idArray = (contactIds: Ids) => sql`ARRAY[${sql.join(contactIds.map((id) => sql`${id}::bigint`))}]`;

function deletedCount(result: { numDeletedRows: bigint }): number {
  return Number(result.numDeletedRows);
}

export async function deletePersonalData(trx: Trx, contactIds: Ids): Promise<number> {
  return deletedCount(await trx.deleteFrom('contact_personal_data').where('contact_id', 'in', contactIds).executeTakeFirstOrThrow());
}

export async function deletePurchases(trx: Trx, contactIds: Ids): Promise<number> {
  return deletedCount(await trx.deleteFrom('purchases').where('contact_id', 'in', contactIds).executeTakeFirstOrThrow());
}

/**
 * Scores and the per-person reasons stored with them, in every score set (live or not) and
 * in every table a run wrote but has not published, or left behind when it died. Scores are
 * kept per person; a set scored before the records were linked may hold another record's id.
 */
export async function deleteScores(trx: Trx, contactIds: Ids): Promise<number> {
  const published = deletedCount(await trx.deleteFrom('scores').where('contact_id', 'in', contactIds).executeTakeFirstOrThrow());
  const { rows } = await sql<{ n: string }>`SELECT delete_unpublished_scores(${idArray(contactIds)}) AS n`.execute(trx);
  return published + Number(rows[0]?.n ?? 0);
}

/** The lists the person was sent within the pressure window: nothing will be sent to them again. */
export async function deleteContactPressure(trx: Trx, contactIds: Ids): Promise<number> {
  return deletedCount(await trx.deleteFrom('contact_pressure').where('contact_id', 'in', contactIds).executeTakeFirstOrThrow());
}

/**
 * Lists the person was in. Their manifests stay as they are: they hold the internal id, score,
 * rank and consent event ids, no identifier (external ids and contact details are read from
 * the contact, gone now), so every manifest still verifies.
 */
export async function manifestsHolding(trx: Trx, contactIds: Ids): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM target_export_manifests WHERE contact_ids && ${idArray(contactIds)}`.execute(trx);
  return rows[0]?.n ?? 0;
}

/** What an erased person's consent events say in place of a source someone typed: non-blank, so "as of T" answers stay as they were. */
export const SCRUBBED_SOURCE = 'removed at erasure';

/**
 * The ledger keeps what was decided and when (purpose, channel, status, instants, method):
 * the proof that past processing was lawful. The free-text proof fields may hold personal
 * data typed by whoever collected the consent (a name in the source, an email in the notice
 * version, a recording in the evidence reference): emptied. A non-blank source becomes
 * SCRUBBED_SOURCE, so that the event still counts for the instants it counted at.
 */
export async function scrubConsentEvidence(trx: Trx, contactIds: Ids, now: Date): Promise<{ kept: number; evidenceRemoved: number }> {
  const result = await trx
    .updateTable('consent_events')
    .set({
      source: sql<string | null>`CASE WHEN source ~ '[^[:space:]]' THEN ${SCRUBBED_SOURCE} ELSE NULL END`,
      notice_version: null,
      evidence_ref: null,
      proof_scrubbed_at: now,
    })
    .where('contact_id', 'in', contactIds)
    .where('proof_scrubbed_at', 'is', null)
    .executeTakeFirstOrThrow();
  const { kept } = await trx
    .selectFrom('consent_events')
    .select((eb) => eb.fn.countAll<number>().as('kept'))
    .where('contact_id', 'in', contactIds)
    .executeTakeFirstOrThrow();
  return { kept: Number(kept), evidenceRemoved: Number(result.numUpdatedRows) };
}

export async function markContactsErased(trx: Trx, contactIds: Ids, now: Date): Promise<void> {
  await trx
    .updateTable('contacts')
    .set({ external_id: null, erased_at: now, updated_at: now })
    .where('id', 'in', contactIds)
    .executeTakeFirstOrThrow();
}

/**
 * The tombstones: one per record, a keyed hash of its external id only (see tombstone-keys.ts),
 * which the contacts import refuses; the person's receipt goes with each. Returns their ids.
 */
export async function insertTombstones(
  trx: Trx,
  externalIds: readonly string[],
  keys: TombstoneKeys,
  erasedAt: Date,
  receipt: unknown,
): Promise<number[]> {
  if (externalIds.length === 0) return [];
  const rows = await trx
    .insertInto('erasure_tombstones')
    .values(
      externalIds.map((externalId) => ({
        external_id_key: tombstoneHash(keys.current, externalId),
        key_id: keys.current.id,
        legacy_external_id_sha256: null,
        erased_at: erasedAt,
        receipt: JSON.stringify(receipt),
      })),
    )
    .returning('id')
    .execute();
  return rows.map((row) => row.id).sort((a, b) => a - b);
}
