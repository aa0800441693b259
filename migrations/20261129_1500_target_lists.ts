import { type Kysely, sql } from 'kysely';

// Contact pressure counts the lists a person was sent in (holdouts are not contacted):
// a partial index answers that count from the index alone.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    drop index target_export_members_pressure;
    create index target_export_members_pressure on target_export_members (contact_id, exported_at) where not is_holdout;
    create index target_exports_by_key on target_exports (api_key_id, created_at);
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    drop index target_exports_by_key;
    drop index target_export_members_pressure;
    create index target_export_members_pressure on target_export_members (contact_id, exported_at);
  `.execute(db);
}
