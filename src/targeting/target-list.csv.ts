import { csvLines } from '../csv/csv-writer.ts';
import type { TargetList, TargetMember } from './target-list.service.ts';

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

const CHUNK_ROWS = 5_000;

function line(group: 'contact' | 'holdout', member: TargetMember): unknown[] {
  return [
    group,
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
 * The list as CSV text in chunks (header first): members to contact, then the holdout,
 * told apart by the `group` column so the control group travels with the list.
 */
export function* targetListCsv(list: TargetList): Generator<string> {
  yield csvLines([[...TARGET_CSV_COLUMNS]]);
  const rows: Array<['contact' | 'holdout', TargetMember]> = [
    ...list.members.map((member) => ['contact', member] as ['contact', TargetMember]),
    ...list.holdout.map((member) => ['holdout', member] as ['holdout', TargetMember]),
  ];
  for (let from = 0; from < rows.length; from += CHUNK_ROWS) {
    yield csvLines(rows.slice(from, from + CHUNK_ROWS).map(([group, member]) => line(group, member)));
  }
}
