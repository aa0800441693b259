import { resolveIdentities } from '../identities/resolution.repository.ts';
import { type ImporterDefinition, RowBuilder } from '../imports/importer.ts';
import { duplicateKeyLines } from '../imports/set-checks.ts';
import { type Parsed, parseOptionalText, parseText, parseTimestamp } from '../imports/values.ts';
import { assertTombstoneKeysHeld, TombstoneSecretMissingError, tombstoneHashes } from '../rights/tombstone-keys.ts';
import { normalizeEmail, normalizeExternalId, normalizePhone, phoneLineType, sha256Hex } from './identity.ts';

function optional(raw: string | undefined, normalize: (value: string) => Parsed<string>): Parsed<string | null> {
  return raw === undefined || raw.trim() === '' ? { ok: true, value: null } : normalize(raw);
}

export const contactImporter: ImporterDefinition = {
  kind: 'contacts',
  required: ['external_id', 'created_at'],
  optional: ['email', 'phone', 'first_name', 'last_name', 'country'],
  writes: ['contacts', 'contact_personal_data'],
  staging: [
    { name: 'external_id', type: 'text' },
    { name: 'created_at', type: 'timestamptz' },
    { name: 'email', type: 'text' },
    { name: 'phone', type: 'text' },
    { name: 'first_name', type: 'text' },
    { name: 'last_name', type: 'text' },
    { name: 'country', type: 'text' },
    { name: 'external_id_hash', type: 'text' },
    { name: 'email_hash', type: 'text' },
    { name: 'phone_hash', type: 'text' },
    { name: 'phone_line_type', type: 'text' },
    // keyed hashes of the case-folded external id, one per tombstone secret held (space-separated)
    { name: 'erasure_keys', type: 'text' },
  ],

  async prepare({ options, defaultPhoneCountry, now, tombstoneKeys }) {
    return (values) => {
      const row = new RowBuilder();
      const externalId = row.add('external_id', parseText(normalizeExternalId(values.external_id ?? ''), 200));
      const createdAt = row.add('created_at', parseTimestamp(values.created_at ?? '', options.dateFormat));
      if (createdAt && createdAt > now) row.fail('created_at', `${createdAt.toISOString()} is in the future`);
      const email = row.add('email', optional(values.email, normalizeEmail));
      const phone = row.add(
        'phone',
        optional(values.phone, (value) => normalizePhone(value, defaultPhoneCountry)),
      );
      row.add('first_name', parseOptionalText(values.first_name, 200));
      row.add('last_name', parseOptionalText(values.last_name, 200));
      row.add('country', parseOptionalText(values.country, 56));
      if (row.error) return row.result();
      row.row.push(
        sha256Hex(externalId!),
        email ? sha256Hex(email) : null,
        phone ? sha256Hex(phone) : null,
        phone ? phoneLineType(phone) : null,
        tombstoneKeys ? tombstoneHashes(tombstoneKeys, externalId!).join(' ') : null,
      );
      return row.result();
    };
  },

  async check({ client, tombstoneKeys }) {
    const duplicates = await duplicateKeyLines(
      client,
      ['external_id'],
      (id, first) => `duplicate external_id "${id}": already on line ${first}`,
    );
    // an erasure committing between this check and the insert would let the person back in
    await client.query('LOCK TABLE erasure_tombstones IN SHARE MODE');
    const keyed = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM erasure_tombstones WHERE external_id_key IS NOT NULL');
    if ((keyed.rows[0]?.n ?? 0) > 0) {
      if (!tombstoneKeys)
        throw new TombstoneSecretMissingError('the contacts import needs the tombstone secret to recognise erased people');
      await assertTombstoneKeysHeld(client, tombstoneKeys);
    }
    // only the erased person's own external id (case-folded) is refused: a living person who
    // shares a household phone or email imports
    const { rows } = await client.query<{ line: number; erased_at: Date }>(
      `SELECT s.line, max(t.erased_at) AS erased_at
       FROM import_staging s
       JOIN erasure_tombstones t
         ON t.external_id_key = ANY(string_to_array(s.erasure_keys, ' ')) OR t.legacy_external_id_sha256 = s.external_id_hash
       GROUP BY s.line ORDER BY s.line`,
    );
    const erased = rows.map((row) => ({
      line: row.line,
      field: 'external_id',
      message: `this person was erased on ${row.erased_at.toISOString().slice(0, 10)} at their request and cannot be imported again`,
    }));
    return [...duplicates, ...erased];
  },

  async apply({ client, identityPolicy }) {
    const created = await client.query(
      `INSERT INTO contacts (external_id, created_at)
       SELECT external_id, created_at FROM import_staging
       ON CONFLICT (external_id) DO NOTHING`,
    );
    const { rows } = await client.query<{ changed: number; staged: number }>(
      `WITH upserted AS (
         INSERT INTO contact_personal_data
           (contact_id, email, phone, first_name, last_name, country, email_hash, phone_hash, phone_line_type)
         SELECT c.id, s.email, s.phone, s.first_name, s.last_name, s.country, s.email_hash, s.phone_hash, s.phone_line_type
         FROM import_staging s JOIN contacts c ON c.external_id = s.external_id
         ON CONFLICT (contact_id) DO UPDATE SET
           email = excluded.email, phone = excluded.phone, first_name = excluded.first_name,
           last_name = excluded.last_name, country = excluded.country,
           email_hash = excluded.email_hash, phone_hash = excluded.phone_hash, phone_line_type = excluded.phone_line_type
         WHERE (contact_personal_data.email, contact_personal_data.phone, contact_personal_data.first_name,
                contact_personal_data.last_name, contact_personal_data.country)
           IS DISTINCT FROM (excluded.email, excluded.phone, excluded.first_name, excluded.last_name, excluded.country)
         RETURNING contact_id
       ), touched AS (
         UPDATE contacts SET updated_at = now() WHERE id IN (SELECT contact_id FROM upserted) RETURNING id
       )
       SELECT (SELECT count(*) FROM touched)::int AS changed, (SELECT count(*) FROM import_staging)::int AS staged`,
    );
    const inserted = created.rowCount ?? 0;
    const { changed, staged } = rows[0]!;
    const updated = changed - inserted;
    const resolution = identityPolicy.linkOnImport ? await resolveIdentities(client, 'staged contacts', identityPolicy) : null;
    const linked = resolution?.relinked.filter((record) => record.toPerson !== record.recordId).length ?? 0;
    return { inserted, updated, unchanged: staged - inserted - updated, merged: 0, linked };
  },
};
