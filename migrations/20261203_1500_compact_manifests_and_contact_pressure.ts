import { type Kysely, sql } from 'kysely';

// Frozen in time: this file never imports application code.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    -- One row per list: its members in list order as arrays, so recording a list is one statement
    -- whatever its size. No personal data: external ids and contact details are read from the
    -- contact when the manifest is read (none once erased), so an erasure never rewrites a manifest.
    create table target_export_manifests (
      export_id uuid primary key references target_exports (id) on delete cascade,
      -- 1: lists recorded before this table (hex text member hashes); 2: a fixed binary layout (manifest.ts)
      hash_scheme smallint not null check (hash_scheme in (1, 2)),
      contact_ids bigint[] not null,
      scores real[] not null,
      ranks integer[] not null,
      percentiles real[] not null,
      holdout boolean[] not null,
      profiling_event_ids bigint[] not null,
      channel_event_ids bigint[] not null,
      -- the members' 32-byte SHA-256 hashes, concatenated in list order
      member_hashes bytea not null,
      check (cardinality(contact_ids) = cardinality(scores) and cardinality(contact_ids) = cardinality(ranks)
        and cardinality(contact_ids) = cardinality(percentiles) and cardinality(contact_ids) = cardinality(holdout)
        and cardinality(contact_ids) = cardinality(profiling_event_ids)
        and cardinality(contact_ids) = cardinality(channel_event_ids)
        and octet_length(member_hashes) = 32 * cardinality(contact_ids))
    );
    -- the lists a person was in (access report, erasure, pressure release)
    create index target_export_manifests_contacts on target_export_manifests using gin (contact_ids);

    -- Contact pressure per person: the lists they were sent (holdouts and undelivered lists
    -- excluded) within the window. A list reserves its members' rows in one statement taken in
    -- contact-id order; the row lock makes the cap exact when lists run at the same time.
    -- Every contact has a row from the moment they exist (a list locks rows; it never has to
    -- insert one a concurrent list may be inserting too); an erasure deletes it.
    create type pressure_send as (export_id uuid, sent_at timestamptz);
    create table contact_pressure (
      contact_id bigint primary key,
      sends pressure_send[] not null default '{}'
    );
    create function contact_pressure_for_new_contacts() returns trigger language plpgsql as $fn$
    begin
      insert into contact_pressure (contact_id) select id from new_contacts where erased_at is null
      on conflict (contact_id) do nothing;
      return null;
    end
    $fn$;
    create trigger contact_pressure_for_new_contacts after insert on contacts
      referencing new table as new_contacts for each statement execute function contact_pressure_for_new_contacts();

    insert into target_export_manifests
      (export_id, hash_scheme, contact_ids, scores, ranks, percentiles, holdout, profiling_event_ids, channel_event_ids, member_hashes)
    select export_id, 1,
           array_agg(coalesce(contact_id, 0) order by position), array_agg(score order by position),
           array_agg(rank order by position), array_agg(percentile order by position),
           array_agg(is_holdout order by position),
           array_agg(consent_event_ids[1] order by position), array_agg(consent_event_ids[2] order by position),
           decode(string_agg(member_hash, '' order by position), 'hex')
    from target_export_members m
    where exists (select 1 from target_exports e where e.id = m.export_id)
    group by export_id;

    insert into contact_pressure (contact_id, sends)
    select c.id, coalesce(
      (select array_agg(row(m.export_id, m.exported_at)::pressure_send order by m.exported_at)
       from target_export_members m
       where m.contact_id = c.id and not m.is_holdout and not m.released), '{}')
    from contacts c where c.erased_at is null;

    drop table target_export_members;
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    create table target_export_members (
      export_id uuid not null,
      position integer not null,
      contact_id bigint,
      exported_at timestamptz not null,
      external_id text,
      contact_value text,
      score real not null,
      rank integer not null,
      percentile real not null,
      is_holdout boolean not null,
      consent_event_ids bigint[] not null,
      member_hash text not null,
      released boolean not null default false,
      primary key (export_id, position)
    );
    create index target_export_members_pressure on target_export_members (contact_id, exported_at) where not is_holdout and not released;
    -- only lists of the first scheme can go back: their member hashes are the old text
    insert into target_export_members
      (export_id, position, contact_id, exported_at, score, rank, percentile, is_holdout, consent_event_ids, member_hash, released)
    select m.export_id, u.position, u.contact_id, e.created_at, u.score, u.rank, u.percentile, u.holdout,
           array[u.profiling_event_id, u.channel_event_id],
           encode(substring(m.member_hashes from (u.position - 1) * 32 + 1 for 32), 'hex'),
           e.delivery = 'undelivered'
    from target_export_manifests m
    join target_exports e on e.id = m.export_id
    cross join lateral unnest(m.contact_ids, m.scores, m.ranks, m.percentiles, m.holdout, m.profiling_event_ids, m.channel_event_ids)
      with ordinality as u(contact_id, score, rank, percentile, holdout, profiling_event_id, channel_event_id, position)
    where m.hash_scheme = 1;
    drop trigger contact_pressure_for_new_contacts on contacts;
    drop function contact_pressure_for_new_contacts();
    drop table contact_pressure;
    drop type pressure_send;
    drop table target_export_manifests;
  `.execute(db);
}
