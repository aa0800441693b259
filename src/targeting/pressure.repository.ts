import { sql, type Transaction } from 'kysely';
import type { Database } from '../db/database.ts';

/*
 * Contact pressure: each person's row in contact_pressure holds the lists they were sent within
 * the window (holdouts and undelivered lists excluded). A list reserves its members in one
 * statement, in contact-id order: a row lock per person, so lists over different people never
 * wait for each other, and the cap is re-checked on the row as it is once a concurrent list has
 * committed (ON CONFLICT DO UPDATE … WHERE), so it holds exactly whatever runs at the same time.
 */

export interface Reservation {
  exportId: string;
  sentAt: Date;
  /** sends before this no longer count (and are dropped from the row) */
  since: Date;
  cap: number;
}

/**
 * Reserves a send for everyone in list_selection not reserved yet, and removes from the
 * selection those a concurrent list took up to the cap meanwhile. Returns how many were
 * removed and their summed scores, so the walk can take others in their place.
 */
export async function reserveSelection(
  trx: Transaction<Database>,
  reservation: Reservation,
): Promise<{ refused: number; refusedScores: number }> {
  const { exportId, sentAt, since, cap } = reservation;
  const send = sql`ROW(${exportId}::uuid, ${sentAt}::timestamptz)::pressure_send`;
  await sql`
    WITH reserved AS (
      INSERT INTO contact_pressure AS cp (contact_id, sends)
      SELECT contact_id, ARRAY[${send}] FROM list_selection WHERE NOT reserved ORDER BY contact_id
      ON CONFLICT (contact_id) DO UPDATE
        SET sends = ARRAY(SELECT sent FROM unnest(cp.sends) sent WHERE sent.sent_at > ${since}) || ${send}
        WHERE (SELECT count(*) FROM unnest(cp.sends) sent WHERE sent.sent_at > ${since}) < ${cap}
      RETURNING contact_id
    )
    UPDATE list_selection l SET reserved = true FROM reserved r WHERE l.contact_id = r.contact_id`.execute(trx);
  const { rows } = await sql<{ refused: number; refused_scores: number }>`
    WITH refused AS (DELETE FROM list_selection WHERE NOT reserved RETURNING score)
    SELECT count(*)::int AS refused, coalesce(sum(score::float8), 0) AS refused_scores FROM refused`.execute(trx);
  return { refused: rows[0]!.refused, refusedScores: Number(rows[0]!.refused_scores) };
}

/** The holdout is not contacted: its members' sends of this list are taken back. */
export async function releaseHoldout(trx: Transaction<Database>, exportId: string): Promise<void> {
  await sql`
    UPDATE contact_pressure cp
    SET sends = ARRAY(SELECT sent FROM unnest(cp.sends) sent WHERE sent.export_id <> ${exportId}::uuid)
    FROM list_selection l
    WHERE l.contact_id = cp.contact_id AND l.is_holdout`.execute(trx);
}

/** Lists that were not delivered stop counting towards their members' pressure. */
export async function releaseSends(trx: Transaction<Database>, exportIds: readonly string[]): Promise<void> {
  if (exportIds.length === 0) return;
  const ids = sql`${[...exportIds]}::uuid[]`;
  await sql`
    UPDATE contact_pressure cp
    SET sends = ARRAY(SELECT sent FROM unnest(cp.sends) sent WHERE sent.export_id <> ALL(${ids}))
    WHERE cp.contact_id IN (SELECT unnest(contact_ids) FROM target_export_manifests WHERE export_id = ANY(${ids}))`.execute(trx);
}
