import type { Kysely } from 'kysely';
import { appendAuditLog } from '../audit/audit-log.repository.ts';
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
  await appendAuditLog(db, {
    at: entry.at,
    actor: entry.actor,
    action: entry.action,
    ...(entry.contactId === null ? {} : { subjectType: 'contact', subjectId: String(entry.contactId) }),
    details: entry.details,
  });
}
