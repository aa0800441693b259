/** Per-column mean and scale of a training matrix; networks see (x - mean) / scale. */
export interface Standardisation {
  mean: Float32Array;
  scale: Float32Array;
}

export function fitStandardisation(x: Float32Array, rows: number, columns: number): Standardisation {
  const sum = new Float64Array(columns);
  const squares = new Float64Array(columns);
  for (let row = 0; row < rows; row++) {
    const base = row * columns;
    for (let column = 0; column < columns; column++) {
      const value = x[base + column] as number;
      sum[column] = (sum[column] as number) + value;
      squares[column] = (squares[column] as number) + value * value;
    }
  }
  const mean = new Float32Array(columns);
  const scale = new Float32Array(columns);
  for (let column = 0; column < columns; column++) {
    const average = rows > 0 ? (sum[column] as number) / rows : 0;
    const variance = rows > 0 ? Math.max(0, (squares[column] as number) / rows - average * average) : 0;
    mean[column] = average;
    // a constant column (e.g. a product nobody bought yet) stays at 0 instead of dividing by 0
    scale[column] = variance > 1e-12 ? Math.sqrt(variance) : 1;
  }
  return { mean, scale };
}

/** Writes standardised rows [from, to) of `x` into `out` (which holds (to - from) rows). */
export function standardiseRows(
  x: Float32Array,
  from: number,
  to: number,
  columns: number,
  standardisation: Standardisation,
  out: Float32Array,
): Float32Array {
  const { mean, scale } = standardisation;
  for (let row = from; row < to; row++) {
    const source = row * columns;
    const target = (row - from) * columns;
    for (let column = 0; column < columns; column++) {
      out[target + column] = ((x[source + column] as number) - (mean[column] as number)) / (scale[column] as number);
    }
  }
  return out;
}

export function standardisationToJson(standardisation: Standardisation): { mean: number[]; scale: number[] } {
  return { mean: Array.from(standardisation.mean), scale: Array.from(standardisation.scale) };
}

export function standardisationFromJson(json: { mean: number[]; scale: number[] }): Standardisation {
  return { mean: Float32Array.from(json.mean), scale: Float32Array.from(json.scale) };
}
