import { type Kysely, sql } from 'kysely';

// Frozen in time: this file never imports application code.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    -- Persons above records: every contact record belongs to one person, named by the id of
    -- the person's first record. Tables kept per person (consent_state, profiling snapshots,
    -- scores, contact pressure, list members) hold that id in their contact_id column, so a
    -- person with one record is exactly what a contact was before.
    alter table contacts add column person_id bigint;
    update contacts set person_id = id;
    alter table contacts alter column person_id set not null;
    create index contacts_person on contacts (person_id);
    -- records split apart by a reviewer carry a partition of their own: resolution links only
    -- records of the same partition, so a split is never undone by the next import
    alter table contacts add column identity_partition bigint;
    create sequence identity_partitions;

    create function contacts_own_person() returns trigger language plpgsql as $fn$
    begin
      if new.person_id is null then new.person_id := new.id; end if;
      return new;
    end
    $fn$;
    create trigger contacts_own_person before insert on contacts
      for each row execute function contacts_own_person();

    -- The consent state becomes the person's: the latest event over all the person's records,
    -- and record_id says whose event it is. At an equal instant an event that does not count
    -- outranks one that counts: merging records must never turn a "no" into a "yes".
    alter table consent_state add column record_id bigint;
    update consent_state set record_id = contact_id;
    alter table consent_state alter column record_id set not null;

    create or replace function consent_state_follow_ledger() returns trigger language plpgsql as $fn$
    declare
      changed bigint[];
    begin
      insert into consent_state (contact_id, purpose, channel_key, record_id, event_id, status, captured_at, expires_at, counts)
      select distinct on (c.person_id, e.purpose, coalesce(e.channel, ''))
             c.person_id, e.purpose, coalesce(e.channel, ''), e.contact_id, e.id, e.status, e.captured_at, e.expires_at,
             consent_is_valid(e.status, e.source, m.is_explicit)
      from new_events e
      join contacts c on c.id = e.contact_id
      left join consent_methods m on m.code = e.method
      order by c.person_id, e.purpose, coalesce(e.channel, ''), e.captured_at desc,
               consent_is_valid(e.status, e.source, m.is_explicit), e.id desc
      on conflict (contact_id, purpose, channel_key) do update set
        record_id = excluded.record_id, event_id = excluded.event_id, status = excluded.status,
        captured_at = excluded.captured_at, expires_at = excluded.expires_at, counts = excluded.counts
      -- an event that arrives late but happened earlier does not replace a newer one
      where (excluded.captured_at, not excluded.counts, excluded.event_id)
          > (consent_state.captured_at, not consent_state.counts, consent_state.event_id);

      select array_agg(distinct c.person_id) into changed
      from new_events e join contacts c on c.id = e.contact_id
      where e.purpose = 'profiling';
      if changed is not null then
        perform drop_scores_of_unprofileable(changed);
      end if;
      return null;
    end
    $fn$;

    -- Persons among \`persons\` whose profiling consent does not count now, and ids that are no
    -- longer a person (merged into another), lose their scores in this same transaction,
    -- in published sets and in the tables a run has not published.
    create function drop_scores_of_unprofileable(persons bigint[]) returns void language plpgsql as $fn$
    declare
      stopped bigint[];
    begin
      select array_agg(g.id) into stopped
      from unnest(persons) g(id)
      where not exists (select 1 from contacts c where c.id = g.id and c.person_id = g.id and c.erased_at is null)
         or not exists (
           select 1 from consent_state st
           where st.contact_id = g.id and st.purpose = 'profiling' and st.channel_key = ''
             and st.counts and (st.expires_at is null or st.expires_at > now()));
      if stopped is not null then
        delete from scores s using unnest(stopped) g(contact_id) where s.contact_id = g.contact_id;
        perform delete_unpublished_scores(stopped);
      end if;
    end
    $fn$;

    -- The consent state of \`persons\` rebuilt from the ledger after their records were linked
    -- or split: rows of ids that are no longer persons go, the others are recomputed.
    create function refresh_person_consent_state(persons bigint[]) returns void language plpgsql as $fn$
    begin
      delete from consent_state where contact_id = any(persons);
      insert into consent_state (contact_id, purpose, channel_key, record_id, event_id, status, captured_at, expires_at, counts)
      select distinct on (c.person_id, e.purpose, coalesce(e.channel, ''))
             c.person_id, e.purpose, coalesce(e.channel, ''), e.contact_id, e.id, e.status, e.captured_at, e.expires_at,
             consent_is_valid(e.status, e.source, m.is_explicit)
      from contacts c
      join consent_events e on e.contact_id = c.id
      left join consent_methods m on m.code = e.method
      where c.person_id = any(persons)
      order by c.person_id, e.purpose, coalesce(e.channel, ''), e.captured_at desc,
               consent_is_valid(e.status, e.source, m.is_explicit), e.id desc;
      perform drop_scores_of_unprofileable(persons);
    end
    $fn$;

    -- Who asked for a link not to be made, and why: the review list of cible identities conflicts
    -- is computed, but a split is a decision and is kept.
    create table identity_splits (
      id bigserial primary key,
      person_id bigint not null,
      record_ids bigint[] not null,
      partition bigint not null,
      reason text not null,
      actor text not null,
      split_at timestamptz not null default now()
    );
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    drop table identity_splits;
    drop function refresh_person_consent_state(bigint[]);
    drop trigger contacts_own_person on contacts;
    drop function contacts_own_person();
    delete from consent_state where contact_id <> record_id;
    alter table consent_state drop column record_id;
    drop index contacts_person;
    alter table contacts drop column person_id, drop column identity_partition;
    drop sequence identity_partitions;
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
      where (excluded.captured_at, excluded.event_id) > (consent_state.captured_at, consent_state.event_id);
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
    drop function drop_scores_of_unprofileable(bigint[]);
  `.execute(db);
}
