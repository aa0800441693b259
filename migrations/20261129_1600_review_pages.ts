import { type Kysely, sql } from 'kysely';

// Frozen in time: this file never imports application code.

export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    -- The scored population's features, on a seeded sample, in the bins of the training
    -- profile of the same run (stored in the network's metadata): the model review page
    -- compares the two (population stability index per feature) to flag input drift.
    -- Counts and proportions only: no row of anyone's data.
    alter table score_sets add column feature_profile jsonb;
  `.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`alter table score_sets drop column feature_profile;`.execute(db);
}
