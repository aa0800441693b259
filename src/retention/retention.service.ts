import { type Kysely, sql } from 'kysely';
import type { Database } from '../db/database.ts';
import { type ErasureReceipt, eraseSubject } from '../rights/rights.service.ts';
import { recordRightsAudit } from '../rights/rights-audit.repository.ts';
import { lockSubjectById } from '../rights/subject.repository.ts';
import type { TombstoneKeys } from '../rights/tombstone-keys.ts';
import { inTransaction } from '../rights/transaction.ts';

// Retention (rule 9): a prospect (a person who never bought anything, under any of their
// records) with no interaction of their own since the cutoff is erased, every record of theirs.
// Their interactions are the consent ledger's events, as the CNIL counts prospect retention
// from "the last contact coming from the prospect"; a record created since counts as one.

export interface InactiveProspect {
  /** the person: the id of their first record */
  contactId: number;
  /** when the person's first record was created */
  createdAt: Date;
  /** the latest consent event captured for any of their records, before the cutoff; null if none */
  lastActivityAt: Date | null;
}

function inactiveProspects(inactiveSince: Date, personId?: number) {
  return sql<InactiveProspect>`
    SELECT c.person_id AS "contactId", min(c.created_at) AS "createdAt", max(e.captured_at) AS "lastActivityAt"
    FROM contacts c
    LEFT JOIN consent_events e ON e.contact_id = c.id
    WHERE c.erased_at IS NULL
      ${personId === undefined ? sql`` : sql`AND c.person_id = ${personId}`}
    GROUP BY c.person_id
    HAVING max(c.created_at) < ${inactiveSince}
      AND (max(e.captured_at) IS NULL OR max(e.captured_at) < ${inactiveSince})
      AND NOT EXISTS (SELECT 1 FROM purchases p JOIN contacts r ON r.id = p.contact_id WHERE r.person_id = c.person_id)
    ORDER BY c.person_id`;
}

/** Prospects (persons) whose records were all created before `inactiveSince`, with no purchase ever and no consent-ledger activity since. */
export async function findInactiveProspects(db: Kysely<Database>, inactiveSince: Date): Promise<InactiveProspect[]> {
  return (await inactiveProspects(inactiveSince).execute(db)).rows;
}

export interface PurgeOptions {
  inactiveSince: Date;
  actor: string;
  now: Date;
  /** false (the default): count only, write nothing */
  apply?: boolean;
  /** the keys erasure tombstones are made with (tombstoneKeys(config.tombstones)): required to apply */
  tombstoneKeys?: TombstoneKeys;
}

export interface PurgeReport {
  inactiveSince: string;
  applied: boolean;
  /** inactive prospects found */
  found: number;
  /** found, by year of creation (counts only: a dry run shows no one) */
  foundByCreationYear: Record<string, number>;
  erased: number;
  /** found, but active again or erased by someone else before their turn came */
  skipped: number;
  receipts: ErasureReceipt[];
}

/** Counts the inactive prospects, and with `apply` erases each in its own transaction, with a receipt. */
export async function purgeInactive(db: Kysely<Database>, options: PurgeOptions): Promise<PurgeReport> {
  const { inactiveSince, actor, now } = options;
  const prospects = await findInactiveProspects(db, inactiveSince);
  const receipts: ErasureReceipt[] = [];
  if (options.apply) {
    for (const { contactId } of prospects) {
      const receipt = await eraseIfStillInactive(db, contactId, options);
      if (receipt) receipts.push(receipt);
    }
  }
  const summary = {
    inactiveSince: inactiveSince.toISOString(),
    applied: options.apply ?? false,
    found: prospects.length,
    foundByCreationYear: countByYear(prospects),
    erased: receipts.length,
    skipped: options.apply ? prospects.length - receipts.length : 0,
  };
  if (options.apply) await recordRightsAudit(db, { actor, action: 'retention.purge', personId: null, at: now, details: summary });
  return { ...summary, receipts };
}

/**
 * Checked again under lock: the person may have bought or consented since the list was read,
 * or been linked to another person (whose records are then all checked).
 */
function eraseIfStillInactive(db: Kysely<Database>, personId: number, options: PurgeOptions): Promise<ErasureReceipt | null> {
  return inTransaction(db, async (trx) => {
    const subject = await lockSubjectById(trx, personId);
    if (!subject) return null;
    const { rows } = await inactiveProspects(options.inactiveSince, subject.personId).execute(trx);
    if (rows.length === 0) return null;
    if (!options.tombstoneKeys) throw new Error('a retention purge that erases needs the tombstone keys');
    return eraseSubject(trx, subject, options.actor, options.now, 'retention', options.tombstoneKeys);
  });
}

function countByYear(prospects: InactiveProspect[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { createdAt } of prospects) {
    const year = String(new Date(createdAt).getUTCFullYear());
    counts[year] = (counts[year] ?? 0) + 1;
  }
  return counts;
}
