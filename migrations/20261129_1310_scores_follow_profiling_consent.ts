import { type Kysely, sql } from 'kysely';

// Frozen in time: this file never imports application code.

export async function up(db: Kysely<any>): Promise<void> {
  // A contact whose profiling consent stops counting loses their scores (and the
  // reasons stored with them) in the same transaction as the ledger event,
  // whatever path the event came by (import, API, objection).
  await sql`
    create or replace function consent_state_follow_ledger() returns trigger language plpgsql as $fn$
    begin
      insert into consent_state (contact_id, purpose, channel_key, event_id, status, captured_at, expires_at, counts)
      select distinct on (e.contact_id, e.purpose, coalesce(e.channel, ''))
             e.contact_id, e.purpose, coalesce(e.channel, ''), e.id, e.status, e.captured_at, e.expires_at,
             consent_event_counts(e.status, e.method, e.source)
      from new_events e
      order by e.contact_id, e.purpose, coalesce(e.channel, ''), e.captured_at desc, e.id desc
      on conflict (contact_id, purpose, channel_key) do update set
        event_id = excluded.event_id, status = excluded.status, captured_at = excluded.captured_at,
        expires_at = excluded.expires_at, counts = excluded.counts
      where (excluded.captured_at, excluded.event_id) > (consent_state.captured_at, consent_state.event_id);

      delete from scores s
      using (select distinct contact_id from new_events where purpose = 'profiling') changed
      where s.contact_id = changed.contact_id
        and not exists (
          select 1 from consent_state st
          where st.contact_id = changed.contact_id and st.purpose = 'profiling' and st.channel_key = ''
            and st.counts and (st.expires_at is null or st.expires_at > now()));
      return null;
    end
    $fn$;
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    create or replace function consent_state_follow_ledger() returns trigger language plpgsql as $fn$
    begin
      insert into consent_state (contact_id, purpose, channel_key, event_id, status, captured_at, expires_at, counts)
      select distinct on (e.contact_id, e.purpose, coalesce(e.channel, ''))
             e.contact_id, e.purpose, coalesce(e.channel, ''), e.id, e.status, e.captured_at, e.expires_at,
             consent_event_counts(e.status, e.method, e.source)
      from new_events e
      order by e.contact_id, e.purpose, coalesce(e.channel, ''), e.captured_at desc, e.id desc
      on conflict (contact_id, purpose, channel_key) do update set
        event_id = excluded.event_id, status = excluded.status, captured_at = excluded.captured_at,
        expires_at = excluded.expires_at, counts = excluded.counts
      where (excluded.captured_at, excluded.event_id) > (consent_state.captured_at, consent_state.event_id);
      return null;
    end
    $fn$;
  `.execute(db);
}
