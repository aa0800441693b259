import type { Kysely } from 'kysely';
import type { Database } from '../db/database.ts';

export type RightsAction =
  | 'rights.access'
  | 'rights.portability'
  | 'rights.rectification'
  | 'rights.objection'
  | 'rights.erasure'
  | 'retention.purge';

/** One audit line about a contact: internal id as subject, details hold names, ids and counts only. */
export interface RightsAuditEntry {
  actor: string;
  action: RightsAction;
  contactId: number | null;
  at: Date;
  details: Record<string, unknown>;
}

export async function recordRightsAudit(db: Kysely<Database>, entry: RightsAuditEntry): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({
      at: entry.at,
      actor: entry.actor,
      action: entry.action,
      subject_type: entry.contactId === null ? null : 'contact',
      subject_id: entry.contactId === null ? null : String(entry.contactId),
      details: JSON.stringify(entry.details),
    })
    .execute();
}
