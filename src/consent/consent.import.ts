import { normalizeExternalId } from '../contacts/identity.ts';
import { type ImporterDefinition, RowBuilder } from '../imports/importer.ts';
import { duplicateKeyLines, unknownContactLines } from '../imports/set-checks.ts';
import { parseOptionalText, parseOptionalTimestamp, parseText, parseTimestamp } from '../imports/values.ts';

const STATUSES = ['granted', 'withdrawn', 'refused'];

export const consentImporter: ImporterDefinition = {
  kind: 'consents',
  required: ['external_id', 'purpose', 'channel', 'status', 'captured_at', 'source', 'method'],
  optional: ['notice_version', 'evidence_ref', 'expires_at'],
  writes: ['consent_events', 'consent_state'],
  staging: [
    { name: 'external_id', type: 'text' },
    { name: 'purpose', type: 'text' },
    { name: 'channel', type: 'text' },
    { name: 'status', type: 'text' },
    { name: 'captured_at', type: 'timestamptz' },
    { name: 'source', type: 'text' },
    { name: 'method', type: 'text' },
    { name: 'notice_version', type: 'text' },
    { name: 'evidence_ref', type: 'text' },
    { name: 'expires_at', type: 'timestamptz' },
  ],

  async prepare({ client, options, now }) {
    // purposes, channels and methods are data: read them, never hard-code them
    const purposes = new Map(
      (
        await client.query<{ code: string; requires_channel: boolean }>('SELECT code, requires_channel FROM purposes ORDER BY code')
      ).rows.map((row) => [row.code, row.requires_channel]),
    );
    const channels = new Set((await client.query<{ code: string }>('SELECT code FROM channels ORDER BY code')).rows.map((r) => r.code));
    const methods = new Set(
      (await client.query<{ code: string }>('SELECT code FROM consent_methods ORDER BY code')).rows.map((r) => r.code),
    );
    const known = (set: Iterable<string>) => [...set].join(', ');

    return (values) => {
      const row = new RowBuilder();
      row.add('external_id', parseText(normalizeExternalId(values.external_id ?? ''), 200));
      const purpose = row.add('purpose', parseText(values.purpose, 100));
      const requiresChannel = purpose === undefined ? undefined : purposes.get(purpose);
      if (purpose !== undefined && requiresChannel === undefined) {
        row.fail('purpose', `unknown purpose "${purpose}" (known: ${known(purposes.keys())})`);
      }
      const channel = row.add('channel', parseOptionalText(values.channel, 100));
      if (requiresChannel === true && channel === null) {
        row.fail('channel', `a ${purpose} consent needs a channel (one of ${known(channels)})`);
      } else if (requiresChannel === false && channel !== null) {
        row.fail('channel', `a ${purpose} consent takes no channel, found "${channel}"`);
      } else if (channel && !channels.has(channel)) {
        row.fail('channel', `unknown channel "${channel}" (known: ${known(channels)})`);
      }
      const status = row.add('status', parseText(values.status, 20));
      if (status !== undefined && !STATUSES.includes(status)) {
        row.fail('status', `unknown status "${status}" (expected ${STATUSES.join(', ')})`);
      }
      const capturedAt = row.add('captured_at', parseTimestamp(values.captured_at ?? '', options.dateFormat));
      if (capturedAt && capturedAt > now) row.fail('captured_at', `${capturedAt.toISOString()} is in the future`);
      // an empty source or method is kept for the audit: such a record never counts as consent
      row.add('source', parseOptionalText(values.source, 200));
      const method = row.add('method', parseOptionalText(values.method, 100));
      if (method && !methods.has(method)) row.fail('method', `unknown method "${method}" (known: ${known(methods)})`);
      row.add('notice_version', parseOptionalText(values.notice_version, 100));
      row.add('evidence_ref', parseOptionalText(values.evidence_ref, 500));
      const expiresAt = row.add('expires_at', parseOptionalTimestamp(values.expires_at, options.dateFormat));
      if (expiresAt && capturedAt && expiresAt <= capturedAt) {
        row.fail('expires_at', `${expiresAt.toISOString()} is not after captured_at`);
      }
      return row.result();
    };
  },

  async check({ client }) {
    const unknown = await unknownContactLines(client);
    const duplicates = await duplicateKeyLines(
      client,
      ['external_id', 'purpose', 'channel', 'captured_at'],
      (key, first) => `two events for the same consent at the same instant (${key}): already on line ${first}`,
    );
    const seen = new Set(unknown.map((reject) => reject.line));
    return [...unknown, ...duplicates.filter((reject) => !seen.has(reject.line))];
  },

  async apply({ client, importId }) {
    // re-importing the same file adds nothing: an identical event (the ledger's natural key,
    // enforced by the unique index consent_events_natural_key) is already there; two imports
    // of one file at the same time record each event once, the second waiting for the first
    const { rows } = await client.query<{ inserted: number; staged: number }>(
      `WITH inserted AS (
         INSERT INTO consent_events
           (contact_id, purpose, channel, status, captured_at, source, method, notice_version, evidence_ref, expires_at, import_id)
         SELECT c.id, s.purpose, s.channel, s.status, s.captured_at, s.source, s.method,
                s.notice_version, s.evidence_ref, s.expires_at, $1
         FROM import_staging s JOIN contacts c ON c.external_id = s.external_id
         ON CONFLICT (contact_id, purpose, coalesce(channel, ''), status, captured_at, coalesce(source, ''), coalesce(method, ''), coalesce(evidence_ref, ''))
           WHERE duplicate_of IS NULL AND proof_scrubbed_at IS NULL DO NOTHING
         RETURNING 1
       )
       SELECT (SELECT count(*) FROM inserted)::int AS inserted,
              (SELECT count(*) FROM import_staging)::int AS staged`,
      [importId],
    );
    const { inserted, staged } = rows[0]!;
    return { inserted, updated: 0, unchanged: staged - inserted, merged: 0 };
  },
};
