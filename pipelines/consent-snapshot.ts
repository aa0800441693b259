import { type Kysely, sql } from 'kysely';
import { countingConsents } from '../src/consent/eligibility.ts';
import type { Database } from '../src/db/database.ts';

export interface ConsentSnapshot {
  runId: number;
  /** the instant consent was judged at (the run's as-of) */
  at: Date;
  size: number;
}

/**
 * Stage 1: who may be profiled. Everyone the pipeline touches later (training rows,
 * evaluation rows, scores) is read through this snapshot, never from contacts directly.
 * `live` reads the consent state kept with the ledger (a run about now); otherwise the
 * ledger as of `at` (a run as if today were `at`).
 */
export async function takeConsentSnapshot(db: Kysely<Database>, runId: number, at: Date, live: boolean): Promise<ConsentSnapshot> {
  // One row per person (countingConsents gives person ids: the primary record's id).
  // known_since: the earlier of the first purchase and the first profiling grant over all the
  // person's records; a person unknown at a cutoff cannot be a training row at that cutoff. Both
  // are minima, so nothing that happens after a cutoff can change whether someone was known before it.
  const result = await sql`
    INSERT INTO profiling_snapshots (run_id, contact_id, consent_event_id, known_since)
    SELECT ${runId}, p.contact_id, p.event_id,
      least(
        (SELECT min(e.captured_at) FROM contacts r JOIN consent_events e ON e.contact_id = r.id
         WHERE r.person_id = p.contact_id AND e.purpose = 'profiling' AND e.status = 'granted'),
        (SELECT min(pu.purchased_at) FROM contacts r JOIN purchases pu ON pu.contact_id = r.id WHERE r.person_id = p.contact_id))
    FROM ${countingConsents('profiling', null, at, live)} p
    JOIN contacts c ON c.id = p.contact_id AND c.erased_at IS NULL`.execute(db);
  await sql`ANALYZE profiling_snapshots`.execute(db);
  return { runId, at, size: Number(result.numAffectedRows ?? 0n) };
}
