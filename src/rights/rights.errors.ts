import { DomainError, InvalidInputError } from '../errors.ts';

/**
 * Errors a rights request can end with, kept apart from database failures so that
 * the CLI prints them plainly and the API maps them to 404 / 400 (by kind, errors.ts).
 * Messages never repeat the reference or the values given: they may reach logs.
 */

/** No contact is held under this reference (unknown, or erased at their request). */
export class SubjectNotFoundError extends DomainError {
  constructor(problem: string) {
    super('notFound', 'Contact not found', problem);
  }
}

/** The request itself is refused: an invalid value, an unknown purpose or channel. */
export class InvalidRightsRequestError extends InvalidInputError {
  declare readonly field: string;
  constructor(field: string, problem: string) {
    super(field, problem);
  }
}
