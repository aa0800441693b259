import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../db/database.ts';

/** Runs in the caller's transaction when given one, else in a new one: a right is all or nothing. */
export function inTransaction<T>(db: Kysely<Database>, run: (trx: Transaction<Database>) => Promise<T>): Promise<T> {
  return db.isTransaction ? run(db as Transaction<Database>) : db.transaction().execute(run);
}
