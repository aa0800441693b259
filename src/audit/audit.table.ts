import type { Generated, JSONColumnType } from 'kysely';

export interface AuditLogTable {
  id: Generated<number>;
  at: Generated<Date>;
  actor: string;
  action: string;
  subject_type: string | null;
  subject_id: string | null;
  request_id: string | null;
  details: JSONColumnType<Record<string, unknown>>;
}
