/**
 * Why a target list cannot be served. Messages name the product, channel or parameter,
 * never a person: they may reach logs. The API maps each to a status, the CLI prints it.
 */

/** No product with this SKU in the catalogue. */
export class UnknownProductError extends Error {}

/** The product exists but has no live scores (no champion yet, too few buyers, or never run). */
export class NoLiveScoresError extends Error {}

/** The channel exists but may not be used right now (e.g. a stale Bloctel list for calls). */
export class ChannelClosedError extends Error {}

/** A parameter is invalid: `field` names it. */
export class InvalidTargetRequestError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field} ${problem}`);
  }
}

/** No export with this id (or not one the caller may read). */
export class ExportNotFoundError extends Error {}
