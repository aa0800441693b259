/**
 * The one base of the errors a request can end with that are not failures of the system:
 * what the caller asked is invalid, names something that does not exist, or conflicts with
 * the current state. The API maps the kind to an HTTP status (api/app.ts, onError) and the
 * CLI to an exit code (cli/main.ts), each in one place; nothing else parses the message.
 * Messages name fields, products, channels or counts, never a person: they may reach logs.
 */
export type DomainErrorKind = 'invalid' | 'notFound' | 'conflict';

export class DomainError extends Error {
  constructor(
    readonly kind: DomainErrorKind,
    /** a short title for the kind of refusal, e.g. "Unknown product" (the API's problem title) */
    readonly title: string,
    /** what is wrong, written to follow the field name: "must be a whole number from 1 to 1000" */
    readonly problem: string,
    /** the input at fault, as the domain names it (e.g. minScore, first_name, ref), or null */
    readonly field: string | null = null,
  ) {
    // the message reads "<field> <problem>", or the problem alone when no field is at fault
    super(field === null ? problem : `${field} ${problem}`);
    this.name = new.target.name;
  }
}

/** The caller's input is invalid: `field` names it. */
export class InvalidInputError extends DomainError {
  constructor(field: string | null, problem: string) {
    super('invalid', 'Bad request', problem, field);
  }
}
