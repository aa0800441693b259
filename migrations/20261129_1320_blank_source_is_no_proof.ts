import { type Kysely, sql } from 'kysely';

// Frozen in time: this file never imports application code.

export async function up(db: Kysely<any>): Promise<void> {
  // btrim() strips spaces only: a source of tabs or line breaks counted as proof.
  await sql`
    create or replace function consent_event_counts(status text, method text, source text) returns boolean
    language sql stable as $fn$
      select status = 'granted'
         and coalesce(source ~ '[^[:space:]]', false)
         and coalesce((select is_explicit from consent_methods where code = method), false)
    $fn$;

    update consent_state s set counts = consent_event_counts(e.status, e.method, e.source)
    from consent_events e
    where e.id = s.event_id and s.counts <> consent_event_counts(e.status, e.method, e.source);
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    create or replace function consent_event_counts(status text, method text, source text) returns boolean
    language sql stable as $fn$
      select status = 'granted'
         and nullif(btrim(source), '') is not null
         and coalesce((select is_explicit from consent_methods where code = method), false)
    $fn$;
  `.execute(db);
}
