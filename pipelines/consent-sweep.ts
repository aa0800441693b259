import { sql, type Transaction } from 'kysely';
import { countingConsents } from '../src/consent/eligibility.ts';
import type { AppContext } from '../src/context.ts';
import type { Database } from '../src/db/database.ts';

/*
 * The light consent job. Withdrawals act at request time, and the consent_state trigger
 * deletes scores when a profiling event arrives; but a consent can also stop counting with
 * no event at all: it expires. This sweep catches up with time: whoever may no longer be
 * profiled now loses their scores, and each champion model says how many of the people it
 * was trained on no longer consent (a reason to retrain early).
 *
 * Set-based: the people who may no longer be profiled are computed once into a temporary
 * table (contacts against the consent state's covering index), then the scores are deleted
 * with one join and the lineage counted with one aggregate. The report holds counts only.
 */

export interface ScoreSetSweep {
  scoreSetId: number;
  /** "kind:key" of the set's model */
  target: string;
  /** null if the set's row is gone (a partition left behind) */
  status: 'building' | 'live' | 'retired' | null;
  scoresDeleted: number;
}

export interface ChampionLineage {
  /** "kind:key" */
  target: string;
  versionId: number;
  version: number;
  runId: number | null;
  /** the instant the training set's consent was judged at */
  consentSnapshotAt: string;
  /** people in the run's consent snapshot (profiling_snapshots); 0 when the run kept none */
  snapshotSize: number;
  /** of them, whose profiling consent no longer counts at the sweep's instant (or who were erased) */
  withdrawnSinceSnapshot: number;
  /** withdrawnSinceSnapshot / snapshotSize, null for an empty snapshot */
  share: number | null;
}

export interface ConsentSweepReport {
  sweepId: number;
  /** the instant consent was judged at */
  at: string;
  scoresDeleted: number;
  /** people whose scores were deleted */
  contactsAffected: number;
  /** scores deleted from tables a run wrote but has not published (or left behind when it died) */
  unpublishedScoresDeleted: number;
  /** the score sets rows were deleted from, by set */
  scoreSets: ScoreSetSweep[];
  /** every current champion, by target */
  lineage: ChampionLineage[];
  /** targets whose champion was trained on people who no longer consent: candidates to retrain early */
  retrainEarly: string[];
  durationMs: number;
}

/** The people who may not be profiled at `now`: no profiling consent counting then, or erased. */
const GONE = 'consent_sweep_gone';

/**
 * Deletes the scores of everyone whose profiling consent no longer counts at `now` (or who
 * was erased), reports the lineage of every champion model against the same rule, and
 * records the sweep in consent_sweeps; all in one transaction.
 */
export async function sweepConsent(context: AppContext, now: Date = context.clock.now()): Promise<ConsentSweepReport> {
  const started = performance.now();
  const report = await context.database.db.transaction().execute(async (trx) => {
    await markGone(trx, now);
    const { scoreSets, contactsAffected } = await deleteScores(trx);
    const unpublishedScoresDeleted = await deleteUnpublishedScores(trx);
    const lineage = await championLineage(trx);
    const scoresDeleted = scoreSets.reduce((sum, set) => sum + set.scoresDeleted, 0);
    const retrainEarly = lineage.filter((entry) => entry.withdrawnSinceSnapshot > 0).map((entry) => entry.target);
    const durationMs = Math.round(performance.now() - started);
    const body = {
      at: now.toISOString(),
      scoresDeleted,
      contactsAffected,
      unpublishedScoresDeleted,
      scoreSets,
      lineage,
      retrainEarly,
      durationMs,
    };
    const row = await trx
      .insertInto('consent_sweeps')
      .values({ ran_at: now, scores_deleted: scoresDeleted, contacts_affected: contactsAffected, report: JSON.stringify(body) })
      .returning('id')
      .executeTakeFirstOrThrow();
    return { sweepId: Number(row.id), ...body };
  });
  context.logger.info(
    {
      sweepId: report.sweepId,
      scoresDeleted: report.scoresDeleted,
      contactsAffected: report.contactsAffected,
      scoreSets: report.scoreSets.length,
      champions: report.lineage.length,
      retrainEarly: report.retrainEarly.length,
      durationMs: report.durationMs,
    },
    'consent sweep',
  );
  return report;
}

async function markGone(trx: Transaction<Database>, now: Date): Promise<void> {
  // dropped at commit (or rollback); ANALYZE gives the planner its size, so that a handful of
  // expired consents is deleted through scores_by_contact and a large set by one hash join
  await sql`CREATE TEMPORARY TABLE ${sql.raw(GONE)} (contact_id bigint PRIMARY KEY) ON COMMIT DROP`.execute(trx);
  // countingConsents gives person ids: a record that is not its person's primary record is always
  // gone here, so scores left under an id that stopped being a person (a merge) go with the rest
  await sql`
    INSERT INTO ${sql.raw(GONE)} (contact_id)
    SELECT c.id FROM contacts c
    WHERE c.erased_at IS NOT NULL
       OR NOT EXISTS (SELECT 1 FROM ${countingConsents('profiling', null, now, true)} p WHERE p.contact_id = c.id)`.execute(trx);
  await sql`ANALYZE ${sql.raw(GONE)}`.execute(trx);
}

/** Deletes from the partitioned parent (every attached set): rows deleted per set, and people affected. */
async function deleteScores(trx: Transaction<Database>): Promise<{ scoreSets: ScoreSetSweep[]; contactsAffected: number }> {
  const { rows } = await sql<{
    score_set_id: number;
    target: string | null;
    status: ScoreSetSweep['status'] | null;
    n: number;
    contacts: number;
  }>`
    WITH deleted AS (
      DELETE FROM scores s USING ${sql.raw(GONE)} g WHERE s.contact_id = g.contact_id
      RETURNING s.score_set_id, s.contact_id),
    per_set AS (SELECT score_set_id, count(*)::bigint AS n FROM deleted GROUP BY score_set_id)
    SELECT p.score_set_id, m.target_kind || ':' || m.target_key AS target, ss.status, p.n,
           (SELECT count(DISTINCT contact_id) FROM deleted)::int AS contacts
    FROM per_set p
    LEFT JOIN score_sets ss ON ss.id = p.score_set_id
    LEFT JOIN models m ON m.id = ss.model_id
    ORDER BY p.score_set_id`.execute(trx);
  return {
    scoreSets: rows.map((row) => ({
      scoreSetId: Number(row.score_set_id),
      target: row.target ?? 'unknown',
      status: row.status ?? null,
      scoresDeleted: Number(row.n),
    })),
    contactsAffected: Number(rows[0]?.contacts ?? 0),
  };
}

/** The same people's rows in the score tables of runs that have not published (a run killed during scoring leaves them). */
async function deleteUnpublishedScores(trx: Transaction<Database>): Promise<number> {
  const { rows } = await sql<{ n: string }>`
    SELECT delete_unpublished_scores(ARRAY(SELECT contact_id FROM ${sql.raw(GONE)})) AS n`.execute(trx);
  return Number(rows[0]?.n ?? 0);
}

/** Each champion against its run's consent snapshot: one aggregate per run, however many targets it trained. */
async function championLineage(trx: Transaction<Database>): Promise<ChampionLineage[]> {
  const { rows } = await sql<{
    target: string;
    version_id: number;
    version: number;
    run_id: number | null;
    consent_snapshot_at: Date;
    snapshot_size: number | null;
    withdrawn: number | null;
  }>`
    WITH champions AS (
      SELECT v.id, v.version, v.run_id, v.consent_snapshot_at, m.target_kind || ':' || m.target_key AS target
      FROM model_versions v JOIN models m ON m.id = v.model_id
      WHERE v.status = 'champion'),
    snapshots AS (
      SELECT ps.run_id, count(*)::int AS snapshot_size, count(g.contact_id)::int AS withdrawn
      FROM profiling_snapshots ps
      LEFT JOIN ${sql.raw(GONE)} g ON g.contact_id = ps.contact_id
      WHERE ps.run_id IN (SELECT run_id FROM champions WHERE run_id IS NOT NULL)
      GROUP BY ps.run_id)
    SELECT c.target, c.id AS version_id, c.version, c.run_id, c.consent_snapshot_at, s.snapshot_size, s.withdrawn
    FROM champions c LEFT JOIN snapshots s ON s.run_id = c.run_id
    ORDER BY c.target`.execute(trx);
  return rows.map((row) => {
    const snapshotSize = Number(row.snapshot_size ?? 0);
    const withdrawn = Number(row.withdrawn ?? 0);
    return {
      target: row.target,
      versionId: Number(row.version_id),
      version: Number(row.version),
      runId: row.run_id === null ? null : Number(row.run_id),
      consentSnapshotAt: new Date(row.consent_snapshot_at).toISOString(),
      snapshotSize,
      withdrawnSinceSnapshot: withdrawn,
      share: snapshotSize > 0 ? withdrawn / snapshotSize : null,
    };
  });
}
