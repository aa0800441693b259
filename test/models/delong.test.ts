import { describe, expect, it } from 'vitest';
import { aucInterval, pairedAucDifference } from '../../models/delong.ts';
import { rocAuc } from '../../models/metrics.ts';
import { mulberry32 } from '../../models/random.ts';

/** DeLong by its definition: every (positive, negative) pair's ψ, placements as row means, O(m·n). */
function bruteDelong(labels: Uint8Array, a: number[], b: number[]) {
  const pos = [...labels.keys()].filter((i) => labels[i]);
  const neg = [...labels.keys()].filter((i) => !labels[i]);
  const psi = (x: number, y: number) => (x > y ? 1 : x === y ? 0.5 : 0);
  const v10 = (s: number[]) => pos.map((i) => neg.reduce((sum, j) => sum + psi(s[i]!, s[j]!), 0) / neg.length);
  const v01 = (s: number[]) => neg.map((j) => pos.reduce((sum, i) => sum + psi(s[i]!, s[j]!), 0) / pos.length);
  const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
  const cov = (u: number[], v: number[]) => {
    const mu = mean(u);
    const mv = mean(v);
    return u.reduce((s, x, k) => s + (x - mu) * (v[k]! - mv), 0) / (u.length - 1);
  };
  const [a10, b10, a01, b01] = [v10(a), v10(b), v01(a), v01(b)];
  const varA = cov(a10, a10) / pos.length + cov(a01, a01) / neg.length;
  const varDiff =
    (cov(a10, a10) + cov(b10, b10) - 2 * cov(a10, b10)) / pos.length + (cov(a01, a01) + cov(b01, b01) - 2 * cov(a01, b01)) / neg.length;
  return { aucA: mean(a10), aucB: mean(b10), seA: Math.sqrt(varA), seDiff: Math.sqrt(varDiff) };
}

function sample(rows: number, seed: number) {
  const random = mulberry32(seed);
  const labels = new Uint8Array(rows);
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < rows; i++) {
    labels[i] = random() < 0.3 ? 1 : 0;
    // rounded scores: many ties, which midranks must count as half
    a.push(Math.round((labels[i]! * 0.8 + random()) * 10) / 10);
    b.push(Math.round((labels[i]! * 0.4 + random() + 0.3 * a[i]!) * 20) / 20);
  }
  return { labels, a, b };
}

describe('DeLong AUC intervals', () => {
  it('match the pairwise definition, ties included, for one AUC and for a paired difference', () => {
    for (const seed of [1, 2, 3]) {
      const { labels, a, b } = sample(300, seed);
      const brute = bruteDelong(labels, a, b);
      const one = aucInterval(labels, a);
      expect(one?.auc).toBeCloseTo(rocAuc(labels, a), 12);
      expect(one?.auc).toBeCloseTo(brute.aucA, 12);
      expect(one?.se).toBeCloseTo(brute.seA, 12);
      expect(one?.low).toBeCloseTo(brute.aucA - 1.959964 * brute.seA, 5);
      const paired = pairedAucDifference(labels, a, b);
      expect(paired?.difference).toBeCloseTo(brute.aucA - brute.aucB, 12);
      expect(paired?.se).toBeCloseTo(brute.seDiff, 12);
    }
  });

  it('a model compared with itself differs by 0 with p = 1; a clearly better one is significant', () => {
    const { labels, a } = sample(2000, 9);
    expect(pairedAucDifference(labels, a, a)).toMatchObject({ difference: 0, se: 0, p: 1 });
    const random = mulberry32(4);
    const noise = a.map(() => random());
    const better = pairedAucDifference(labels, a, noise);
    expect(better?.difference).toBeGreaterThan(0.1);
    expect(better?.low).toBeGreaterThan(0);
    expect(better?.p).toBeLessThan(1e-6);
  });

  it('is null when the rows hold one class only', () => {
    expect(aucInterval(new Uint8Array(5), [1, 2, 3, 4, 5])).toBeNull();
    expect(pairedAucDifference(Uint8Array.from([1, 1]), [1, 2], [2, 1])).toBeNull();
  });
});
