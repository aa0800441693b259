import { type Kysely, sql } from 'kysely';

// Frozen in time: this file never imports application code.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    -- Runs left 'running' by a process that died before this migration cannot stay active:
    -- at most one run may be queued or running from now on (index below).
    update pipeline_runs set status = 'failed', finished_at = coalesce(finished_at, now()),
      error = coalesce(error, 'abandoned: still running when the job queue was introduced')
    where status in ('queued', 'running')
      and id <> (select max(id) from pipeline_runs where status in ('queued', 'running'));

    -- One run of the pipeline at a time, whoever starts it (API, schedule, CLI, any machine):
    -- the database refuses a second active run, so two triggers at once cannot both start.
    create unique index pipeline_runs_one_active on pipeline_runs ((true)) where status in ('queued', 'running');
    -- A schedule slot (trigger 'schedule:<instant>') starts at most one run, however many
    -- schedulers are running.
    create unique index pipeline_runs_one_per_slot on pipeline_runs (trigger) where trigger like 'schedule:%';

    alter table pipeline_runs
      -- 'inline': the whole run in one process (cible pipeline run, backtests);
      -- 'queue': parts taken by workers from the job queue
      add column driver text not null default 'inline' check (driver in ('inline', 'queue')),
      -- how many scoring shards the run fans out into
      add column shards integer,
      -- refreshed while a process works on the run: an inline run whose process died is
      -- recognised by its stale heartbeat and marked failed by the next trigger
      add column heartbeat_at timestamptz;

    -- The parts of a run, one row per job: 'train', 'score:<shard>', 'rank:<score set>',
    -- 'publish'. attempt fences retries: only the attempt that holds the latest number may
    -- record its part as done, so an attempt presumed dead can never publish anything.
    create table pipeline_run_parts (
      run_id bigint not null references pipeline_runs (id) on delete cascade,
      part text not null,
      status text not null check (status in ('running', 'succeeded', 'failed')),
      attempt integer not null default 1,
      worker text,
      started_at timestamptz,
      finished_at timestamptz,
      rows bigint,
      output jsonb,
      error text,
      primary key (run_id, part)
    );

    -- What the light consent job found and did, each time it ran (counts only).
    create table consent_sweeps (
      id bigint generated always as identity primary key,
      ran_at timestamptz not null,
      scores_deleted bigint not null,
      contacts_affected integer not null,
      report jsonb not null default '{}'::jsonb
    );
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`
    drop table consent_sweeps;
    drop table pipeline_run_parts;
    alter table pipeline_runs drop column driver, drop column shards, drop column heartbeat_at;
    drop index pipeline_runs_one_per_slot;
    drop index pipeline_runs_one_active;
  `.execute(db);
}
