import type { Kysely } from 'kysely';
import { stateCountsAt } from '../consent/eligibility.ts';
import type { Database } from '../db/database.ts';

/*
 * The reads behind the person view: one contact at a time, by id, and never a contact detail.
 */

export interface PersonRecord {
  id: number;
  /** the company's own identifier, null once erased */
  externalId: string | null;
  createdAt: Date;
  erasedAt: Date | null;
  /** whether the contact's profiling consent counts now */
  profilingConsent: boolean;
}

/** The person a record belongs to (any of their records' ids opens them), as their first record. */
export async function findPerson(db: Kysely<Database>, contactId: number, now: Date): Promise<PersonRecord | null> {
  const row = await db
    .selectFrom('contacts as r')
    .innerJoin('contacts as c', 'c.id', 'r.person_id')
    .leftJoin('consent_state as s', (join) =>
      join.onRef('s.contact_id', '=', 'c.id').on('s.purpose', '=', 'profiling').on('s.channel_key', '=', ''),
    )
    .select(['c.id', 'c.external_id', 'c.created_at', 'c.erased_at'])
    .select(stateCountsAt(now, 's').as('profiling_counts'))
    .where('r.id', '=', contactId)
    .executeTakeFirst();
  if (!row) return null;
  return {
    id: Number(row.id),
    externalId: row.external_id,
    createdAt: row.created_at,
    erasedAt: row.erased_at,
    profilingConsent: row.profiling_counts === true,
  };
}

export async function personIdByExternalId(db: Kysely<Database>, externalId: string): Promise<number | null> {
  const row = await db
    .selectFrom('contacts')
    .select('person_id')
    .where('external_id', '=', externalId)
    .where('erased_at', 'is', null)
    .executeTakeFirst();
  return row ? Number(row.person_id) : null;
}

/** How many people each model's live score set holds. */
export async function livePopulations(db: Kysely<Database>, modelIds: readonly number[]): Promise<Map<number, number>> {
  if (modelIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('score_sets')
    .select(['model_id', 'row_count'])
    .where('status', '=', 'live')
    .where('model_id', 'in', [...modelIds])
    .execute();
  return new Map(rows.map((row) => [Number(row.model_id), row.row_count]));
}
