// fmin 0.0.4 ships no types. Its "main" (build/fmin.js) is a UMD bundle inside a
// "type": "module" package: under Node the module namespace is empty and the
// bundle assigns globalThis.fmin instead, so the export is declared optional.
declare module 'fmin' {
  export interface NelderMeadOptions {
    /** default x0.length * 200 (0 also means the default) */
    maxIterations?: number;
    /** also used as the tolerance on the best two vertices (a quirk of fmin) */
    minErrorDelta?: number;
    /** initial simplex: non-zero coordinates are multiplied by this */
    nonZeroDelta?: number;
    /** initial simplex: step for zero coordinates */
    zeroDelta?: number;
    rho?: number;
    chi?: number;
    psi?: number;
    /** shrink factor; >= 1 stops instead of shrinking */
    sigma?: number;
    /** receives one entry per iteration */
    history?: { push(entry: unknown): unknown };
  }

  export interface NelderMeadResult {
    fx: number;
    x: number[];
  }

  export type NelderMead = (f: (x: number[]) => number, x0: number[], options?: NelderMeadOptions) => NelderMeadResult;

  export const nelderMead: NelderMead | undefined;
}
