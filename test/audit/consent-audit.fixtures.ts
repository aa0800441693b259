import type { DatabaseHandle } from '../../src/db/engine.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { importFile, NOW } from '../imports/import.fixtures.ts';

export { NOW };

/**
 * A small synthetic base where each contact carries one case of the audit
 * (what each line is for is in the comment after it). A12 has no consent at all,
 * A14 is erased after import.
 */
export const AUDIT_CONTACTS_CSV = csv(
  'external_id,email,phone,created_at',
  ...Array.from({ length: 14 }, (_, i) => {
    const id = `A${String(i + 1).padStart(2, '0')}`;
    return `${id},${id.toLowerCase()}@example.test,+336000000${String(i + 1).padStart(2, '0')},2015-01-01`;
  }),
);

const HEADER = 'external_id,purpose,channel,status,captured_at,source,method,notice_version,evidence_ref,expires_at';

// Lines are deliberately out of chronological order (A07, A11): the state must follow captured_at.
export const AUDIT_CONSENTS_CSV = csv(
  HEADER,
  'A01,profiling,,granted,2024-01-10,web_form,explicit_checkbox,v3,ev-1,', // counting
  'A01,direct_marketing,email,granted,2024-01-10,web_form,double_opt_in,v3,ev-2,2026-06-15', // counting, expiring in 14 days
  'A02,profiling,,granted,2024-02-01,mobile_app,explicit_checkbox,v3,ev-3,2026-06-20', // counting, expiring in 19 days
  'A02,direct_marketing,sms,granted,2024-02-01,paper_form,signed_form,v3,ev-4,', // counting
  'A03,profiling,,granted,2017-03-01,,explicit_checkbox,,,', // no source: no proof, before the GDPR
  'A03,direct_marketing,email,granted,2017-03-01,,,,,', // no source, no method: no proof, before the GDPR
  'A04,profiling,,granted,2019-06-01,web_form,,v2,,2026-06-05', // no method: no proof (after the GDPR); its expiry is not listed
  'A05,profiling,,granted,2025-01-05,checkout,pre_ticked,v3,ev-5,2026-06-10', // invalid method; its expiry is not listed
  'A05,direct_marketing,email,granted,2025-01-05,checkout,bundled,v3,ev-6,', // invalid method
  'A06,profiling,,granted,2018-05-24T23:00:00Z,,implied,,,', // no proof (first), and non-explicit; before the GDPR by one hour
  'A07,profiling,,withdrawn,2025-01-01,web_form,,v3,ev-7,', // the latest: withdrawn
  'A07,profiling,,granted,2016-02-01,,explicit_checkbox,,,', // an old grant without proof, superseded: not listed
  'A07,profiling,,granted,2024-01-01,web_form,explicit_checkbox,v3,ev-8,',
  'A08,profiling,,refused,2024-03-03,web_form,explicit_checkbox,v3,ev-9,', // refused
  'A09,profiling,,granted,2024-04-01,web_form,explicit_checkbox,v3,ev-10,2026-03-01', // expired
  'A09,direct_marketing,phone,granted,2024-04-01,call_centre,recorded_verbal,v3,ev-11,2026-08-01', // counting, expiring in 61 days
  'A10,profiling,,granted,2024-05-01,web_form,explicit_checkbox,v3,ev-12,', // counting
  'A10,direct_marketing,email,granted,2024-05-01,web_form,double_opt_in,v3,ev-13,2026-06-10', // objected since: not counting, not listed as expiring
  'A10,direct_marketing,sms,granted,2025-09-01,web_form,explicit_checkbox,v3,ev-14,', // granted after the objection: counting
  'A11,profiling,,granted,2024-06-01,mobile_app,double_opt_in,v3,ev-17,', // the latest: counting again
  'A11,profiling,,withdrawn,2023-01-01,web_form,,v3,ev-16,',
  'A11,profiling,,granted,2022-01-01,web_form,explicit_checkbox,v2,ev-15,',
  'A11,direct_marketing,sms,granted,2025-06-01,web_form,explicit_checkbox,v3,ev-18,2026-07-01T12:00:00Z', // expires exactly 30 days after NOW
  'A13,profiling,,granted,2016-05-01,paper_form,signed_form,v1,ev-19,', // before the GDPR but with proof: counting
  'A14,profiling,,granted,2017-01-01,,explicit_checkbox,,,', // no proof, but the person is erased: left out
);

/** Imports the base through the real CSV import, then what no import can write: an objection and an erasure. */
export async function loadAuditBase(database: DatabaseHandle): Promise<void> {
  const files = tempFolder();
  const contacts = await importFile(database, 'contacts', files.write('contacts.csv', AUDIT_CONTACTS_CSV));
  if (contacts.status !== 'committed') throw new Error(`contacts import: ${JSON.stringify(contacts.rejectReasons)}`);
  const consents = await importFile(database, 'consents', files.write('consents.csv', AUDIT_CONSENTS_CSV));
  if (consents.status !== 'committed' || consents.inserted !== 25) {
    throw new Error(`consents import: ${consents.status} ${consents.inserted} ${JSON.stringify(consents.rejectReasons)}`);
  }
  // The objection right (art. 21) writes this event; it has no CSV import. No channel: it stands against every channel.
  await database.pool.query(
    `INSERT INTO consent_events (contact_id, purpose, channel, status, captured_at, source, method)
     SELECT id, 'direct_marketing', NULL, 'objected', '2025-05-01T00:00:00Z', 'dpo_request', NULL FROM contacts WHERE external_id = 'A10'`,
  );
  // What an erasure leaves of a contact: the row, without its identifier and personal data.
  await database.pool.query(
    `WITH erased AS (UPDATE contacts SET erased_at = $1, external_id = NULL WHERE external_id = 'A14' RETURNING id)
     DELETE FROM contact_personal_data WHERE contact_id IN (SELECT id FROM erased)`,
    [NOW],
  );
}
