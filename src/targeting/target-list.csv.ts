import { csvLines } from '../csv/csv-writer.ts';
import type { DatabaseHandle } from '../db/engine.ts';
import { type ListLine, type RecordedTargetList, recordedMembers, type TargetMember } from './target-list.service.ts';

export const TARGET_CSV_COLUMNS = [
  'group',
  'position',
  'external_id',
  'contact',
  'score',
  'percentile',
  'rank',
  'reason_1',
  'reason_2',
  'reason_3',
  'consent_event_ids',
] as const;

function line(member: TargetMember, isHoldout: boolean): unknown[] {
  return [
    isHoldout ? 'holdout' : 'contact',
    member.position,
    member.externalId,
    member.contact,
    member.score,
    member.percentile,
    member.rank,
    member.reasons[0]?.feature ?? '',
    member.reasons[1]?.feature ?? '',
    member.reasons[2]?.feature ?? '',
    member.consentEventIds.join(' '),
  ];
}

/**
 * A recorded list as CSV text in chunks (header first), read from its manifest as it is sent:
 * members to contact, then the holdout, told apart by the `group` column so the control group
 * travels with the list.
 */
export async function* targetListCsv(database: Pick<DatabaseHandle, 'db' | 'pool'>, recorded: RecordedTargetList): AsyncGenerator<string> {
  yield csvLines([[...TARGET_CSV_COLUMNS]]);
  for await (const lines of recordedMembers(database, recorded)) yield targetCsvRows(lines);
}

/** CSV rows of list members (no header). */
export function targetCsvRows(lines: readonly ListLine[]): string {
  return csvLines(lines.map(({ member, isHoldout }) => line(member, isHoldout)));
}
