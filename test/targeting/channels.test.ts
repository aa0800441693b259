import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Migration, Migrator, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONSENT_POLICY, DEFAULT_TARGETING_POLICY } from '../../src/config.ts';
import { channelFunnel } from '../../src/consent/eligibility.ts';
import { type DatabaseHandle, openDatabase } from '../../src/db/engine.ts';
import { MIGRATIONS_DIR } from '../../src/db/migrate.ts';
import { importOppositionList } from '../../src/opposition/opposition.import.ts';
import { savePersonalData } from '../../src/rights/subject.repository.ts';
import { buildTargetList, previewTargetList } from '../../src/targeting/target-list.service.ts';
import { ChannelClosedError } from '../../src/targeting/targeting.errors.ts';
import { FunnelTable } from '../../src/ui/model.page.tsx';
import { funnelView } from '../../src/ui/review.service.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { captureLogger } from '../helpers/silent-logger.ts';
import { importFile } from '../imports/import.fixtures.ts';
import { SCORED_SKU, type ScoredBase, seedScoredBase } from './targeting.fixtures.ts';

const NOW = new Date('2026-11-20T09:00:00Z');
const POLICIES = { consent: DEFAULT_CONSENT_POLICY, targeting: { ...DEFAULT_TARGETING_POLICY, pressureMaxLists: 100 } };
const files = tempFolder();

const request = (channel: string, top = 10) => ({
  sku: SCORED_SKU,
  channel,
  size: { top },
  holdoutPercent: 0,
  actor: 'test',
  apiKeyId: null,
});

/** Rule 12: a channel reaches a device. SMS goes to mobile numbers; a channel whose detail the base does not hold is closed. */
describe('SMS reaches mobile numbers only', () => {
  let database: DatabaseHandle;
  let base: ScoredBase;

  beforeAll(async () => {
    database = await createTestDatabase();
    // SMS consent for ranks 1, 3, 5, 7, 9, 11; everyone has a +33 6 mobile
    base = await seedScoredBase(database, 12, NOW);
    // rectified (the same write as the DPO's rectification): rank 1 to a Paris fixed line, rank 3 to a US number
    // (FIXED_LINE_OR_MOBILE: the plan cannot tell), rank 5 to a French VoIP number
    const rectified: Array<[number, string]> = [
      [0, '+33199000001'],
      [2, '+12015550123'],
      [4, '+33912345678'],
    ];
    await database.db.transaction().execute(async (trx) => {
      for (const [index, phone] of rectified) {
        const person = base.people[index]!;
        await savePersonalData(trx, person.id, { email: person.email, phone, first_name: null, last_name: null, country: 'FR' }, NOW);
      }
    });
  });
  afterAll(() => database?.close());

  it('leaves fixed lines and VoIP numbers out of SMS lists, keeps mobiles, and the funnel names the step', async () => {
    const list = await buildTargetList(database.db, request('sms'), POLICIES, NOW);
    expect(list.members.map((m) => m.rank)).toEqual([3, 7, 9, 11]);
    expect(list.members[0]!.contact).toBe('+12015550123');
    expect(list.funnel).toMatchObject({ examined: 12, consentedForChannel: 4, returned: 4 });

    const funnel = await channelFunnel(database.db, 'sms', NOW, DEFAULT_CONSENT_POLICY);
    expect(funnel).toMatchObject({
      contactDetail: 'a mobile number',
      channelConsent: 6,
      withContactDetail: 4,
      notObjected: 4,
      blocked: null,
    });
  });

  it('keeps every phone for calls', async () => {
    await importOppositionList(
      { database, logger: captureLogger().logger, now: NOW, defaultPhoneCountry: 'FR' },
      { name: 'bloctel', channel: 'phone', listDate: NOW, file: files.write('bloctel.csv', csv('value', '+33 1 99 00 99 99')) },
    );
    const funnel = await channelFunnel(database.db, 'phone', NOW, DEFAULT_CONSENT_POLICY);
    expect(funnel).toMatchObject({ contactDetail: 'a phone number', blocked: null });
  });

  it('matches SMS opposition lists on the number', async () => {
    const report = await importOppositionList(
      { database, logger: captureLogger().logger, now: NOW, defaultPhoneCountry: 'FR' },
      { name: 'sms-stop', channel: 'sms', listDate: NOW, file: files.write('sms-stop.csv', csv('value', base.people[6]!.phone)) },
    );
    expect(report).toMatchObject({ status: 'committed', entries: 1 });
    const preview = await previewTargetList(database.db, request('sms'), POLICIES, NOW);
    expect(preview.funnel).toMatchObject({ consentedForChannel: 4, notOpposed: 3, returned: 3 });
  });
});

describe('postal and push are closed: contacts hold no address and no device', () => {
  let database: DatabaseHandle;

  beforeAll(async () => {
    database = await createTestDatabase();
    await seedScoredBase(database, 4, NOW);
    await database.db
      .insertInto('consent_events')
      .values(
        (await database.db.selectFrom('contacts').select('id').execute()).flatMap(({ id }) =>
          ['postal', 'push'].map((channel) => ({
            contact_id: id,
            purpose: 'direct_marketing',
            channel,
            status: 'granted' as const,
            captured_at: new Date('2026-10-01T00:00:00Z'),
            source: 'web:account-form',
            method: 'explicit_checkbox',
            notice_version: 'privacy-v3',
            evidence_ref: null,
            expires_at: null,
            import_id: null,
          })),
        ),
      )
      .execute();
  });
  afterAll(() => database?.close());

  for (const [channel, reason, step] of [
    ['postal', 'no postal address is held for contacts', 'a postal address'],
    ['push', 'no push token or device id is held for contacts', 'a push token or device id'],
  ] as const) {
    it(`closes ${channel} with its reason, in the funnel and for lists and previews`, async () => {
      const funnel = await channelFunnel(database.db, channel, NOW, DEFAULT_CONSENT_POLICY);
      expect(funnel).toMatchObject({
        contactDetail: step,
        channelConsent: 4,
        withContactDetail: 0,
        notObjected: 0,
        blocked: `channel ${channel} reaches no one: ${reason}`,
      });
      await expect(buildTargetList(database.db, request(channel), POLICIES, NOW)).rejects.toThrow(
        new ChannelClosedError(`channel ${channel} reaches no one: ${reason}`),
      );
      await expect(previewTargetList(database.db, request(channel), POLICIES, NOW)).rejects.toBeInstanceOf(ChannelClosedError);
    });
  }

  it('shows on the review page which channels are closed and why, and the detail each needs', async () => {
    // the funnel a run records when it publishes: every channel, as channelFunnel gives it
    const codes = (await database.db.selectFrom('channels').select('code').orderBy('code').execute()).map((row) => row.code);
    const channels = await Promise.all(codes.map((code) => channelFunnel(database.db, code, NOW, DEFAULT_CONSENT_POLICY)));
    const view = funnelView({ at: NOW.toISOString(), channels }, 4, 4)!;
    const html = String(FunnelTable({ funnel: view }));
    const row = (channel: string) => new RegExp(`<tr><th scope="row">${channel}(.*?)</tr>`).exec(html)?.[1] ?? '';
    expect(row('postal')).toContain('(needs a postal address)');
    expect(row('postal')).toContain('channel postal reaches no one: no postal address is held for contacts');
    expect(row('push')).toContain('channel push reaches no one: no push token or device id is held for contacts');
    expect(row('sms')).toContain('(needs a mobile number)');
    expect(row('email')).toMatch(/<td class="reason">open<\/td>$/);
  });
});

describe('the line type of a number', () => {
  it('is stored by the contacts import', async () => {
    const database = await createTestDatabase();
    try {
      const file = files.write(
        'contacts.csv',
        csv(
          'external_id,email,phone,created_at',
          'LT-1,,01 99 00 00 01,2026-01-01',
          'LT-2,,06 12 34 56 78,2026-01-01',
          'LT-3,,06 39 98 00 03,2026-01-01', // ARCEP's fiction range for mobiles
          'LT-4,,+1 201 555 0123,2026-01-01',
          'LT-5,a@example.com,,2026-01-01',
        ),
      );
      expect(await importFile(database, 'contacts', file)).toMatchObject({ status: 'committed', inserted: 5 });
      const rows = await sql<{ external_id: string; phone_line_type: string | null }>`
        SELECT c.external_id, d.phone_line_type FROM contacts c JOIN contact_personal_data d ON d.contact_id = c.id ORDER BY 1`.execute(
        database.db,
      );
      expect(rows.rows.map((row) => row.phone_line_type)).toEqual(['FIXED_LINE', 'MOBILE', 'MOBILE', 'FIXED_LINE_OR_MOBILE', null]);
    } finally {
      await database.close();
    }
  });

  it('is filled in for contacts imported before it existed, and SMS moves to the mobile field', async () => {
    const database = await openDatabase({ kind: 'pglite', dataDir: 'memory://' });
    try {
      const names = (await readdir(MIGRATIONS_DIR)).filter((file) => /^\d.*\.ts$/.test(file)).sort();
      const migrations: Record<string, Migration> = {};
      for (const file of names) migrations[file.slice(0, -3)] = (await import(pathToFileURL(join(MIGRATIONS_DIR, file)).href)) as Migration;
      const migrator = new Migrator({ db: database.db, provider: { getMigrations: async () => migrations } });
      const mine = names.findIndex((file) => file.startsWith('20261203_1000_'));
      expect((await migrator.migrateTo(names[mine - 1]!.slice(0, -3))).error).toBeUndefined();
      await sql`INSERT INTO contacts (external_id, created_at) VALUES ('OLD-1', now()), ('OLD-2', now()), ('OLD-3', now())`.execute(
        database.db,
      );
      await sql`
        INSERT INTO contact_personal_data (contact_id, phone, phone_hash)
        SELECT id, phone, encode(sha256(phone::bytea), 'hex') FROM contacts
        JOIN (VALUES ('OLD-1', '+33199000001'), ('OLD-2', '+33612345678'), ('OLD-3', NULL)) v(ref, phone) ON v.ref = external_id`.execute(
        database.db,
      );
      expect((await migrator.migrateTo(names[mine]!.slice(0, -3))).error).toBeUndefined();
      const rows = await sql<{ phone_line_type: string | null }>`
        SELECT d.phone_line_type FROM contacts c JOIN contact_personal_data d ON d.contact_id = c.id ORDER BY c.external_id`.execute(
        database.db,
      );
      expect(rows.rows.map((row) => row.phone_line_type)).toEqual(['FIXED_LINE', 'MOBILE', null]);
      const sms = await sql<{ contact_field: string }>`SELECT contact_field FROM channels WHERE code = 'sms'`.execute(database.db);
      expect(sms.rows).toEqual([{ contact_field: 'mobile' }]);
    } finally {
      await database.close();
    }
  });
});
