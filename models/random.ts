/** mulberry32: small, fast, and good enough to sample and shuffle rows reproducibly. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seeded sample of at most `size` items, in ascending order. */
export function sampleIndices(items: readonly number[], size: number, seed: number): number[] {
  if (items.length <= size) return [...items];
  const random = mulberry32(seed);
  const chosen = [...items];
  for (let i = 0; i < size; i++) {
    const j = i + Math.floor(random() * (chosen.length - i));
    [chosen[i], chosen[j]] = [chosen[j] as number, chosen[i] as number];
  }
  return chosen.slice(0, size).sort((a, b) => a - b);
}

/** A seeded Fisher-Yates permutation of 0..rows-1. */
export function shuffledRows(rows: number, random: () => number): Uint32Array {
  const order = new Uint32Array(rows);
  for (let i = 0; i < rows; i++) order[i] = i;
  for (let i = rows - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const swap = order[i] as number;
    order[i] = order[j] as number;
    order[j] = swap;
  }
  return order;
}

/**
 * Where a person falls in [0, 1), from their id and a seed: the same person always lands on the
 * same side of a split, whichever rows (cutoffs) they appear in.
 */
export function personShare(contactId: number, seed: number): number {
  return mulberry32((Math.imul(contactId | 0, 0x9e3779b1) ^ Math.imul(Math.floor(contactId / 2 ** 32), 0x85ebca6b) ^ seed) >>> 0)();
}
