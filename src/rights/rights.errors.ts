/**
 * Errors a rights request can end with, kept apart from database failures so that
 * the CLI prints them plainly and the API can map them to 404 / 400.
 * Messages never repeat the reference or the values given: they may reach logs.
 */

/** No contact is held under this reference (unknown, or erased at their request). */
export class SubjectNotFoundError extends Error {}

/** The request itself is refused: an invalid value, an unknown purpose or channel. */
export class InvalidRightsRequestError extends Error {
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field} ${problem}`);
  }
}
