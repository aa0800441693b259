import { type Kysely, sql } from 'kysely';

// Frozen in time: this file never imports application code.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    alter table pipeline_runs
      add column kind text not null default 'pipeline' check (kind in ('pipeline', 'backtest')),
      add column horizon_days integer,
      add column summary jsonb not null default '{}'::jsonb;

    -- The consent snapshot of a run: who could be profiled at the run's instant, and the
    -- consent event that allowed it (lineage a privacy officer can show). known_since is
    -- when the person became known (first purchase or consent): a training row at cutoff c
    -- only exists for people known before c.
    create table profiling_snapshots (
      run_id bigint not null references pipeline_runs (id) on delete cascade,
      contact_id bigint not null,
      consent_event_id bigint not null,
      known_since timestamptz not null,
      primary key (run_id, contact_id)
    );
    create index profiling_snapshots_contact on profiling_snapshots (contact_id);

    -- One tfjs network predicts every target of a run at once (multi-output); each target's
    -- model version points at its output. The evaluation network is trained one horizon
    -- earlier, so that it can be judged on a window it never saw, now and in later runs.
    drop table model_artifacts;
    create table model_networks (
      id bigint generated always as identity primary key,
      run_id bigint references pipeline_runs (id),
      role text not null check (role in ('evaluation', 'production')),
      algorithm text not null,
      feature_list jsonb not null,
      metadata jsonb not null,
      format text not null,
      model_topology jsonb not null,
      weight_specs jsonb not null,
      weight_data bytea not null,
      created_at timestamptz not null default now()
    );

    alter table model_versions
      add column network_id bigint references model_networks (id),
      add column evaluation_network_id bigint references model_networks (id),
      add column output_index integer;

    -- Reasons as codes into the network's explanation groups: 50M score rows a night
    -- cannot afford a JSON document each.
    alter table scores
      drop column reasons,
      add column reason_1 smallint,
      add column reason_2 smallint,
      add column reason_3 smallint,
      add column contribution_1 real,
      add column contribution_2 real,
      add column contribution_3 real;
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    alter table scores
      drop column reason_1, drop column reason_2, drop column reason_3,
      drop column contribution_1, drop column contribution_2, drop column contribution_3,
      add column reasons jsonb;
    alter table model_versions drop column network_id, drop column evaluation_network_id, drop column output_index;
    drop table model_networks;
    create table model_artifacts (
      model_version_id bigint primary key references model_versions (id) on delete cascade,
      format text not null,
      model_topology jsonb not null,
      weight_specs jsonb not null,
      weight_data bytea not null,
      created_at timestamptz not null default now()
    );
    drop table profiling_snapshots;
    alter table pipeline_runs drop column kind, drop column horizon_days, drop column summary;
  `.execute(db);
}
