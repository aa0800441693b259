import { type Kysely, sql } from 'kysely';
import type { Database } from '../../src/db/database.ts';
import { exportById } from '../../src/targeting/export.repository.ts';
import { type HashScheme, type ManifestMember, manifestHash, memberHashOf } from '../../src/targeting/manifest.ts';

/**
 * Writes the manifest of an existing target_exports row as a list records it: counts, member
 * hashes of the given scheme (1 as the migration converts an old list, 2 as lists are recorded
 * now), the manifest hash. Returns the manifest hash.
 */
export async function recordManifest(
  db: Kysely<Database>,
  exportId: string,
  members: ManifestMember[],
  scheme: HashScheme,
): Promise<string> {
  await db
    .updateTable('target_exports')
    .set({ member_count: members.length, holdout_count: members.filter((member) => member.isHoldout).length })
    .where('id', '=', exportId)
    .execute();
  const stored = await exportById(db, exportId);
  if (!stored) throw new Error(`no export ${exportId}`);
  const hashes = members.map((member) => memberHashOf(scheme, member));
  const hash = manifestHash(scheme, stored.header, hashes);
  await sql`
    INSERT INTO target_export_manifests
      (export_id, hash_scheme, contact_ids, scores, ranks, percentiles, holdout, profiling_event_ids, channel_event_ids, member_hashes)
    VALUES (${exportId}::uuid, ${scheme}, ${members.map((m) => m.contactId)}::bigint[], ${members.map((m) => m.score)}::real[],
      ${members.map((m) => m.rank)}::int[], ${members.map((m) => m.percentile)}::real[], ${members.map((m) => m.isHoldout)}::boolean[],
      ${members.map((m) => m.consentEventIds[0] ?? null)}::bigint[], ${members.map((m) => m.consentEventIds[1] ?? null)}::bigint[],
      ${Buffer.from(hashes.join(''), 'hex')})`.execute(db);
  await db.updateTable('target_exports').set({ manifest_hash: hash }).where('id', '=', exportId).execute();
  return hash;
}
