import { type Kysely, sql } from 'kysely';

// Contact pressure counts the lists a person was sent in (holdouts are not contacted):
// a partial index answers that count from the index alone.
// Members are written only together with their export, in one transaction, and exports are
// never deleted (they are the audit record): the per-row foreign-key check doubled the cost of
// writing a 100,000-member list (1.8 s against 1.0 s, measured on PostgreSQL here), so it goes.
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    alter table target_export_members drop constraint target_export_members_export_id_fkey;
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
    alter table target_export_members add foreign key (export_id) references target_exports (id) on delete cascade;
  `.execute(db);
}
