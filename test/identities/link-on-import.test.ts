import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { DEFAULT_IDENTITY_POLICY, resolveIdentities } from '../../src/identities/resolution.repository.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { importFile } from '../imports/import.fixtures.ts';

/*
 * CIBLE_IDENTITY_LINK_ON_IMPORT (issue 19): true by default, every contacts import links its
 * records into persons; false leaves that to `cible identities resolve`.
 */

let database: DatabaseHandle;
const files = tempFolder();
const CONTACT_HEADER = 'external_id,email,phone,first_name,last_name,created_at';

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database?.close());

/** external id -> the external id of the person's first record */
async function personsOf(...externalIds: string[]): Promise<Record<string, string>> {
  const { rows } = await database.pool.query<{ external_id: string; person: string }>(
    `SELECT c.external_id, p.external_id AS person FROM contacts c JOIN contacts p ON p.id = c.person_id
     WHERE c.external_id = ANY($1::text[])`,
    [externalIds],
  );
  return Object.fromEntries(rows.map((row) => [row.external_id, row.person]));
}

describe('CIBLE_IDENTITY_LINK_ON_IMPORT', () => {
  it('is true by default, reads true or false, and refuses anything else naming the variable', () => {
    expect(loadConfig({}).identityPolicy.linkOnImport).toBe(true);
    expect(loadConfig({ CIBLE_IDENTITY_LINK_ON_IMPORT: 'true' }).identityPolicy.linkOnImport).toBe(true);
    expect(loadConfig({ CIBLE_IDENTITY_LINK_ON_IMPORT: 'false' }).identityPolicy).toEqual({
      ...DEFAULT_IDENTITY_POLICY,
      linkOnImport: false,
    });
    // the generic addresses are read beside it, each from its own variable
    expect(loadConfig({ CIBLE_IDENTITY_LINK_ON_IMPORT: 'false', CIBLE_IDENTITY_GENERIC_EMAILS: 'club' }).identityPolicy).toEqual({
      genericEmailLocalParts: ['club'],
      linkOnImport: false,
    });
    for (const value of ['yes', 'no', '1', '0', 'TRUE', 'False']) {
      expect(() => loadConfig({ CIBLE_IDENTITY_LINK_ON_IMPORT: value }), value).toThrow(ConfigError);
    }
    expect(() => loadConfig({ CIBLE_IDENTITY_LINK_ON_IMPORT: 'off' })).toThrow(/CIBLE_IDENTITY_LINK_ON_IMPORT: must be true or false/);
  });

  it('false: the contacts import leaves every record its own person, and a whole-base resolve links them', async () => {
    const policy = loadConfig({ CIBLE_IDENTITY_LINK_ON_IMPORT: 'false' }).identityPolicy;
    const file = files.write(
      'two-sources.csv',
      csv(
        CONTACT_HEADER,
        'OFF-1,Anne.Mercier@Example.com,,Anne,Mercier,2025-01-01',
        'OFF-2,anne.mercier@example.com,,Anne,Mercier,2025-01-02',
      ),
    );
    const report = await importFile(database, 'contacts', file, {}, { identityPolicy: policy });
    expect(report).toMatchObject({ status: 'committed', rejected: 0, linked: 0 });
    expect(await personsOf('OFF-1', 'OFF-2')).toEqual({ 'OFF-1': 'OFF-1', 'OFF-2': 'OFF-2' });

    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      const resolution = await resolveIdentities(client, 'all', policy);
      await client.query('COMMIT');
      expect(resolution.relinked.map((record) => record.via)).toEqual([['email']]);
    } finally {
      client.release();
    }
    expect(await personsOf('OFF-1', 'OFF-2')).toEqual({ 'OFF-1': 'OFF-1', 'OFF-2': 'OFF-1' });
  });

  it('true (the default): the same records imported are linked by the import itself', async () => {
    const file = files.write(
      'two-sources-on.csv',
      csv(CONTACT_HEADER, 'ON-1,Paul.Girard@Example.com,,Paul,Girard,2025-01-01', 'ON-2,paul.girard@example.com,,Paul,Girard,2025-01-02'),
    );
    const report = await importFile(database, 'contacts', file, {}, { identityPolicy: loadConfig({}).identityPolicy });
    expect(report).toMatchObject({ status: 'committed', rejected: 0, linked: 1 });
    expect(await personsOf('ON-1', 'ON-2')).toEqual({ 'ON-1': 'ON-1', 'ON-2': 'ON-1' });
  });
});
