import { type Kysely, sql } from 'kysely';

// Frozen in time: this file never imports application code.

export async function up(db: Kysely<any>): Promise<void> {
  // Purposes, channels and consent methods are data, not code constants.
  await sql`
    create table purposes (
      code text primary key check (code ~ '^[a-z][a-z0-9_]*$'),
      label text not null,
      requires_channel boolean not null,
      description text
    );
    insert into purposes (code, label, requires_channel, description) values
      ('profiling', 'Profiling', false, 'Building a purchase-propensity score about the person'),
      ('direct_marketing', 'Direct marketing', true, 'Contacting the person with offers, per channel');

    create table channels (
      code text primary key check (code ~ '^[a-z][a-z0-9_]*$'),
      label text not null,
      contact_field text not null check (contact_field in ('email', 'phone', 'postal_address', 'device'))
    );
    insert into channels (code, label, contact_field) values
      ('email', 'Email', 'email'),
      ('sms', 'SMS', 'phone'),
      ('phone', 'Telephone call', 'phone'),
      ('postal', 'Postal mail', 'postal_address'),
      ('push', 'Push notification', 'device');

    create table consent_methods (
      code text primary key check (code ~ '^[a-z][a-z0-9_]*$'),
      is_explicit boolean not null,
      description text not null
    );
    insert into consent_methods (code, is_explicit, description) values
      ('explicit_checkbox', true, 'An unticked box the person ticked themselves'),
      ('double_opt_in', true, 'Confirmed through a link sent to the address'),
      ('signed_form', true, 'A signed paper or electronic form'),
      ('recorded_verbal', true, 'A recorded phone conversation'),
      ('pre_ticked', false, 'A box ticked in advance: never valid consent'),
      ('implied', false, 'Inferred from behaviour: never valid consent'),
      ('bundled', false, 'Accepted together with terms of sale: never valid consent');

    create table imports (
      id bigint generated always as identity primary key,
      kind text not null,
      file_name text not null,
      status text not null check (status in ('committed', 'rejected', 'failed')),
      started_at timestamptz not null,
      finished_at timestamptz not null,
      rows_read integer not null,
      rows_imported integer not null,
      rows_unchanged integer not null default 0,
      rows_rejected integer not null,
      options jsonb not null default '{}'::jsonb
    );

    create table contacts (
      id bigint generated always as identity primary key,
      -- the company's own identifier; null once the person is erased
      external_id text unique,
      created_at timestamptz not null,
      imported_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      erased_at timestamptz
    );

    -- Every directly identifying field lives here, so erasure deletes one row.
    create table contact_personal_data (
      contact_id bigint primary key references contacts (id) on delete cascade,
      email text,
      phone text,
      first_name text,
      last_name text,
      country text,
      email_hash text,
      phone_hash text
    );
    create index contact_personal_data_email_hash on contact_personal_data (email_hash) where email_hash is not null;
    create index contact_personal_data_phone_hash on contact_personal_data (phone_hash) where phone_hash is not null;

    -- Hashes of erased people, so that a later import cannot bring them back.
    create table erasure_tombstones (
      id bigint generated always as identity primary key,
      external_id_hash text,
      email_hash text,
      phone_hash text,
      erased_at timestamptz not null,
      receipt jsonb not null
    );
    create index erasure_tombstones_external_id_hash on erasure_tombstones (external_id_hash);
    create index erasure_tombstones_email_hash on erasure_tombstones (email_hash);
    create index erasure_tombstones_phone_hash on erasure_tombstones (phone_hash);

    -- Append-only ledger: a change of mind is a new event, never an update.
    create table consent_events (
      id bigint generated always as identity primary key,
      contact_id bigint not null references contacts (id),
      purpose text not null references purposes (code),
      channel text references channels (code),
      status text not null check (status in ('granted', 'withdrawn', 'refused')),
      captured_at timestamptz not null,
      recorded_at timestamptz not null default now(),
      source text,
      method text references consent_methods (code),
      notice_version text,
      evidence_ref text,
      expires_at timestamptz,
      import_id bigint references imports (id)
    );
    create index consent_events_latest
      on consent_events (contact_id, purpose, channel, captured_at desc, id desc);

    create table products (
      id bigint generated always as identity primary key,
      sku text not null unique,
      name text not null,
      category text not null,
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now()
    );
    create index products_category on products (category);

    -- No foreign keys here on purpose: imports resolve every reference by join before
    -- inserting, and per-row FK triggers tripled the time of a bulk import (measured).
    -- Erasure deletes a person's purchases explicitly.
    create table purchases (
      -- byte-wise collation: an id is not words to sort, and the key compares much faster
      order_id text collate "C" not null,
      product_id bigint not null,
      contact_id bigint not null,
      quantity integer not null check (quantity > 0),
      unit_price numeric(12, 2) not null check (unit_price >= 0),
      purchased_at timestamptz not null,
      import_id bigint,
      primary key (order_id, product_id)
    );
    create index purchases_contact_date on purchases (contact_id, purchased_at);

    create table opposition_lists (
      id bigint generated always as identity primary key,
      name text not null unique,
      channel text not null references channels (code),
      list_date date not null,
      imported_at timestamptz not null,
      entry_count integer not null
    );
    create table opposition_entries (
      list_id bigint not null references opposition_lists (id) on delete cascade,
      value_hash text not null,
      primary key (list_id, value_hash)
    );
    create index opposition_entries_value_hash on opposition_entries (value_hash);

    create table pipeline_runs (
      id bigint generated always as identity primary key,
      status text not null check (status in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
      trigger text not null,
      as_of timestamptz not null,
      params jsonb not null default '{}'::jsonb,
      created_at timestamptz not null default now(),
      started_at timestamptz,
      finished_at timestamptz,
      error text
    );

    -- A model predicts one target: a product, a category, or any purchase.
    create table models (
      id bigint generated always as identity primary key,
      target_kind text not null check (target_kind in ('product', 'category', 'any')),
      target_key text not null,
      product_id bigint references products (id),
      created_at timestamptz not null default now(),
      unique (target_kind, target_key)
    );

    create table model_versions (
      id bigint generated always as identity primary key,
      model_id bigint not null references models (id),
      version integer not null,
      algorithm text not null,
      status text not null check (status in ('candidate', 'champion', 'retired', 'rejected')),
      run_id bigint references pipeline_runs (id),
      trained_at timestamptz not null,
      -- lineage: the consent snapshot the training set was taken at, and its size
      consent_snapshot_at timestamptz not null,
      population_size integer not null,
      training_cutoff timestamptz not null,
      horizon_days integer not null,
      feature_list jsonb not null,
      code_version text not null,
      training_data_hash text not null,
      metrics jsonb not null default '{}'::jsonb,
      baseline_metrics jsonb not null default '{}'::jsonb,
      decision_reason text,
      promoted_at timestamptz,
      unique (model_id, version)
    );
    create unique index model_versions_one_champion on model_versions (model_id) where status = 'champion';

    create table model_artifacts (
      model_version_id bigint primary key references model_versions (id) on delete cascade,
      format text not null,
      model_topology jsonb not null,
      weight_specs jsonb not null,
      weight_data bytea not null,
      created_at timestamptz not null default now()
    );

    -- A score set is one model version's scores for everyone; it becomes visible
    -- by switching its status to live in one transaction, and drops as a partition.
    create table score_sets (
      id bigint generated always as identity primary key,
      model_id bigint not null references models (id),
      model_version_id bigint not null references model_versions (id),
      run_id bigint references pipeline_runs (id),
      status text not null check (status in ('building', 'live', 'retired')),
      scored_at timestamptz not null,
      row_count integer not null default 0,
      created_at timestamptz not null default now()
    );
    create unique index score_sets_one_live on score_sets (model_id) where status = 'live';

    create table scores (
      score_set_id bigint not null,
      contact_id bigint not null,
      score real not null check (score >= 0 and score <= 1),
      rank integer not null,
      percentile real not null,
      reasons jsonb,
      primary key (score_set_id, contact_id)
    ) partition by list (score_set_id);
    create index scores_by_rank on scores (score_set_id, rank);
    create index scores_by_contact on scores (contact_id);

    create table api_keys (
      id bigint generated always as identity primary key,
      name text not null,
      role text not null check (role in ('marketer', 'data_scientist', 'scheduler', 'dpo', 'admin')),
      key_prefix text not null unique,
      key_hash text not null,
      created_at timestamptz not null default now(),
      last_used_at timestamptz,
      revoked_at timestamptz
    );

    create table target_exports (
      id uuid primary key default gen_random_uuid(),
      created_at timestamptz not null default now(),
      api_key_id bigint references api_keys (id),
      actor text not null,
      model_id bigint not null references models (id),
      model_version_id bigint not null references model_versions (id),
      score_set_id bigint not null references score_sets (id),
      channel text not null references channels (code),
      params jsonb not null,
      funnel jsonb not null,
      member_count integer not null,
      holdout_count integer not null default 0,
      holdout_seed text,
      manifest_hash text not null
    );

    create table target_export_members (
      export_id uuid not null references target_exports (id) on delete cascade,
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
      -- hash of the member line, kept after erasure so the manifest still verifies
      member_hash text not null,
      primary key (export_id, position)
    );
    create index target_export_members_pressure on target_export_members (contact_id, exported_at);

    create table audit_log (
      id bigint generated always as identity primary key,
      at timestamptz not null default now(),
      actor text not null,
      action text not null,
      subject_type text,
      subject_id text,
      request_id text,
      details jsonb not null default '{}'::jsonb
    );
    create index audit_log_subject on audit_log (subject_type, subject_id);
    create index audit_log_at on audit_log (at);
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    drop table if exists audit_log, target_export_members, target_exports, api_keys, scores, score_sets,
      model_artifacts, model_versions, models, pipeline_runs, opposition_entries, opposition_lists,
      purchases, products, consent_events, erasure_tombstones, contact_personal_data, contacts,
      imports, consent_methods, channels, purposes cascade;
  `.execute(db);
}
