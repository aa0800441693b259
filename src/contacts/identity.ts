import { createHash } from 'node:crypto';
import { parsePhoneNumberWithError as parseWithLineTypes } from 'libphonenumber-js/max';
import { type CountryCode, parsePhoneNumberWithError } from 'libphonenumber-js/min';

/** SHA-256 in hex of an already-normalised identifier (opposition lists, tombstones). */
export function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

// Spreadsheets and pandas write integer ids as floats ("17850.0"); they are the same id.
const FLOAT_WRITTEN_INTEGER = /^(\d+)\.0+$/;

export function normalizeExternalId(raw: string): string {
  const trimmed = raw.trim();
  return trimmed.replace(FLOAT_WRITTEN_INTEGER, '$1');
}

const EMAIL_SHAPE = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export type Normalized = { ok: true; value: string } | { ok: false; error: string };

export function normalizeEmail(raw: string): Normalized {
  const value = raw.trim().toLowerCase();
  if (!EMAIL_SHAPE.test(value) || value.length > 254) return { ok: false, error: 'is not a valid email address' };
  return { ok: true, value };
}

/** A phone number to E.164, reading numbers without an international prefix as numbers of `defaultCountry`. */
export function normalizePhone(raw: string, defaultCountry: string): Normalized {
  try {
    const parsed = parsePhoneNumberWithError(raw.trim(), defaultCountry as CountryCode);
    // possible (right length for its country) rather than valid: range metadata ages faster than the lists we read
    if (!parsed.isPossible()) return { ok: false, error: 'is not a possible phone number' };
    return { ok: true, value: parsed.number };
  } catch {
    return { ok: false, error: 'is not a valid phone number' };
  }
}

// ARCEP reserves 06 39 98 xx xx for fiction; libphonenumber leaves it out of the mobile ranges,
// but it is a mobile block (the demo's people have such numbers)
const ARCEP_FICTION_MOBILE = /^\+3363998\d{4}$/;

/**
 * libphonenumber's line type of an E.164 number (MOBILE, FIXED_LINE, FIXED_LINE_OR_MOBILE,
 * VOIP, TOLL_FREE, ...), or null when its ranges do not say (an unallocated range): the
 * channels that need a given device read it (SMS needs a mobile).
 */
export function phoneLineType(e164: string): string | null {
  if (ARCEP_FICTION_MOBILE.test(e164)) return 'MOBILE';
  try {
    return parseWithLineTypes(e164).getType() ?? null;
  } catch {
    return null;
  }
}
