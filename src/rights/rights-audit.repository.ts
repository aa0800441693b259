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

/**
 * One audit line about a person: the person id (their first record's) as subject; details hold
 * names, ids and counts only, and list the person's records the right acted on.
 */
export interface RightsAuditEntry {
  actor: string;
  action: RightsAction;
  personId: number | null;
  at: Date;
  details: Record<string, unknown>;
}

export async function recordRightsAudit(db: Kysely<Database>, entry: RightsAuditEntry): Promise<void> {
  await appendAuditLog(db, {
    at: entry.at,
    actor: entry.actor,
    action: entry.action,
    ...(entry.personId === null ? {} : { subjectType: 'person', subjectId: String(entry.personId) }),
    details: entry.details,
  });
}
