import pino, { type Logger } from 'pino';

export type { Logger };

// Personal data must never be logged; these paths are a second line of defence
// behind the rule that log calls only carry ids, counts and durations.
const PERSONAL_FIELDS = ['email', 'phone', 'first_name', 'last_name', 'firstName', 'lastName', 'external_id', 'externalId'];

export function createLogger(level: string, destination: pino.DestinationStream = pino.destination(2)): Logger {
  return pino(
    {
      level,
      base: { service: 'cible' },
      redact: {
        paths: [...PERSONAL_FIELDS, ...PERSONAL_FIELDS.map((field) => `*.${field}`)],
        censor: '[redacted]',
      },
    },
    destination,
  );
}

/** What can be logged of an error without personal data: its type and code, never its message. */
export function describeError(error: unknown): { type: string; code?: string } {
  if (!(error instanceof Error)) return { type: typeof error };
  const code = (error as { code?: unknown }).code;
  return { type: error.name, ...(typeof code === 'string' ? { code } : {}) };
}
