import { type ModelTarget, parseModelTarget } from '../registry/model-catalog.repository.ts';

/** The model page of a target: /ui/models/SKU, /ui/models/category:NAME, /ui/models/any. */
export function modelPath(target: ModelTarget, suffix = ''): string {
  const name = target.kind === 'product' ? target.key : target.kind === 'any' ? 'any' : `${target.kind}:${target.key}`;
  return `/ui/models/${encodeURIComponent(name)}${suffix}`;
}

/** A target named in a path; null when it cannot be a target name (empty, too long, control characters). */
export function targetFromPath(value: string): ModelTarget | null {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: a name with a control character is refused
  if (value.length === 0 || value.length > 200 || /[\u0000-\u001f\u007f]/.test(value)) return null;
  const target = parseModelTarget(value);
  return target.key.trim().length === 0 ? null : target;
}

/** A database id as written in a path or a form: a positive whole number. */
export function idFrom(value: string | undefined): number | null {
  return value !== undefined && /^[1-9]\d{0,14}$/.test(value) ? Number(value) : null;
}

/** Where to go after signing in: a page of the review site, else the overview. */
export function safeNext(value: unknown): string {
  return typeof value === 'string' &&
    /^\/ui\/[A-Za-z0-9._~%:@!$&'()*+,;=/?-]*$/.test(value) &&
    !value.startsWith('//') &&
    !value.includes('\\')
    ? value
    : '/ui/models';
}
