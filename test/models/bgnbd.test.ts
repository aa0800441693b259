import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  type BgNbdParams,
  type BgNbdSummary,
  bgNbdLogLikelihood,
  expectedPurchases,
  expectedPurchasesBatch,
  fitBgNbd,
  probabilityAlive,
} from '../../models/bgnbd.ts';

// Fader, Hardie & Lee (2005), section 7: the CDNOW sample, in weeks.
const CDNOW_SUMMARY = '/work/shared/data/cdnow-sample/cdnow_customers_summary.csv';
const PUBLISHED: BgNbdParams = { r: 0.243, alpha: 4.414, a: 0.793, b: 2.426 };
const PUBLISHED_LOG_LIKELIHOOD = -9582.4;

function readCdnow(): BgNbdSummary {
  const lines = readFileSync(CDNOW_SUMMARY, 'utf8').trim().split(/\r?\n/);
  expect(lines[0]).toBe('ID,frequency,recency,T');
  const rows = lines.slice(1);
  const x = new Float64Array(rows.length);
  const tx = new Float64Array(rows.length);
  const T = new Float64Array(rows.length);
  rows.forEach((line, i) => {
    const [, frequency, recency, age] = line.split(',');
    x[i] = Number(frequency);
    tx[i] = Number(recency);
    T[i] = Number(age);
  });
  return { x, tx, T };
}

const toSignificant = (v: number, digits: number): number => Number(v.toPrecision(digits));
const summary = (rows: [number, number, number][]): BgNbdSummary => ({
  x: Float64Array.from(rows, (r) => r[0]),
  tx: Float64Array.from(rows, (r) => r[1]),
  T: Float64Array.from(rows, (r) => r[2]),
});

describe('BG/NBD on the CDNOW sample of the paper', () => {
  const data = readCdnow();

  it('reads the 2,357 customers', () => {
    expect(data.x.length).toBe(2357);
  });

  it('finds the published estimates and log-likelihood to 3 significant figures', () => {
    const fit = fitBgNbd(data);
    expect(fit.converged).toBe(true);
    for (const key of ['r', 'alpha', 'a', 'b'] as const) {
      expect(toSignificant(fit.params[key], 3), key).toBe(toSignificant(PUBLISHED[key], 3));
    }
    expect(toSignificant(fit.logLikelihood, 3)).toBe(toSignificant(PUBLISHED_LOG_LIKELIHOOD, 3));
    // The paper prints one decimal: -9582.4.
    expect(Math.abs(fit.logLikelihood - PUBLISHED_LOG_LIKELIHOOD)).toBeLessThan(0.05);
    expect(fit.logLikelihood).toBeCloseTo(bgNbdLogLikelihood(fit.params, data), 9);
  });

  it('computes the log-likelihood at the published estimates (reference: mpmath, 50 digits)', () => {
    expect(bgNbdLogLikelihood(PUBLISHED, data)).toBeCloseTo(-9582.42683118, 6);
  });

  it('gives the same fit whatever the time unit', () => {
    const weeks = fitBgNbd(data);
    const days = fitBgNbd({ x: data.x, tx: data.tx.map((v) => v * 7), T: data.T.map((v) => v * 7) });
    expect(days.params.r).toBeCloseTo(weeks.params.r, 5);
    expect(days.params.alpha / 7).toBeCloseTo(weeks.params.alpha, 4);
    expect(days.params.a).toBeCloseTo(weeks.params.a, 5);
    expect(days.params.b).toBeCloseTo(weeks.params.b, 4);
    // Densities in days differ from densities in weeks by 1/7 per repeat transaction.
    const repeats = data.x.reduce((s, v) => s + v, 0);
    expect(days.logLikelihood).toBeCloseTo(weeks.logLikelihood - repeats * Math.log(7), 5);
  });

  it('weights count identical customers', () => {
    const groups = new Map<string, { x: number; tx: number; T: number; n: number }>();
    for (let i = 0; i < data.x.length; i++) {
      const key = `${data.x[i]}|${data.tx[i]}|${data.T[i]}`;
      const g = groups.get(key);
      if (g) g.n++;
      else groups.set(key, { x: data.x[i]!, tx: data.tx[i]!, T: data.T[i]!, n: 1 });
    }
    const list = [...groups.values()];
    expect(list.length).toBeLessThan(data.x.length);
    const grouped: BgNbdSummary = {
      x: Float64Array.from(list, (g) => g.x),
      tx: Float64Array.from(list, (g) => g.tx),
      T: Float64Array.from(list, (g) => g.T),
      weight: Float64Array.from(list, (g) => g.n),
    };
    expect(bgNbdLogLikelihood(PUBLISHED, grouped)).toBeCloseTo(bgNbdLogLikelihood(PUBLISHED, data), 8);
  });
});

describe('BG/NBD predictions', () => {
  it("reproduces the paper's worked example: 1.226 purchases in the next 39 weeks", () => {
    // Customer with x = 2, t_x = 30.43, T = 38.86 under the published estimates.
    // Reference values: the untransformed formula evaluated with mpmath (50 digits).
    const e = expectedPurchases(PUBLISHED, 2, 30.43, 38.86, 39);
    expect(e.toFixed(3)).toBe('1.226');
    expect(e).toBeCloseTo(1.22602817476714, 10);
    expect(probabilityAlive(PUBLISHED, 2, 30.43, 38.86)).toBeCloseTo(0.726578570081, 10);
  });

  it('says a customer without repeat purchase is alive', () => {
    for (const T of [0, 1, 38.86, 1000]) expect(probabilityAlive(PUBLISHED, 0, 0, T)).toBe(1);
    const { alive } = expectedPurchasesBatch(
      PUBLISHED,
      summary([
        [0, 0, 5],
        [0, 0, 50],
      ]),
      39,
    );
    expect([...alive]).toEqual([1, 1]);
  });

  it('expects more purchases from more frequent customers who bought recently', () => {
    for (const tx of [37, 38.86]) {
      let previous = expectedPurchases(PUBLISHED, 0, 0, 38.86, 39);
      for (let x = 1; x <= 30; x++) {
        const e = expectedPurchases(PUBLISHED, x, tx, 38.86, 39);
        expect(e, `x = ${x}, tx = ${tx}`).toBeGreaterThan(previous);
        previous = e;
      }
    }
  });

  it('doubts more about a frequent buyer than an occasional one after the same silence', () => {
    // Last purchase 8 weeks ago: normal for someone who bought twice, worrying for someone who bought 30 times.
    const alive = [2, 10, 30].map((x) => probabilityAlive(PUBLISHED, x, 30.43, 38.86));
    expect(alive[0]).toBeGreaterThan(alive[1]!);
    expect(alive[1]).toBeGreaterThan(alive[2]!);
    expect(alive[2]).toBeLessThan(0.1);
  });

  it('expects nothing over an empty horizon and grows with the horizon', () => {
    expect(expectedPurchases(PUBLISHED, 3, 20, 30, 0)).toBe(0);
    expect(expectedPurchases(PUBLISHED, 3, 20, 30, 52)).toBeGreaterThan(expectedPurchases(PUBLISHED, 3, 20, 30, 26));
  });

  it('stays accurate where hyp2f1 needs care (references: mpmath, 50 digits)', () => {
    const cases: [BgNbdParams, number, number, number, number, number, number][] = [
      // x = 250, z = 0.945: the untransformed 2F1 is ~1e+300 and stdlib returns NaN for it (c - a - b integer, c > 170)
      [{ r: 0.5, alpha: 3.1, a: 0.5, b: 2.2 }, 250, 19.9, 20, 400, 1636.48956194792, 1e-9],
      // a = 1: removable singularity of c/(a-1) · [...]
      [{ r: 0.37, alpha: 3.1, a: 1, b: 2.2 }, 4, 14, 20, 39, 2.79905071616478, 1e-8],
      // x = 0 and a + b = 1: c = 0 makes 2F1 infinite and its factor c zero
      [{ r: 0.37, alpha: 3.1, a: 0.4, b: 0.6 }, 0, 0, 20, 39, 0.46628931407134, 1e-9],
      // a + b = 1e6 (nearly the same p for everyone): the transformed 2F1 overflows
      [{ r: 0.24, alpha: 4.4, a: 2e5, b: 8e5 }, 3, 20, 30, 52, 1.63304812796423, 1e-9],
    ];
    for (const [params, x, tx, T, t, reference, tolerance] of cases) {
      const e = expectedPurchases(params, x, tx, T, t);
      expect(Math.abs(e / reference - 1), JSON.stringify({ params, x })).toBeLessThan(tolerance);
    }
  });

  it('computes the batch like the scalar functions', () => {
    const data = summary([
      [0, 0, 38.86],
      [1, 1.71, 38.86],
      [2, 30.43, 38.86],
      [5, 20, 30],
      [29, 37, 38],
    ]);
    const { expected, alive } = expectedPurchasesBatch(PUBLISHED, data, 39);
    expect(expected).toBeInstanceOf(Float64Array);
    expect(alive).toBeInstanceOf(Float64Array);
    for (let i = 0; i < data.x.length; i++) {
      const [x, tx, T] = [data.x[i]!, data.tx[i]!, data.T[i]!];
      expect(expected[i]).toBe(expectedPurchases(PUBLISHED, x, tx, T, 39));
      expect(alive[i]).toBe(probabilityAlive(PUBLISHED, x, tx, T));
    }
  });
});

describe('BG/NBD input checks and degenerate data', () => {
  const good = summary([
    [0, 0, 10],
    [2, 5, 10],
  ]);

  it('names the offending field and index', () => {
    const bad = (patch: Partial<Record<'x' | 'tx' | 'T' | 'weight', number[]>>): BgNbdSummary => ({
      x: Float64Array.from(patch.x ?? [0, 2]),
      tx: Float64Array.from(patch.tx ?? [0, 5]),
      T: Float64Array.from(patch.T ?? [10, 10]),
      ...(patch.weight ? { weight: Float64Array.from(patch.weight) } : {}),
    });
    const ll = (d: BgNbdSummary) => () => bgNbdLogLikelihood(PUBLISHED, d);
    expect(ll(bad({ tx: [0] }))).toThrow(/same length.*tx: 1/);
    expect(ll(bad({ weight: [1] }))).toThrow(/same length.*weight: 1/);
    expect(ll(bad({ x: [0, 1.5] }))).toThrow(/x\[1\] = 1.5 must be an integer >= 0/);
    expect(ll(bad({ x: [-1, 2] }))).toThrow(/x\[0\] = -1/);
    expect(ll(bad({ tx: [0, Number.NaN] }))).toThrow(/tx\[1\] = NaN/);
    expect(ll(bad({ T: [10, -3] }))).toThrow(/T\[1\] = -3/);
    expect(ll(bad({ T: [10, Number.POSITIVE_INFINITY] }))).toThrow(/T\[1\] = Infinity/);
    expect(ll(bad({ tx: [0, 12] }))).toThrow(/tx\[1\] = 12 exceeds T\[1\] = 10/);
    expect(ll(bad({ tx: [3, 5] }))).toThrow(/tx\[0\] = 3 but x\[0\] = 0/);
    expect(ll(bad({ weight: [1, -2] }))).toThrow(/weight\[1\] = -2/);
    expect(() => expectedPurchasesBatch(PUBLISHED, bad({ tx: [0, 12] }), 39)).toThrow(/tx\[1\]/);
    expect(() => fitBgNbd(bad({ x: [0, Number.NaN] }))).toThrow(/x\[1\] = NaN/);
  });

  it('rejects bad parameters and horizons', () => {
    expect(() => bgNbdLogLikelihood({ ...PUBLISHED, a: 0 }, good)).toThrow(/a = 0 must be a finite number > 0/);
    expect(() => probabilityAlive({ ...PUBLISHED, r: Number.NaN }, 1, 1, 2)).toThrow(/r = NaN/);
    expect(() => expectedPurchases(PUBLISHED, 1, 1, 2, -1)).toThrow(/horizon t = -1/);
    expect(() => expectedPurchases(PUBLISHED, 1, 3, 2, 5)).toThrow(/tx = 3 exceeds T = 2/);
    expect(() => fitBgNbd(good, { maxIterations: 0 })).toThrow(/maxIterations/);
  });

  it('refuses to fit when nobody bought again, or nobody at all', () => {
    expect(() =>
      fitBgNbd(
        summary([
          [0, 0, 10],
          [0, 0, 20],
        ]),
      ),
    ).toThrow(/no customer has a repeat transaction/);
    expect(() => fitBgNbd(summary([]))).toThrow(/no customer/);
    expect(() => fitBgNbd({ ...good, weight: Float64Array.from([0, 0]) })).toThrow(/no customer/);
  });

  it('returns a finite best point, not converged, when the data do not identify the model', () => {
    // Everyone bought at the very end of the period: no drop-out is ever observed, so a -> 0.
    const rows: [number, number, number][] = [];
    for (let i = 0; i < 300; i++) rows.push([1 + (i % 7), 10 + (i % 50), 10 + (i % 50)]);
    const fit = fitBgNbd(summary(rows));
    expect(fit.converged).toBe(false);
    expect(Number.isFinite(fit.logLikelihood)).toBe(true);
    for (const v of Object.values(fit.params)) expect(v).toBeGreaterThan(0);

    const single = fitBgNbd(summary([[3, 5, 10]]));
    expect(single.converged).toBe(false);
    expect(Number.isFinite(single.logLikelihood)).toBe(true);
  });

  it('stops at the iteration budget and says so', () => {
    const fit = fitBgNbd(readCdnow(), { maxIterations: 10 });
    expect(fit.iterations).toBe(10);
    expect(fit.converged).toBe(false);
    expect(Number.isFinite(fit.logLikelihood)).toBe(true);
  });
});
