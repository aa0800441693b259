import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../db/database.ts';

/** Purposes with whether they are given per channel: read from the table, never hard-coded. */
export async function purposeRules(db: Kysely<Database>): Promise<Map<string, { requiresChannel: boolean }>> {
  const rows = await db.selectFrom('purposes').select(['code', 'requires_channel']).orderBy('code').execute();
  return new Map(rows.map((row) => [row.code, { requiresChannel: row.requires_channel }]));
}

export async function channelCodes(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom('channels').select('code').orderBy('code').execute();
  return rows.map((row) => row.code);
}

/**
 * An objection is a ledger event of its own, on the record named by the request; the
 * consent_state trigger applies it to the person (and drops their scores for profiling).
 */
export async function insertObjectionEvent(
  trx: Transaction<Database>,
  contactId: number,
  purpose: string,
  channel: string | null,
  now: Date,
): Promise<number> {
  const { id } = await trx
    .insertInto('consent_events')
    .values({
      contact_id: contactId,
      purpose,
      channel,
      status: 'objected',
      captured_at: now,
      recorded_at: now,
      source: 'data_subject_request',
      method: null,
      notice_version: null,
      evidence_ref: null,
      expires_at: null,
      import_id: null,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return id;
}

/** Scores of the person (`contactId`: the person id, as scores are kept). */
export async function countScores(db: Kysely<Database>, contactId: number): Promise<number> {
  const { n } = await db
    .selectFrom('scores')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('contact_id', '=', contactId)
    .executeTakeFirstOrThrow();
  return Number(n);
}
