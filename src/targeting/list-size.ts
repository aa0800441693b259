import { InvalidTargetRequestError } from './targeting.errors.ts';

/** How long the list is: exactly one of these. */
export type ListSize =
  | { top: number }
  | { percentile: number }
  | { minScore: number }
  /** the smallest top list whose summed purchase probabilities reach this number */
  | { expectedBuyers: number };

export const LIST_SIZE_FIELDS = ['top', 'percentile', 'minScore', 'expectedBuyers'] as const;
export type ListSizeField = (typeof LIST_SIZE_FIELDS)[number];
/** A list asked without a size gets the best this many. */
export const DEFAULT_TOP = 1000;

/**
 * The one check that a list is sized by exactly one of LIST_SIZE_FIELDS (the API, the CLI and
 * validateListRequest all call it); none given is the default top list. `nameOf` spells the
 * fields as the caller typed them (the CLI's --min-score) in the message.
 */
export function listSizeOf(
  values: Partial<Record<ListSizeField, number | undefined>>,
  nameOf: (field: ListSizeField) => string = (field) => field,
): ListSize {
  const given = LIST_SIZE_FIELDS.filter((field) => values[field] !== undefined);
  if (given.length > 1) {
    throw new InvalidTargetRequestError(
      nameOf(given[1]!),
      `cannot be combined with ${nameOf(given[0]!)}: give one of ${LIST_SIZE_FIELDS.map(nameOf).join(', ')}, not ${given.map(nameOf).join(' and ')}`,
    );
  }
  const field = given[0];
  return field === undefined ? { top: DEFAULT_TOP } : ({ [field]: values[field] } as ListSize);
}
