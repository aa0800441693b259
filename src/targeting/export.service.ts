import type { Kysely } from 'kysely';
import type { Database } from '../db/database.ts';
import { type ExportMemberRecord, exportById, exportMembers, type StoredExport } from './export.repository.ts';
import { manifestHash, memberHash } from './manifest.ts';
import { ExportNotFoundError } from './targeting.errors.ts';

export interface ExportManifest extends StoredExport {
  members: ExportMemberRecord[];
}

export async function exportManifest(db: Kysely<Database>, exportId: string): Promise<ExportManifest> {
  const stored = await exportById(db, exportId);
  if (!stored) throw new ExportNotFoundError(`no export has the id ${exportId}`);
  return { ...stored, members: await exportMembers(db, exportId) };
}

export interface ExportVerification {
  exportId: string;
  valid: boolean;
  storedHash: string;
  recomputedHash: string;
  memberCount: number;
  /** positions whose stored line no longer matches its hash */
  alteredPositions: number[];
  /** members whose personal fields were blanked by an erasure (their hashes still verify) */
  erasedMembers: number;
}

/** Recomputes every member hash from the stored lines, then the manifest hash, and compares. */
export async function verifyExport(db: Kysely<Database>, exportId: string): Promise<ExportVerification> {
  const manifest = await exportManifest(db, exportId);
  const recomputedMembers = manifest.members.map(memberHash);
  const alteredPositions = manifest.members
    .filter((member, index) => member.memberHash !== recomputedMembers[index])
    .map((member) => member.position);
  const countMatches = manifest.members.length === manifest.header.memberCount;
  const recomputedHash = manifestHash(manifest.header, recomputedMembers);
  return {
    exportId,
    valid: countMatches && alteredPositions.length === 0 && recomputedHash === manifest.manifestHash,
    storedHash: manifest.manifestHash,
    recomputedHash,
    memberCount: manifest.members.length,
    alteredPositions,
    erasedMembers: manifest.members.filter((member) => member.externalId === null).length,
  };
}
