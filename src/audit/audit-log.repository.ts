import type { Kysely } from 'kysely';
import type { Database } from '../db/database.ts';

/** One accountability record (GDPR rule 10). `details` holds ids and counts, never personal data. */
export interface AuditLogEntry {
  /** when it happened, from the app's clock (the database's clock when omitted) */
  at?: Date;
  actor: string;
  action: string;
  subjectType?: string;
  subjectId?: string;
  requestId?: string;
  details: Record<string, unknown>;
}

export async function appendAuditLog(db: Kysely<Database>, entry: AuditLogEntry): Promise<number> {
  const row = await db
    .insertInto('audit_log')
    .values({
      ...(entry.at ? { at: entry.at } : {}),
      actor: entry.actor,
      action: entry.action,
      subject_type: entry.subjectType ?? null,
      subject_id: entry.subjectId ?? null,
      request_id: entry.requestId ?? null,
      details: JSON.stringify(entry.details),
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}
