import { type Kysely, sql } from 'kysely';

// Frozen in time: this file never imports application code.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    -- A review-page session: the browser holds a random id, the database only its SHA-256.
    -- Signing out revokes it; so does revoking the key it was opened with.
    create table ui_sessions (
      id bigint generated always as identity primary key,
      token_hash text not null unique,
      api_key_id bigint not null references api_keys (id) on delete cascade,
      created_at timestamptz not null,
      expires_at timestamptz not null,
      revoked_at timestamptz
    )`.execute(db);
  await sql`create index ui_sessions_api_key on ui_sessions (api_key_id) where revoked_at is null`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table ui_sessions`.execute(db);
}
