import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatConsentAudit } from '../../src/audit/consent-audit.format.ts';
import { type ConsentAuditReport, consentAudit, recordConsentAudit } from '../../src/audit/consent-audit.service.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { importFile, NOW } from '../imports/import.fixtures.ts';

/*
 * Issue 19: the consent audit counts persons and records, and shows the DPO the persons whose
 * records disagree (one record's latest event counts, another's is a "no").
 */

let database: DatabaseHandle;
let report: ConsentAuditReport;
const files = tempFolder();

beforeAll(async () => {
  database = await createTestDatabase();
  const contacts = await importFile(
    database,
    'contacts',
    files.write(
      'contacts.csv',
      csv(
        'external_id,email,phone,first_name,last_name,created_at',
        // one person, two records by email (another case): B withdrew email marketing after A's grant
        'P1-A,anne.roux@example.com,,Anne,Roux,2025-01-01',
        'P1-B,Anne.Roux@Example.com,,Anne,Roux,2025-02-01',
        // one person, two records by phone (national format): B objected to all direct marketing, A granted sms after
        'P2-A,,+33639981111,Bruno,Mas,2025-01-01',
        'P2-B,,06 39 98 11 11,Bruno,Mas,2025-02-01',
        // one person, two records, both granted: they agree
        'P3-A,chloe.vial@example.com,,Chloé,Vial,2025-01-01',
        'P3-B,chloe.vial@example.com,,Chloé,Vial,2025-02-01',
        // one person, three records: one granted profiling, one refused it before, one has no event
        'P4-A,dan.lot@example.com,,Dan,Lot,2025-01-01',
        'P4-B,dan.lot@example.com,+33639982222,Dan,Lot,2025-02-01',
        'P4-C,,+33639982222,Dan,Lot,2025-03-01',
        // a person of one record: granted and withdrew, which is no disagreement
        'S1,emma.sol@example.com,,Emma,Sol,2025-01-01',
        // erased with its person
        'S2,fanny.gras@example.com,,Fanny,Gras,2025-01-01',
      ),
    ),
  );
  expect(contacts).toMatchObject({ status: 'committed', rejected: 0 });
  const consents = await importFile(
    database,
    'consents',
    files.write(
      'consents.csv',
      csv(
        'external_id,purpose,channel,status,captured_at,source,method,notice_version,evidence_ref,expires_at',
        'P1-A,direct_marketing,email,granted,2026-01-10T10:00:00Z,web_form,double_opt_in,v4,ev-1,',
        'P1-B,direct_marketing,email,withdrawn,2026-02-01T10:00:00Z,crm,,v4,ev-2,',
        'P2-A,direct_marketing,sms,granted,2026-03-01T10:00:00Z,web_form,explicit_checkbox,v4,ev-3,',
        'P3-A,direct_marketing,email,granted,2026-01-10T10:00:00Z,web_form,double_opt_in,v4,ev-4,',
        'P3-B,direct_marketing,email,granted,2026-01-11T10:00:00Z,shop,signed_form,v4,ev-5,',
        'P4-B,profiling,,refused,2025-06-01T10:00:00Z,web_form,explicit_checkbox,v4,ev-6,',
        'P4-A,profiling,,granted,2026-01-01T10:00:00Z,web_form,explicit_checkbox,v4,ev-7,',
        // the deciding event of P4's email grant has no proof: listed under the record that holds it
        'P4-C,direct_marketing,email,granted,2026-01-01T10:00:00Z,,,,,',
        'S1,direct_marketing,email,granted,2026-01-10T10:00:00Z,web_form,double_opt_in,v4,ev-8,',
        'S1,direct_marketing,email,withdrawn,2026-02-10T10:00:00Z,web_form,,v4,ev-9,',
      ),
    ),
  );
  expect(consents).toMatchObject({ status: 'committed', rejected: 0 });
  // the objection right writes this event (no CSV import): no channel, it stands against every channel
  await database.pool.query(
    `INSERT INTO consent_events (contact_id, purpose, channel, status, captured_at, source, method)
     SELECT id, 'direct_marketing', NULL, 'objected', '2026-02-01T00:00:00Z', 'dpo_request', NULL FROM contacts WHERE external_id = 'P2-B'`,
  );
  await database.pool.query(
    `WITH erased AS (UPDATE contacts SET erased_at = $1, external_id = NULL WHERE external_id = 'S2' RETURNING id)
     DELETE FROM contact_personal_data WHERE contact_id IN (SELECT id FROM erased)`,
    [NOW],
  );
  report = await consentAudit(database.db, NOW);
}, 120_000);
afterAll(() => database?.close());

describe('consent audit of persons', () => {
  it('counts records and persons, and the persons with several records', async () => {
    const { rows } = await database.pool.query<{ external_id: string; person: string }>(
      `SELECT c.external_id, p.external_id AS person FROM contacts c JOIN contacts p ON p.id = c.person_id
       WHERE c.erased_at IS NULL ORDER BY 1`,
    );
    // the resolver linked them as the fixture says
    expect(Object.fromEntries(rows.map((row) => [row.external_id, row.person]))).toEqual({
      'P1-A': 'P1-A',
      'P1-B': 'P1-A',
      'P2-A': 'P2-A',
      'P2-B': 'P2-A',
      'P3-A': 'P3-A',
      'P3-B': 'P3-A',
      'P4-A': 'P4-A',
      'P4-B': 'P4-A',
      'P4-C': 'P4-A',
      S1: 'S1',
    });
    expect(report.contacts).toEqual({ total: 11, erased: 1 });
    expect(report.persons).toEqual({ total: 5, withSeveralRecords: 4, recordsOfThem: 9 });
  });

  it('counts the current consent per person, and the persons with no event against the live persons', () => {
    const email = report.state.find((state) => state.purpose === 'direct_marketing' && state.channel === 'email')!;
    // P1 (withdrawn on B), P3 (counting), P4 (no proof), S1 (withdrawn): four persons, not six records
    expect(email).toMatchObject({ contacts: 4, counting: 1, noEvent: 1 });
    expect(email.notCounting).toMatchObject({ withdrawn: 2, noProofOfMeans: 1 });
    const profiling = report.state.find((state) => state.purpose === 'profiling')!;
    expect(profiling).toMatchObject({ contacts: 1, counting: 1, noEvent: 4 });
  });

  it('names the record whose event decides in the lists to review', () => {
    expect(report.withoutProof.contacts).toEqual([
      expect.objectContaining({ externalId: 'P4-C', purpose: 'direct_marketing', channel: 'email' }),
    ]);
  });

  it('flags the persons whose records disagree, with the records on each side', () => {
    expect(report.disagreements).toEqual({
      total: 3,
      persons: 3,
      list: [
        { person: 'P1-A', purpose: 'direct_marketing', channel: 'email', granting: ['P1-A'], refusing: ['P1-B'] },
        // an all-channel objection on one record disagrees with a grant on any channel of another
        { person: 'P2-A', purpose: 'direct_marketing', channel: 'sms', granting: ['P2-A'], refusing: ['P2-B'] },
        // an older refusal on one record still disagrees with the later grant on another
        { person: 'P4-A', purpose: 'profiling', channel: null, granting: ['P4-A'], refusing: ['P4-B'] },
      ],
    });
  });

  it('prints the persons and the first disagreements', () => {
    const text = formatConsentAudit(report, 2);
    expect(text).toMatch(/^persons: 5 \(4 with several records, 9 records between them\)$/m);
    expect(text).toMatch(
      /persons whose records disagree .*: 3 persons, 3 purpose × channel\n\s+P1-A\s+direct_marketing\s+email\s+counting P1-A\s+no P1-B\n/,
    );
    expect(text).toMatch(
      /\s+P2-A\s+direct_marketing\s+sms\s+counting P2-A\s+no P2-B\n\s+… and 1 more: --json or --out FILE gives the full list$/,
    );
  });

  it('records the audit with counts of persons only', async () => {
    const id = await recordConsentAudit(database.db, report, 'cli:dpo', 'stdout');
    const { rows } = await database.pool.query<{ details: Record<string, unknown> }>('SELECT details FROM audit_log WHERE id = $1', [id]);
    expect(rows[0]!.details).toMatchObject({ persons: 5, personsWhoseRecordsDisagree: 3 });
    expect(JSON.stringify(rows[0]!.details)).not.toMatch(/P\d-|S\d|@/);
  });

  it('sees a disagreement end when the record that said no grants again', async () => {
    const later = await importFile(
      database,
      'consents',
      files.write(
        'again.csv',
        csv(
          'external_id,purpose,channel,status,captured_at,source,method,notice_version,evidence_ref,expires_at',
          'P1-B,direct_marketing,email,granted,2026-03-01T10:00:00Z,web_form,double_opt_in,v4,ev-10,',
        ),
      ),
    );
    expect(later).toMatchObject({ status: 'committed', rejected: 0 });
    const after = await consentAudit(database.db, NOW);
    expect(after.disagreements.list.map((row) => row.person)).toEqual(['P2-A', 'P4-A']);
  });
});
