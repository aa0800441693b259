import { type Kysely, sql } from 'kysely';

// Frozen in time: this file never imports application code.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    -- One row per worker process ('host:pid'): refreshed while it runs, so that a run queued
    -- with no live worker can be told apart from one that simply waits its turn.
    create table job_workers (
      worker text primary key,
      started_at timestamptz not null,
      heartbeat_at timestamptz not null,
      -- set when the worker stops cleanly; a killed worker keeps only its last heartbeat
      stopped_at timestamptz
    )`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop table job_workers`.execute(db);
}
