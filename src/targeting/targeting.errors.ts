import { DomainError, InvalidInputError } from '../errors.ts';

/**
 * Why a target list cannot be served. Messages name the product, channel or parameter,
 * never a person: they may reach logs. The API and the CLI map them by their kind (errors.ts).
 */

/** No product with this SKU in the catalogue. */
export class UnknownProductError extends DomainError {
  constructor(problem: string) {
    super('notFound', 'Unknown product', problem);
  }
}

/** The product exists but has no live scores (no champion yet, too few buyers, or never run). */
export class NoLiveScoresError extends DomainError {
  constructor(problem: string) {
    super('conflict', 'No live scores', problem);
  }
}

/** The channel exists but may not be used right now (e.g. a stale Bloctel list for calls). */
export class ChannelClosedError extends DomainError {
  constructor(problem: string) {
    super('conflict', 'Channel closed', problem);
  }
}

/** A parameter is invalid: `field` names it. */
export class InvalidTargetRequestError extends InvalidInputError {
  declare readonly field: string;
  constructor(field: string, problem: string) {
    super(field, problem);
  }
}

/** No export with this id (or not one the caller may read). */
export class ExportNotFoundError extends DomainError {
  constructor(problem: string) {
    super('notFound', 'Unknown export', problem);
  }
}
