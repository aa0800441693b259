import type { ListLine, RecordedTargetList } from './target-list.service.ts';

/**
 * The list as JSON text in chunks, the same document as JSON.stringify of the whole list with
 * the member arrays last: the members (contacts first, then the holdout, as recordedMembers
 * reads them) are written as they are read instead of as one string.
 */
export async function* targetListJson(list: RecordedTargetList['list'], lines: AsyncIterable<ListLine[]>): AsyncGenerator<string> {
  const head = JSON.stringify(list);
  yield `${head.slice(0, -1)}${head === '{}' ? '' : ','}"members":[`;
  let inHoldout = false;
  let first = true;
  for await (const chunk of lines) {
    let text = '';
    for (const { member, isHoldout } of chunk) {
      if (isHoldout && !inHoldout) {
        inHoldout = true;
        text += '],"holdout":[';
        first = true;
      }
      text += `${first ? '' : ','}${JSON.stringify(member)}`;
      first = false;
    }
    yield text;
  }
  yield inHoldout ? ']}' : '],"holdout":[]}';
}
