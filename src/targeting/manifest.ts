import { createHash } from 'node:crypto';

/**
 * What a manifest proves: who was in a list (internal contact id, position, holdout or not),
 * with which score and rank, and which consent ledger events made them eligible. Hashes
 * cover no personal data (no external id, no email or phone), so an erasure, which blanks
 * those fields in stored exports, leaves every hash verifiable.
 */
export interface ManifestMember {
  position: number;
  contactId: number;
  score: number;
  rank: number;
  percentile: number;
  isHoldout: boolean;
  consentEventIds: number[];
}

export interface ManifestHeader {
  exportId: string;
  createdAt: string;
  actor: string;
  modelVersionId: number;
  scoreSetId: number;
  channel: string;
  params: Record<string, unknown>;
  memberCount: number;
  holdoutCount: number;
  holdoutSeed: string | null;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Scores are stored as float4: hashed at that precision so the stored row gives the same hash. */
const real = (value: number) => Math.fround(value).toPrecision(9);

export function memberHash(member: ManifestMember): string {
  return sha256(
    [
      member.position,
      member.contactId,
      real(member.score),
      member.rank,
      real(member.percentile),
      member.isHoldout ? 1 : 0,
      member.consentEventIds.join(','),
    ].join('|'),
  );
}

/** Keys sorted at every level, so the same header always gives the same text. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, item]) => item !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** SHA-256 over the header and the member hashes in list order. */
export function manifestHash(header: ManifestHeader, memberHashes: readonly string[]): string {
  return sha256(`${canonicalJson(header)}\n${memberHashes.join('\n')}`);
}
