import { CONTACT_SUFFIXES, formatPhone, PHONE_KEY_SPACE, SUFFIXES_PER_PREFIX } from './people.ts';
import type { Rng } from './random.ts';

const LISTED_SHARE = 0.03;
const OUTSIDERS_PER_LISTED = 0.3;
/** Published lists favour E.164 and the plain ten digits. */
const LIST_FORMAT_WEIGHTS = [0.1, 0.1, 0.4, 0.4];

export interface OppositionList {
  values: string[];
  inBase: number;
  outsideBase: number;
  contactsMatched: number;
}

/**
 * A do-not-call list: about 3% of the numbers held in the base (so about 3% of
 * phone holders whatever the base size, although fiction numbers are shared),
 * plus numbers nobody in the base holds, taken from suffixes kept for that.
 */
export function buildOppositionList(phoneUseCount: Uint32Array, rng: Rng): OppositionList {
  const listed: number[] = [];
  let contactsMatched = 0;
  for (let key = 0; key < PHONE_KEY_SPACE; key++) {
    const holders = phoneUseCount[key] as number;
    if (holders > 0 && rng.chance(LISTED_SHARE)) {
      listed.push(key);
      contactsMatched += holders;
    }
  }
  const outsiders = drawOutsiders(Math.ceil(listed.length * OUTSIDERS_PER_LISTED), rng);
  const values = rng.shuffle([...listed, ...outsiders]).map((key) => formatPhone(key, rng, LIST_FORMAT_WEIGHTS));
  return { values, inBase: listed.length, outsideBase: outsiders.length, contactsMatched };
}

function drawOutsiders(count: number, rng: Rng): number[] {
  const prefixes = PHONE_KEY_SPACE / SUFFIXES_PER_PREFIX;
  const reserved = SUFFIXES_PER_PREFIX - CONTACT_SUFFIXES;
  const chosen = new Set<number>();
  const wanted = Math.min(count, prefixes * reserved);
  while (chosen.size < wanted) {
    chosen.add(rng.int(prefixes) * SUFFIXES_PER_PREFIX + CONTACT_SUFFIXES + rng.int(reserved));
  }
  return [...chosen];
}
