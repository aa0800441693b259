import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reachableContacts } from '../../src/consent/eligibility.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { DEFAULT_IDENTITY_POLICY, resolveIdentities, splitPerson } from '../../src/identities/resolution.repository.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { importFile } from '../imports/import.fixtures.ts';

/*
 * Issue 19: records of one person, from several sources, are linked by deterministic matches on
 * normalised identifiers; what could be two people is never linked.
 */

let database: DatabaseHandle;
const files = tempFolder();
const CONTACT_HEADER = 'external_id,email,phone,first_name,last_name,country,created_at';
const CONSENT_HEADER = 'external_id,purpose,channel,status,captured_at,source,method,notice_version,evidence_ref,expires_at';

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database?.close());

async function importContacts(name: string, ...lines: string[]) {
  const report = await importFile(database, 'contacts', files.write(name, csv(CONTACT_HEADER, ...lines)));
  expect(report).toMatchObject({ status: 'committed', rejected: 0 });
  return report;
}

async function importConsents(name: string, ...lines: string[]) {
  const report = await importFile(database, 'consents', files.write(name, csv(CONSENT_HEADER, ...lines)));
  expect(report).toMatchObject({ status: 'committed', rejected: 0 });
}

/** external id -> the external id of the person's first record */
async function personsOf(...externalIds: string[]): Promise<Record<string, string>> {
  const { rows } = await database.pool.query<{ external_id: string; person: string }>(
    `SELECT c.external_id, p.external_id AS person FROM contacts c JOIN contacts p ON p.id = c.person_id
     WHERE c.external_id = ANY($1::text[])`,
    [externalIds],
  );
  return Object.fromEntries(rows.map((row) => [row.external_id, row.person]));
}

async function reachableOnEmail(): Promise<string[]> {
  const { rows } = await sql<{ external_id: string }>`
    SELECT c.external_id FROM ${reachableContacts('email', 'email', new Date())} r
    JOIN contacts c ON c.id = r.contact_id ORDER BY 1`.execute(database.db);
  return rows.map((row) => row.external_id);
}

describe('identity resolution in the contacts import', () => {
  it('links the same person from two sources: email in another case, phone in national format', async () => {
    await importContacts('shop.csv', 'SHOP-1,Jeanne.Durand@Example.com,+33639981001,Jeanne,Durand,FR,2025-01-01');
    const crm = await importContacts('crm.csv', 'CRM-77,jeanne.durand@example.com,06 39 98 10 01,Jeanne,Durand,FR,2025-02-01');
    expect(crm.linked).toBe(1);
    expect(await personsOf('SHOP-1', 'CRM-77')).toEqual({ 'SHOP-1': 'SHOP-1', 'CRM-77': 'SHOP-1' });
  });

  it('links through a chain (email with one record, phone with another) into one person', async () => {
    await importContacts(
      'chain.csv',
      'CH-1,paul.roy@example.com,,Paul,Roy,FR,2025-01-01',
      'CH-2,PAUL.ROY@example.com,06 39 98 20 02,Paul,Roy,FR,2025-01-02',
      'CH-3,,+33639982002,,,FR,2025-01-03',
    );
    expect(await personsOf('CH-1', 'CH-2', 'CH-3')).toEqual({ 'CH-1': 'CH-1', 'CH-2': 'CH-1', 'CH-3': 'CH-1' });
  });

  it('never links a generic address, nor records of different names, and leaves them as they were', async () => {
    await importContacts(
      'household.csv',
      'HH-1,info@famille-leroy.fr,,Marc,Leroy,FR,2025-01-01',
      'HH-2,Info@famille-leroy.fr,,Julie,Leroy,FR,2025-01-01',
      'HH-3,contact@atelier.fr,,Sam,Blanc,FR,2025-01-01',
      'HH-4,contact@atelier.fr,,Sam,Blanc,FR,2025-01-02',
      'HH-5,lea.noir@example.com,,Léa,Noir,FR,2025-01-01',
      'HH-6,lea.noir@example.com,,Théo,Noir,FR,2025-01-01',
    );
    expect(await personsOf('HH-1', 'HH-2', 'HH-3', 'HH-4', 'HH-5', 'HH-6')).toEqual({
      'HH-1': 'HH-1',
      'HH-2': 'HH-2',
      'HH-3': 'HH-3',
      'HH-4': 'HH-4',
      'HH-5': 'HH-5',
      'HH-6': 'HH-6',
    });
  });

  it('a withdrawal on one record stands for the person against an older grant on another record', async () => {
    await importContacts(
      'two-sources.csv',
      'WD-A,marie.bon@example.com,,Marie,Bon,FR,2025-01-01',
      'WD-B,Marie.Bon@example.com,,Marie,Bon,FR,2025-01-02',
    );
    await importConsents(
      'grants.csv',
      'WD-A,profiling,,granted,2026-01-10T10:00:00Z,web_form,explicit_checkbox,privacy-v4,ev-1,',
      'WD-A,direct_marketing,email,granted,2026-01-10T10:00:00Z,web_form,double_opt_in,privacy-v4,ev-2,',
    );
    expect(await reachableOnEmail()).toContain('WD-A');
    await importConsents('withdrawal.csv', 'WD-B,direct_marketing,email,withdrawn,2026-02-01T10:00:00Z,crm,,privacy-v4,ev-3,');
    expect(await reachableOnEmail()).not.toContain('WD-A');
    expect(await reachableOnEmail()).not.toContain('WD-B');
    const { rows } = await database.pool.query(
      `SELECT s.status, r.external_id AS record FROM consent_state s JOIN contacts r ON r.id = s.record_id
       JOIN contacts p ON p.id = s.contact_id WHERE p.external_id = 'WD-A' AND s.purpose = 'direct_marketing' AND s.channel_key = 'email'`,
    );
    expect(rows).toEqual([{ status: 'withdrawn', record: 'WD-B' }]);
  });

  it('a refusal on one record and a grant on another at the same instant: the refusal wins', async () => {
    await importContacts(
      'tie.csv',
      'TIE-A,noe.vert@example.com,,Noé,Vert,FR,2025-01-01',
      'TIE-B,noe.vert@example.com,,Noé,Vert,FR,2025-01-02',
    );
    await importConsents(
      'tie-consents.csv',
      'TIE-A,profiling,,granted,2026-01-10T10:00:00Z,web_form,explicit_checkbox,privacy-v4,ev-4,',
      'TIE-B,direct_marketing,email,refused,2026-01-10T10:00:00Z,crm,,privacy-v4,ev-5,',
      'TIE-A,direct_marketing,email,granted,2026-01-10T10:00:00Z,web_form,double_opt_in,privacy-v4,ev-6,',
    );
    expect(await reachableOnEmail()).not.toContain('TIE-A');
  });

  it('records merged after their consents were recorded: the person state is rebuilt from every record', async () => {
    await importContacts('late-1.csv', 'LATE-A,ines.gris@example.com,,Inès,Gris,FR,2025-01-01');
    await importContacts('late-2.csv', 'LATE-B,,+33639983003,Inès,Gris,FR,2025-01-02');
    await importConsents(
      'late-consents.csv',
      'LATE-A,profiling,,granted,2026-01-10T10:00:00Z,web_form,explicit_checkbox,privacy-v4,ev-7,',
      'LATE-A,direct_marketing,email,granted,2026-01-10T10:00:00Z,web_form,double_opt_in,privacy-v4,ev-8,',
      'LATE-B,direct_marketing,email,withdrawn,2026-03-01T10:00:00Z,crm,,privacy-v4,ev-9,',
    );
    expect(await reachableOnEmail()).toContain('LATE-A');
    // LATE-B now gives the email of LATE-A: the two records become one person, and its withdrawal stands
    const report = await importContacts('late-3.csv', 'LATE-B,ines.gris@example.com,+33639983003,Inès,Gris,FR,2025-01-02');
    expect(report.linked).toBe(1);
    expect(await reachableOnEmail()).not.toContain('LATE-A');
    const { rows } = await database.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM consent_state s JOIN contacts c ON c.id = s.contact_id WHERE c.external_id = 'LATE-B'`,
    );
    expect(rows[0]!.n).toBe(0);
  });

  it('a dry run over the whole base reports what it would link and changes nothing', async () => {
    // linked by hand out of band: a dry run proposes to undo nothing that holds, and to link nothing new
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      const report = await resolveIdentities(client, 'all', DEFAULT_IDENTITY_POLICY, { dryRun: true });
      await client.query('COMMIT');
      expect(report.relinked).toEqual([]);
      expect(report.personsAfter).toBe(report.personsBefore);
      expect(report.examined).toBeGreaterThan(10);
    } finally {
      client.release();
    }
    // with a wider list of generic local parts, the dry run proposes to split SHOP-1 and CRM-77
    const before = await personsOf('SHOP-1', 'CRM-77');
    const strict = await database.pool.connect();
    try {
      await strict.query('BEGIN');
      const report = await resolveIdentities(
        strict,
        'all',
        { genericEmailLocalParts: ['jeanne.durand'], linkOnImport: true },
        { dryRun: true },
      );
      await strict.query('COMMIT');
      // the phone still links them
      expect(report.relinked.map((record) => record.externalId)).not.toContain('CRM-77');
    } finally {
      strict.release();
    }
    expect(await personsOf('SHOP-1', 'CRM-77')).toEqual(before);
  });

  it('lists what it did not link, and why', async () => {
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      const report = await resolveIdentities(client, 'all', DEFAULT_IDENTITY_POLICY, { dryRun: true, conflicts: true });
      await client.query('COMMIT');
      const described = report.conflicts.map((conflict) => ({
        identifier: conflict.identifier,
        reason: conflict.reason,
        records: conflict.records.map((record) => record.externalId).sort(),
      }));
      expect(described).toEqual(
        expect.arrayContaining([
          { identifier: 'email', reason: 'generic address', records: ['HH-1', 'HH-2'] },
          { identifier: 'email', reason: 'generic address', records: ['HH-3', 'HH-4'] },
          { identifier: 'email', reason: 'different names', records: ['HH-5', 'HH-6'] },
        ]),
      );
    } finally {
      client.release();
    }
  });

  it('splits a wrong link: the records named form a person of their own, and no later import links them back', async () => {
    const ids = Object.fromEntries(
      (
        await database.pool.query<{ external_id: string; id: number }>(
          `SELECT external_id, id FROM contacts WHERE external_id IN ('CH-1', 'CH-2', 'CH-3')`,
        )
      ).rows.map((row) => [row.external_id, row.id]),
    );
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      await expect(
        splitPerson(
          client,
          { personId: ids['CH-1']!, recordIds: [ids['CH-1']!, ids['CH-2']!, ids['CH-3']!], reason: 'x', actor: 'test' },
          DEFAULT_IDENTITY_POLICY,
        ),
      ).rejects.toThrow(/leave at least one/);
      await client.query('ROLLBACK');
      await client.query('BEGIN');
      const report = await splitPerson(
        client,
        { personId: ids['CH-1']!, recordIds: [ids['CH-3']!], reason: 'a shared family phone', actor: 'test' },
        DEFAULT_IDENTITY_POLICY,
      );
      await client.query('COMMIT');
      expect(report.persons.map((record) => [record.externalId, record.personId])).toEqual([
        ['CH-1', ids['CH-1']],
        ['CH-2', ids['CH-1']],
        ['CH-3', ids['CH-3']],
      ]);
    } finally {
      client.release();
    }
    await importContacts('chain-again.csv', 'CH-3,,+33639982002,,,FR,2025-01-03');
    expect(await personsOf('CH-1', 'CH-2', 'CH-3')).toEqual({ 'CH-1': 'CH-1', 'CH-2': 'CH-1', 'CH-3': 'CH-3' });
    const { rows } = await database.pool.query(`SELECT action FROM audit_log WHERE action = 'identities.split'`);
    expect(rows).toHaveLength(1);
  });
});
