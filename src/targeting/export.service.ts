import type { Kysely } from 'kysely';
import type { Database } from '../db/database.ts';
import {
  type ExportMemberRecord,
  erasedMemberCount,
  exportById,
  exportMembers,
  manifestLines,
  type StoredExport,
} from './export.repository.ts';
import { manifestHash, memberHashOf } from './manifest.ts';
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
  /** positions whose stored fields no longer match their stored member hash */
  alteredPositions: number[];
  /** members whose person has been erased since (the manifest holds no personal data: their hashes still verify) */
  erasedMembers: number;
}

/** Recomputes every member hash from the stored arrays, with the list's scheme, then the manifest hash, and compares. */
export async function verifyExport(db: Kysely<Database>, exportId: string): Promise<ExportVerification> {
  const stored = await exportById(db, exportId);
  if (!stored) throw new ExportNotFoundError(`no export has the id ${exportId}`);
  const { hashScheme, members } = await manifestLines(db, exportId);
  const memberCount = members.length;
  const recomputedMembers = members.map((member) => memberHashOf(hashScheme, member));
  const alteredPositions = members
    .filter((member, index) => member.memberHash !== recomputedMembers[index])
    .map((member) => member.position);
  const recomputedHash = manifestHash(hashScheme, stored.header, recomputedMembers);
  return {
    exportId,
    valid: memberCount === stored.header.memberCount && alteredPositions.length === 0 && recomputedHash === stored.manifestHash,
    storedHash: stored.manifestHash,
    recomputedHash,
    memberCount,
    alteredPositions,
    erasedMembers: await erasedMemberCount(db, exportId),
  };
}
