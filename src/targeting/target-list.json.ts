import type { TargetList, TargetMember } from './target-list.service.ts';

const CHUNK_MEMBERS = 2_000;

function* memberArray(members: TargetMember[]): Generator<string> {
  for (let from = 0; from < members.length; from += CHUNK_MEMBERS) {
    const text = members
      .slice(from, from + CHUNK_MEMBERS)
      .map((member) => JSON.stringify(member))
      .join(',');
    yield from === 0 ? text : `,${text}`;
  }
}

/**
 * The list as JSON text in chunks, the same document as JSON.stringify(list) with the member
 * arrays last: a large list is sent as it is written instead of as one string.
 */
export function* targetListJson(list: TargetList): Generator<string> {
  const { members, holdout, ...summary } = list;
  const head = JSON.stringify(summary);
  yield `${head.slice(0, -1)}${head === '{}' ? '' : ','}"members":[`;
  yield* memberArray(members);
  yield '],"holdout":[';
  yield* memberArray(holdout);
  yield ']}';
}
