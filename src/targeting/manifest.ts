import { createHash } from 'node:crypto';
import { type RawBuilder, sql } from 'kysely';

/**
 * What a manifest proves: who was in a list (internal contact id, position, holdout or not),
 * with which score and rank, and which consent ledger events made them eligible (profiling,
 * then the channel). Hashes cover no personal data (no external id, no email or phone), and
 * manifests store none, so an erasure leaves every manifest as it was, and verifiable.
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

/**
 * How member hashes are computed. 1: SHA-256 of a text line (lists recorded before manifests
 * became one row per list); 2: SHA-256 of a fixed 41-byte big-endian layout, computed by the
 * database when the list is recorded (memberHashSql) and by the verifier here (memberHashV2).
 */
export type HashScheme = 1 | 2;
export const CURRENT_HASH_SCHEME: HashScheme = 2;

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

/** Scheme 1: the member's text line, hashed; hex. */
export function memberHashV1(member: ManifestMember): string {
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

/**
 * Scheme 2: position int4, contact id int8, score float4, rank int4, percentile float4, holdout
 * one byte (1 or 0), profiling consent event id int8, channel consent event id int8; all big-endian.
 */
export function memberHashV2(member: ManifestMember): Buffer {
  const layout = Buffer.alloc(41);
  layout.writeInt32BE(member.position, 0);
  layout.writeBigInt64BE(BigInt(member.contactId), 4);
  layout.writeFloatBE(member.score, 12);
  layout.writeInt32BE(member.rank, 16);
  layout.writeFloatBE(member.percentile, 20);
  layout.writeUInt8(member.isHoldout ? 1 : 0, 24);
  layout.writeBigInt64BE(BigInt(member.consentEventIds[0] ?? 0), 25);
  layout.writeBigInt64BE(BigInt(member.consentEventIds[1] ?? 0), 33);
  return createHash('sha256').update(layout).digest();
}

/** memberHashV2 in SQL, over the columns of `alias` (position, contact_id, score, rank, percentile, is_holdout, profiling_event_id, channel_event_id). */
export function memberHashSql(alias: string): RawBuilder<Buffer> {
  const c = (name: string) => sql.ref(`${alias}.${name}`);
  return sql`sha256(int4send(${c('position')}::int4) || int8send(${c('contact_id')}::int8) || float4send(${c('score')}::float4)
    || int4send(${c('rank')}::int4) || float4send(${c('percentile')}::float4)
    || decode(CASE WHEN ${c('is_holdout')} THEN '01' ELSE '00' END, 'hex')
    || int8send(${c('profiling_event_id')}::int8) || int8send(${c('channel_event_id')}::int8))`;
}

/** The member hashes of a manifest, one per member in list order: hex text (scheme 1) or 32 bytes (scheme 2). */
export function memberHashOf(scheme: HashScheme, member: ManifestMember): string {
  return scheme === 1 ? memberHashV1(member) : memberHashV2(member).toString('hex');
}

/** Canonical header text, as the manifest hash covers it. */
export function headerText(header: ManifestHeader): string {
  return canonicalJson(header);
}

/**
 * The manifest hash: SHA-256 over the header and the member hashes in list order. Scheme 1
 * joins hex hashes with newlines; scheme 2 appends the 32-byte hashes after one newline
 * (the database computes it so when the list is recorded: manifestHashSql).
 */
export function manifestHash(scheme: HashScheme, header: ManifestHeader, memberHashes: readonly string[]): string {
  if (scheme === 1) return sha256(`${canonicalJson(header)}\n${memberHashes.join('\n')}`);
  return createHash('sha256')
    .update(`${canonicalJson(header)}\n`)
    .update(Buffer.from(memberHashes.join(''), 'hex'))
    .digest('hex');
}

/** manifestHash of scheme 2 in SQL, from the header text and the concatenated member hashes. */
export function manifestHashSql(header: ManifestHeader, memberHashes: RawBuilder<Buffer>): RawBuilder<string> {
  return sql`encode(sha256(convert_to(${`${canonicalJson(header)}\n`}::text, 'UTF8') || ${memberHashes}), 'hex')`;
}
