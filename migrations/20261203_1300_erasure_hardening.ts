import { type Kysely, sql } from 'kysely';

// Frozen in time: this file never imports application code.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    -- Scores live outside the partitioned "scores" table while a run builds them: its
    -- score_part_* tables and its ranked scores_<set> tables, attached only at publish. A run
    -- killed during scoring leaves them behind. This reaches every one of them, so that an
    -- erasure, a withdrawal or the consent sweep never misses a score.
    create function delete_unpublished_scores(contact_ids bigint[]) returns bigint
    language plpgsql as $fn$
    declare
      t record;
      n bigint := 0;
      deleted bigint;
    begin
      if contact_ids is null or cardinality(contact_ids) = 0 then return 0; end if;
      for t in
        select c.relname from pg_class c
        where c.relnamespace = current_schema()::regnamespace and c.relkind = 'r' and not c.relispartition
          and (c.relname ~ '^score_part_' or c.relname ~ '^scores_[0-9]+$')
      loop
        execute format('delete from %I s using unnest($1) g(contact_id) where s.contact_id = g.contact_id', t.relname) using contact_ids;
        get diagnostics deleted = row_count;
        n := n + deleted;
      end loop;
      return n;
    end
    $fn$;

    -- Drops every score table no published set uses. Only called when no other run is
    -- active (the next run, once it holds the one-active slot; a cancel).
    create function drop_unpublished_score_tables() returns integer
    language plpgsql as $fn$
    declare
      t record;
      n integer := 0;
    begin
      for t in
        select c.relname from pg_class c
        where c.relnamespace = current_schema()::regnamespace and c.relkind = 'r' and not c.relispartition
          and (c.relname ~ '^score_part_' or c.relname ~ '^scores_[0-9]+$')
      loop
        execute format('drop table if exists %I', t.relname);
        n := n + 1;
      end loop;
      return n;
    end
    $fn$;

    create or replace function consent_state_follow_ledger() returns trigger language plpgsql as $fn$
    declare
      stopped bigint[];
    begin
      insert into consent_state (contact_id, purpose, channel_key, event_id, status, captured_at, expires_at, counts)
      select distinct on (e.contact_id, e.purpose, coalesce(e.channel, ''))
             e.contact_id, e.purpose, coalesce(e.channel, ''), e.id, e.status, e.captured_at, e.expires_at,
             consent_is_valid(e.status, e.source, m.is_explicit)
      from new_events e
      left join consent_methods m on m.code = e.method
      order by e.contact_id, e.purpose, coalesce(e.channel, ''), e.captured_at desc, e.id desc
      on conflict (contact_id, purpose, channel_key) do update set
        event_id = excluded.event_id, status = excluded.status, captured_at = excluded.captured_at,
        expires_at = excluded.expires_at, counts = excluded.counts
      -- an event that arrives late but happened earlier does not replace a newer one
      where (excluded.captured_at, excluded.event_id) > (consent_state.captured_at, consent_state.event_id);

      -- a contact whose profiling consent stops counting loses their scores (and the reasons
      -- stored with them) in this same transaction, whatever path the event came by, in
      -- published sets and in the tables a run has not published (or left behind)
      select array_agg(changed.contact_id) into stopped
      from (select distinct contact_id from new_events where purpose = 'profiling') changed
      where not exists (
        select 1 from consent_state st
        where st.contact_id = changed.contact_id and st.purpose = 'profiling' and st.channel_key = ''
          and st.counts and (st.expires_at is null or st.expires_at > now()));
      if stopped is not null then
        delete from scores s using unnest(stopped) g(contact_id) where s.contact_id = g.contact_id;
        perform delete_unpublished_scores(stopped);
      end if;
      return null;
    end
    $fn$;

    -- An inline run records where it runs, so that a run whose process is gone is recognised
    -- at once on that host (instead of after its heartbeat goes stale).
    alter table pipeline_runs add column host text, add column pid integer;

    -- Tombstones become keyed hashes: HMAC-SHA-256 of the case-folded external id, under a
    -- secret kept outside the database (key_id names which secret). Email and phone hashes
    -- are dropped: they refused living people sharing a household phone or email, and plain
    -- SHA-256 of a phone number is reversed by enumeration. A migration cannot compute HMACs
    -- of values it no longer has: existing tombstones keep their SHA-256 of the external id
    -- (exact case), renamed legacy_external_id_sha256, and still refuse that id.
    alter table erasure_tombstones rename column external_id_hash to legacy_external_id_sha256;
    alter index erasure_tombstones_external_id_hash rename to erasure_tombstones_legacy_external_id_sha256;
    drop index erasure_tombstones_email_hash;
    drop index erasure_tombstones_phone_hash;
    alter table erasure_tombstones
      drop column email_hash,
      drop column phone_hash,
      add column external_id_key text,
      add column key_id text;
    create index erasure_tombstones_external_id_key on erasure_tombstones (external_id_key);

    -- The consent ledger's idempotency, enforced by the database: one event per natural key,
    -- so concurrent imports of one file and retried requests record it once. Events already
    -- recorded twice are kept (the ledger is append-only evidence, and export manifests cite
    -- event ids) but marked as duplicates of the first and left out of the key.
    -- proof_scrubbed_at: an erasure emptied the event's free-text proof; left out of the key
    -- too (nothing is recorded about an erased person again).
    alter table consent_events
      add column duplicate_of bigint references consent_events (id),
      add column proof_scrubbed_at timestamptz;
    update consent_events e set duplicate_of = d.first_id
    from (
      select id, min(id) over (
               partition by contact_id, purpose, coalesce(channel, ''), status, captured_at,
                            coalesce(source, ''), coalesce(method, ''), coalesce(evidence_ref, '')) as first_id
      from consent_events
    ) d
    where d.id = e.id and d.first_id <> e.id;
    create unique index consent_events_natural_key on consent_events
      (contact_id, purpose, coalesce(channel, ''), status, captured_at, coalesce(source, ''), coalesce(method, ''), coalesce(evidence_ref, ''))
      where duplicate_of is null and proof_scrubbed_at is null;
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    drop index consent_events_natural_key;
    alter table consent_events drop column duplicate_of, drop column proof_scrubbed_at;
    drop index erasure_tombstones_external_id_key;
    alter table erasure_tombstones drop column external_id_key, drop column key_id,
      add column email_hash text, add column phone_hash text;
    create index erasure_tombstones_email_hash on erasure_tombstones (email_hash);
    create index erasure_tombstones_phone_hash on erasure_tombstones (phone_hash);
    alter index erasure_tombstones_legacy_external_id_sha256 rename to erasure_tombstones_external_id_hash;
    alter table erasure_tombstones rename column legacy_external_id_sha256 to external_id_hash;
    alter table pipeline_runs drop column host, drop column pid;
    create or replace function consent_state_follow_ledger() returns trigger language plpgsql as $fn$
    begin
      insert into consent_state (contact_id, purpose, channel_key, event_id, status, captured_at, expires_at, counts)
      select distinct on (e.contact_id, e.purpose, coalesce(e.channel, ''))
             e.contact_id, e.purpose, coalesce(e.channel, ''), e.id, e.status, e.captured_at, e.expires_at,
             consent_is_valid(e.status, e.source, m.is_explicit)
      from new_events e
      left join consent_methods m on m.code = e.method
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
    drop function drop_unpublished_score_tables();
    drop function delete_unpublished_scores(bigint[]);
  `.execute(db);
}
