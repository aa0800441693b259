/**
 * BG/NBD ("buy till you die") model of Fader, Hardie & Lee (2005), "Counting
 * your customers the easy way". Per customer: x repeat transactions, the last
 * one at t_x, observed for T time units since the first one (any time unit, as
 * long as it is the same for tx, T and the horizon t).
 */
import betaln from '@stdlib/math-base-special-betaln';
import gammaln from '@stdlib/math-base-special-gammaln';
import hyp2f1 from '@stdlib/math-base-special-hyp2f1';
import type { NelderMead } from 'fmin';
import * as fminModule from 'fmin';

export interface BgNbdParams {
  r: number;
  alpha: number;
  a: number;
  b: number;
}

/** One entry per customer (or per group of identical customers when weight is given). */
export interface BgNbdSummary {
  x: Float64Array;
  tx: Float64Array;
  T: Float64Array;
  /** number of identical customers the row stands for */
  weight?: Float64Array;
}

export interface BgNbdFitOptions {
  /** Nelder-Mead iterations in total, over all restarts (default 5000) */
  maxIterations?: number;
  /** starting point (default: unit shapes and the observed mean purchase rate) */
  initial?: BgNbdParams;
}

export interface BgNbdFit {
  params: BgNbdParams;
  logLikelihood: number;
  iterations: number;
  /** false when the iteration budget ran out or a parameter ran off towards 0 or infinity (not identified by the data) */
  converged: boolean;
}

export interface BgNbdPredictions {
  expected: Float64Array;
  alive: Float64Array;
}

// ---------------------------------------------------------------------------
// validation

function checkParams(params: BgNbdParams): void {
  for (const key of ['r', 'alpha', 'a', 'b'] as const) {
    const v = params[key];
    if (!(Number.isFinite(v) && v > 0)) {
      throw new Error(`BG/NBD params: ${key} = ${v} must be a finite number > 0`);
    }
  }
}

function checkCustomer(x: number, tx: number, T: number, where: string): void {
  if (!(Number.isInteger(x) && x >= 0)) {
    throw new Error(`BG/NBD data: x${where} = ${x} must be an integer >= 0`);
  }
  if (!(Number.isFinite(tx) && tx >= 0)) {
    throw new Error(`BG/NBD data: tx${where} = ${tx} must be a finite number >= 0`);
  }
  if (!(Number.isFinite(T) && T >= 0)) {
    throw new Error(`BG/NBD data: T${where} = ${T} must be a finite number >= 0`);
  }
  if (tx > T) {
    throw new Error(`BG/NBD data: tx${where} = ${tx} exceeds T${where} = ${T}`);
  }
  // t_x is measured from the first transaction, so without repeat it is 0;
  // anything else usually means swapped or mis-built columns.
  if (x === 0 && tx !== 0) {
    throw new Error(`BG/NBD data: tx${where} = ${tx} but x${where} = 0 (no repeat transaction means tx = 0)`);
  }
}

function checkSummary(data: BgNbdSummary): number {
  const { x, tx, T, weight } = data;
  const n = x.length;
  if (tx.length !== n || T.length !== n || (weight !== undefined && weight.length !== n)) {
    const lengths = `x: ${n}, tx: ${tx.length}, T: ${T.length}${weight ? `, weight: ${weight.length}` : ''}`;
    throw new Error(`BG/NBD data: arrays must have the same length (${lengths})`);
  }
  for (let i = 0; i < n; i++) {
    checkCustomer(x[i]!, tx[i]!, T[i]!, `[${i}]`);
    if (weight !== undefined) {
      const w = weight[i]!;
      if (!(Number.isFinite(w) && w >= 0)) {
        throw new Error(`BG/NBD data: weight[${i}] = ${w} must be a finite number >= 0`);
      }
    }
  }
  return n;
}

function checkHorizon(t: number): void {
  if (!(Number.isFinite(t) && t >= 0)) {
    throw new Error(`BG/NBD: horizon t = ${t} must be a finite number >= 0`);
  }
}

// ---------------------------------------------------------------------------
// log-likelihood

/**
 * Sum over customers of
 *   ln A1 + ln A2 + ln(A3 + [x > 0] A4), with
 *   A1 = Γ(r+x) α^r / Γ(r), A2 = B(a, b+x) / B(a, b), A3 = (α+T)^-(r+x),
 *   A4 = a / (b+x-1) · (α+t_x)^-(r+x).
 * Inputs are assumed valid.
 */
function logLikelihoodUnchecked(p: BgNbdParams, data: BgNbdSummary, n: number): number {
  const { r, alpha, a, b } = p;
  const { x, tx, T, weight } = data;
  const lnGammaR = gammaln(r);
  const lnAlpha = Math.log(alpha);
  const lnBetaAB = betaln(a, b);
  const lnA = Math.log(a);
  // ln A1 + ln A2 depends on x only, so it is tabulated per x when that is cheaper than per row.
  const head = (k: number): number => gammaln(r + k) - lnGammaR + r * lnAlpha + betaln(a, b + k) - lnBetaAB;

  let maxX = 0;
  for (let i = 0; i < n; i++) if (x[i]! > maxX) maxX = x[i]!;
  const tabulate = maxX < n;
  const headTable = new Float64Array(tabulate ? maxX + 1 : 0);
  const a4Table = new Float64Array(tabulate ? maxX + 1 : 0);
  if (tabulate) {
    for (let k = 0; k <= maxX; k++) {
      headTable[k] = head(k);
      a4Table[k] = k > 0 ? lnA - Math.log(b + k - 1) : 0;
    }
  }

  let sum = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[i]!;
    let ll: number;
    if (xi === 0) {
      // A1·A2·A3 = (α / (α+T))^r
      ll = -r * Math.log1p(T[i]! / alpha);
    } else {
      const rx = r + xi;
      const l3 = -rx * Math.log(alpha + T[i]!);
      const l4 = (tabulate ? a4Table[xi]! : lnA - Math.log(b + xi - 1)) - rx * Math.log(alpha + tx[i]!);
      const lse = l3 > l4 ? l3 + Math.log1p(Math.exp(l4 - l3)) : l4 + Math.log1p(Math.exp(l3 - l4));
      ll = (tabulate ? headTable[xi]! : head(xi)) + lse;
    }
    sum += weight === undefined ? ll : weight[i]! * ll;
  }
  return sum;
}

/** Total (weighted) log-likelihood of the data under the BG/NBD model. */
export function bgNbdLogLikelihood(params: BgNbdParams, data: BgNbdSummary): number {
  checkParams(params);
  const n = checkSummary(data);
  return logLikelihoodUnchecked(params, data, n);
}

// ---------------------------------------------------------------------------
// fit

/**
 * Merges identical (x, tx, T) rows into weights (real bases repeat them a lot, and
 * every optimiser step scans the data) and divides times by timeScale.
 */
function compress(data: BgNbdSummary, n: number, timeScale: number): { data: BgNbdSummary; n: number } {
  const index = new Map<string, number>();
  const x = new Float64Array(n);
  const tx = new Float64Array(n);
  const T = new Float64Array(n);
  const weight = new Float64Array(n);
  let m = 0;
  for (let i = 0; i < n; i++) {
    const w = data.weight === undefined ? 1 : data.weight[i]!;
    if (w === 0) continue;
    const key = `${data.x[i]!}|${data.tx[i]!}|${data.T[i]!}`;
    const j = index.get(key);
    if (j === undefined) {
      index.set(key, m);
      x[m] = data.x[i]!;
      tx[m] = data.tx[i]! / timeScale;
      T[m] = data.T[i]! / timeScale;
      weight[m] = w;
      m++;
    } else {
      weight[j]! += w;
    }
  }
  return {
    data: { x: x.subarray(0, m), tx: tx.subarray(0, m), T: T.subarray(0, m), weight: weight.subarray(0, m) },
    n: m,
  };
}

function resolveNelderMead(): NelderMead {
  const fromGlobal = (globalThis as { fmin?: { nelderMead?: NelderMead } }).fmin?.nelderMead;
  const fn = fminModule.nelderMead ?? fromGlobal;
  if (typeof fn !== 'function') throw new Error('fmin: nelderMead not found (neither as an export nor as globalThis.fmin)');
  return fn;
}

// The fit runs on times divided by the mean T, so alpha is unit-free like r, a and b.
// Log-parameters outside ±LOG_BOUND are rejected (the likelihood is flat to double
// precision long before), and a fit ending beyond ±IDENTIFIED_LOG (about 3e-7 .. 3e6)
// has a parameter running off to 0 or infinity: the data do not pin it down.
const LOG_BOUND = 30;
const IDENTIFIED_LOG = 15;
const PENALTY = Number.MAX_VALUE;
const DEFAULT_MAX_ITERATIONS = 5000;
const MAX_RESTARTS = 50;
// On the per-customer mean log-likelihood: NM's own stopping tolerance, then the
// criterion for "a fresh restart no longer moves the optimum".
const NM_TOLERANCE = 1e-10;
const RESTART_F_TOLERANCE = 1e-11;
const RESTART_X_TOLERANCE = 1e-7;
// initial simplex size in log-parameters, for the first run and for restarts
const FIRST_STEP = 0.5;
const RESTART_STEP = 0.1;

const toParams = (theta: readonly number[], timeScale = 1): BgNbdParams => ({
  r: Math.exp(theta[0]!),
  alpha: Math.exp(theta[1]!) * timeScale,
  a: Math.exp(theta[2]!),
  b: Math.exp(theta[3]!),
});

/** Maximum-likelihood fit with Nelder-Mead (fmin) over log-parameters. */
export function fitBgNbd(data: BgNbdSummary, options: BgNbdFitOptions = {}): BgNbdFit {
  const maxIterations = options.maxIterations ?? DEFAULT_MAX_ITERATIONS;
  if (!(Number.isInteger(maxIterations) && maxIterations >= 1)) {
    throw new Error(`fitBgNbd: maxIterations = ${maxIterations} must be an integer >= 1`);
  }
  const nOriginal = checkSummary(data);

  let totalWeight = 0;
  let sumX = 0;
  let sumT = 0;
  for (let i = 0; i < nOriginal; i++) {
    const w = data.weight === undefined ? 1 : data.weight[i]!;
    totalWeight += w;
    sumX += w * data.x[i]!;
    sumT += w * data.T[i]!;
  }
  if (totalWeight === 0) throw new Error('fitBgNbd: no customer (empty data or all weights 0)');
  // With no repeat transaction at all the likelihood increases without bound as r -> 0 (or alpha -> inf), and a, b are not identified.
  if (sumX === 0) throw new Error('fitBgNbd: no customer has a repeat transaction (all x = 0); the BG/NBD model cannot be fitted');

  const timeScale = sumT > 0 ? sumT / totalWeight : 1;
  const { data: grouped, n } = compress(data, nOriginal, timeScale);
  const objective = (theta: number[]): number => {
    for (let j = 0; j < 4; j++) if (!(Math.abs(theta[j]!) <= LOG_BOUND)) return PENALTY;
    const mean = logLikelihoodUnchecked(toParams(theta), grouped, n) / totalWeight;
    return Number.isFinite(mean) ? -mean : PENALTY;
  };

  let theta: number[];
  if (options.initial !== undefined) {
    checkParams(options.initial);
    const { r, alpha, a, b } = options.initial;
    theta = [Math.log(r), Math.log(alpha / timeScale), Math.log(a), Math.log(b)];
  } else {
    // Unit shapes, and a mean purchase rate r/alpha equal to the observed one, sum x / sum T.
    theta = [0, Math.min(Math.log(totalWeight / sumX), LOG_BOUND / 2), 0, 0];
  }
  let best = objective(theta);

  const nelderMead = resolveNelderMead();
  let iterations = 0;
  let converged = false;
  for (let restart = 0; restart < MAX_RESTARTS && iterations < maxIterations; restart++) {
    let runIterations = 0;
    // fmin builds its first simplex by scaling each coordinate (x * nonZeroDelta), which
    // gives vanishing steps for log-parameters near 0; optimising over u = 1 + (theta - centre) / step
    // from u = (1, 1, 1, 1) turns that into a step of the same size on every parameter.
    const centre = theta;
    const step = restart === 0 ? FIRST_STEP : RESTART_STEP;
    const result = nelderMead((u) => objective(u.map((v, j) => centre[j]! + step * (v - 1))), [1, 1, 1, 1], {
      maxIterations: maxIterations - iterations,
      minErrorDelta: NM_TOLERANCE,
      nonZeroDelta: 2,
      // fmin's shrink step references an undeclared variable and throws in strict
      // mode; sigma >= 1 makes it stop there instead, and the restart loop takes over.
      sigma: 1,
      history: { push: () => ++runIterations },
    });
    iterations += runIterations;
    const next = result.x.map((v, j) => centre[j]! + step * (v - 1));
    const improvement = best - result.fx;
    const moved = Math.max(...next.map((v, j) => Math.abs(v - theta[j]!)));
    if (result.fx <= best) {
      theta = next;
      best = result.fx;
    }
    if (restart > 0 && improvement <= RESTART_F_TOLERANCE && moved <= RESTART_X_TOLERANCE) {
      converged = true;
      break;
    }
  }

  const identified = theta.every((v) => Math.abs(v) <= IDENTIFIED_LOG);
  const params = toParams(theta, timeScale);
  return {
    params,
    logLikelihood: logLikelihoodUnchecked(params, data, nOriginal),
    iterations,
    converged: converged && identified && best < PENALTY,
  };
}

// ---------------------------------------------------------------------------
// predictions

function logOddsDead(p: BgNbdParams, x: number, tx: number, T: number): number {
  // ln[ a/(b+x-1) · ((α+T)/(α+t_x))^(r+x) ], the odds of having dropped out after the last purchase
  return Math.log(p.a) - Math.log(p.b + x - 1) + (p.r + x) * Math.log1p((T - tx) / (p.alpha + tx));
}

function aliveProbability(p: BgNbdParams, x: number, tx: number, T: number): number {
  return x === 0 ? 1 : 1 / (1 + Math.exp(logOddsDead(p, x, tx, T)));
}

/** 1 - exp(lnPow) · f without overflowing exp(lnPow) or f on their own. */
function oneMinusScaled(lnPow: number, f: number): number {
  // Near lnPow = 0 (a near 1 below) both terms are O(lnPow): expm1 and (f - 1) keep the difference accurate.
  if (Math.abs(lnPow) < 0.5) return -Math.expm1(lnPow) - Math.exp(lnPow) * (f - 1);
  return 1 - Math.sign(f) * Math.exp(lnPow + Math.log(Math.abs(f)));
}

/**
 * Expected purchases in (T, T+t] for a customer still alive:
 *   c/(a-1) · [1 - (1-z)^(r+x) · 2F1(r+x, b+x; c; z)],  c = a+b+x-1, z = t/(α+T+t), s = α+T.
 * Euler's transformation 2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z) turns the bracket into
 *   1 - (1-z)^(a-1) · 2F1(a+b-1-r, a-1; c; z),
 * whose 2F1 stays near 1 as x grows instead of overflowing (it passes 1e300 by x ~ 200 when z > 0.9).
 * That form overflows in turn when a and b are large (p nearly the same for every customer),
 * where the original form is well behaved, so it is the fallback.
 */
function aliveExpectationCore(r: number, a: number, b: number, x: number, s: number, t: number): number {
  const c = a + b + x - 1;
  const z = t / (s + t);
  const lnOneMinusZ = -Math.log1p(t / s);
  let bracket = oneMinusScaled((a - 1) * lnOneMinusZ, hyp2f1(a + b - 1 - r, a - 1, c, z));
  if (!Number.isFinite(bracket)) {
    bracket = oneMinusScaled((r + x) * lnOneMinusZ, hyp2f1(r + x, b + x, c, z));
  }
  return (c / (a - 1)) * bracket;
}

// The formula has removable singularities (a = 1, and c = 0 when x = 0 and a+b = 1), and
// stdlib's hyp2f1 (Cephes) misbehaves when C-A-B = x+r+1-a is close to an integer: with
// z >= 0.999 its relative error is about 1e-16 / (distance to the integer), and at an exact
// integer with z > 0.9 and C > ~170 it returns NaN. Near those points the value is
// interpolated linearly between two safe points on either side.
const A_GAP = 1e-5;
const C_GAP = 1e-9;
const D_GAP = 1e-5;

function aliveExpectation(r: number, a: number, b: number, x: number, s: number, t: number): number {
  if (Math.abs(a - 1) < A_GAP) {
    const lo = 1 - 2 * A_GAP;
    const hi = 1 + 2 * A_GAP;
    const eLo = aliveExpectation(r, lo, b, x, s, t);
    const eHi = aliveExpectation(r, hi, b, x, s, t);
    return eLo + ((a - lo) / (hi - lo)) * (eHi - eLo);
  }
  const c = a + b + x - 1;
  if (Math.abs(c) < C_GAP) {
    const lo = b - c - 2 * C_GAP;
    const hi = b - c + 2 * C_GAP;
    const eLo = aliveExpectation(r, a, lo, x, s, t);
    const eHi = aliveExpectation(r, a, hi, x, s, t);
    return eLo + ((b - lo) / (hi - lo)) * (eHi - eLo);
  }
  const d = x + r + 1 - a;
  const offset = d - Math.round(d);
  if (Math.abs(offset) < D_GAP) {
    // r only enters through the first 2F1 parameter, so the shifted r may be <= 0.
    const lo = r - offset - 2 * D_GAP;
    const hi = r - offset + 2 * D_GAP;
    const eLo = aliveExpectationCore(lo, a, b, x, s, t);
    const eHi = aliveExpectationCore(hi, a, b, x, s, t);
    return eLo + ((r - lo) / (hi - lo)) * (eHi - eLo);
  }
  return aliveExpectationCore(r, a, b, x, s, t);
}

function conditionalExpectation(p: BgNbdParams, x: number, tx: number, T: number, t: number, alive: number): number {
  if (t === 0 || alive === 0) return 0;
  const e = alive * aliveExpectation(p.r, p.a, p.b, x, p.alpha + T, t);
  if (!Number.isFinite(e)) {
    // Seen when r is in the thousands or more (no heterogeneity left in the purchase rate):
    // stdlib's hyp2f1 fails there in every transformation tried.
    throw new Error(
      `BG/NBD: hyp2f1 could not evaluate the expected purchases for x = ${x}, tx = ${tx}, T = ${T}, t = ${t} ` +
        `with params ${JSON.stringify(p)} (degenerate parameters?)`,
    );
  }
  return e;
}

/** P(alive | x, t_x, T): 1 for a customer without repeat transaction (the model lets customers drop out only right after a purchase). */
export function probabilityAlive(params: BgNbdParams, x: number, tx: number, T: number): number {
  checkParams(params);
  checkCustomer(x, tx, T, '');
  return aliveProbability(params, x, tx, T);
}

/** E[Y(t) | x, t_x, T]: expected number of transactions in the next t time units. */
export function expectedPurchases(params: BgNbdParams, x: number, tx: number, T: number, t: number): number {
  checkParams(params);
  checkCustomer(x, tx, T, '');
  checkHorizon(t);
  return conditionalExpectation(params, x, tx, T, t, aliveProbability(params, x, tx, T));
}

/** Conditional expectation and P(alive) for every row of the summary. */
export function expectedPurchasesBatch(params: BgNbdParams, data: BgNbdSummary, t: number): BgNbdPredictions {
  checkParams(params);
  checkHorizon(t);
  const n = checkSummary(data);
  const { x, tx, T } = data;
  const expected = new Float64Array(n);
  const alive = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const xi = x[i]!;
    const txi = tx[i]!;
    const Ti = T[i]!;
    const pAlive = aliveProbability(params, xi, txi, Ti);
    alive[i] = pAlive;
    expected[i] = conditionalExpectation(params, xi, txi, Ti, t, pAlive);
  }
  return { expected, alive };
}
