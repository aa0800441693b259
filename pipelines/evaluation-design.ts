import { type Kysely, sql } from 'kysely';
import type { Database } from '../src/db/database.ts';
import { DEFAULT_PIPELINE_OPTIONS, type EvaluationDesign, type PipelineOptions } from './run-types.ts';

const DAY_MS = 86_400_000;

export function day(date: Date): string {
  return date.toISOString().slice(0, 10);
}

export function minusDays(date: Date, days: number): Date {
  return new Date(date.getTime() - days * DAY_MS);
}

/**
 * Out-of-time evaluation (networks trained at T−2H, judged on [T−H, T)) needs people who had a
 * history at T−2H already. When fewer than `minHistoryShare` of those with a purchase before T−H
 * had one before T−2H (a young base, a cohort that arrived recently), or too few had one at all,
 * the candidates are judged at T−H instead, on people held out by a seeded split by person.
 */
export async function chooseEvaluationDesign(
  db: Kysely<Database>,
  runId: number,
  evaluationCutoff: Date,
  calibrationCutoff: Date,
  options: PipelineOptions,
): Promise<EvaluationDesign> {
  const settings = options.evaluation ?? DEFAULT_PIPELINE_OPTIONS.evaluation;
  const { rows } = await sql<{ at_evaluation: number; at_calibration: number }>`
    SELECT count(*)::int AS at_evaluation, count(*) FILTER (WHERE first_purchase < ${calibrationCutoff})::int AS at_calibration
    FROM (SELECT s.contact_id, min(p.purchased_at) AS first_purchase
          FROM profiling_snapshots s JOIN contacts rc ON rc.person_id = s.contact_id JOIN purchases p ON p.contact_id = rc.id
          WHERE s.run_id = ${runId} AND s.known_since < ${evaluationCutoff} AND p.purchased_at < ${evaluationCutoff}
          GROUP BY s.contact_id) AS history`.execute(db);
  const atEvaluation = rows[0]?.at_evaluation ?? 0;
  const atCalibration = rows[0]?.at_calibration ?? 0;
  const share = atEvaluation > 0 ? atCalibration / atEvaluation : 0;
  const base = {
    historyAtEvaluation: atEvaluation,
    historyAtCalibration: atCalibration,
    seed: options.training.seed,
    test: 'DeLong paired' as const,
  };
  const percent = (value: number) => `${(100 * value).toFixed(0)}%`;
  const enough = options.minPositives + options.minNegatives;
  if (share >= settings.minHistoryShare && atCalibration >= enough) {
    return {
      ...base,
      kind: 'out-of-time',
      holdoutShare: null,
      reason: `out-of-time: trained at ${day(calibrationCutoff)}, judged on [${day(evaluationCutoff)}, +${options.horizonDays} d); ${percent(share)} of the ${atEvaluation} people with a history at ${day(evaluationCutoff)} already had one at ${day(calibrationCutoff)}`,
    };
  }
  return {
    ...base,
    kind: 'person-split',
    holdoutShare: settings.holdoutShare,
    reason: `split by person at ${day(evaluationCutoff)}: only ${atCalibration} of the ${atEvaluation} people with a history at ${day(evaluationCutoff)} (${percent(share)}, below ${percent(settings.minHistoryShare)}${atCalibration < enough ? `, or fewer than ${enough}` : ''}) had one at ${day(calibrationCutoff)}; ${percent(settings.holdoutShare)} of the people (seeded by id) held out and judged on [${day(evaluationCutoff)}, +${options.horizonDays} d)`,
  };
}
