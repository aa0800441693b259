import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONSENT_POLICY } from '../../src/config.ts';
import type { ConsentStatus } from '../../src/consent/consent.table.ts';
import { channelFunnel, countingConsents, profileableContacts, reachableContacts } from '../../src/consent/eligibility.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { importOppositionList } from '../../src/opposition/opposition.import.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { csv, tempFolder } from '../helpers/files.ts';
import { captureLogger } from '../helpers/silent-logger.ts';
import { importFile, NOW } from '../imports/import.fixtures.ts';

/*
 * Rule 4: a withdrawal, an objection or an opposition list takes effect at once.
 * Each change below is followed directly by the next answer of the eligibility
 * queries, with no batch job in between.
 */

let database: DatabaseHandle;
const files = tempFolder();

const CHANNELS = ['sms', 'email', 'phone'] as const;
type Channel = (typeof CHANNELS)[number];

const CONTACTS = csv(
  'external_id,email,phone,first_name,last_name,country,created_at',
  'IE-ALICE,Alice.Martin@example.com,06 39 98 00 01,Alice,Martin,FR,2025-11-02',
  'IE-BRUNO,bruno.petit@example.com,+33 6 39 98 00 02,Bruno,Petit,FR,2025-11-03',
  'IE-CHLOE,chloe.roux@example.com,06.39.98.00.03,Chloé,Roux,FR,2025-11-04',
  'IE-DAVID,david.leroy@example.com,+33639980004,David,Leroy,FR,2025-11-05',
  'IE-EMMA,emma.moreau@example.com,06 39 98 00 05,Emma,Moreau,FR,2025-11-06',
  'IE-FARID,farid.benali@example.com,01 99 00 00 06,Farid,Benali,FR,2025-11-07',
  // only pre-ticked and bundled consents: stored, never eligible
  'IE-GINA,gina.costa@example.com,06 39 98 00 07,Gina,Costa,FR,2025-11-08',
);
const EVERY_VALID_CONTACT = ['IE-ALICE', 'IE-BRUNO', 'IE-CHLOE', 'IE-DAVID', 'IE-EMMA', 'IE-FARID'];
const GRANTED_AT = '2026-01-15T10:00:00Z';
const CONSENT_HEADER = 'external_id,purpose,channel,status,captured_at,source,method,notice_version,evidence_ref,expires_at';

function validConsents(externalId: string): string[] {
  return [
    `${externalId},profiling,,granted,${GRANTED_AT},web_form,explicit_checkbox,privacy-v4,ev-${externalId}-p,`,
    `${externalId},direct_marketing,sms,granted,${GRANTED_AT},web_form,double_opt_in,privacy-v4,ev-${externalId}-s,`,
    `${externalId},direct_marketing,email,granted,${GRANTED_AT},web_form,double_opt_in,privacy-v4,ev-${externalId}-e,`,
    `${externalId},direct_marketing,phone,granted,${GRANTED_AT},call_centre,recorded_verbal,privacy-v4,ev-${externalId}-t,`,
  ];
}

const CONSENTS = csv(
  CONSENT_HEADER,
  ...EVERY_VALID_CONTACT.flatMap(validConsents),
  `IE-GINA,profiling,,granted,${GRANTED_AT},web_form,pre_ticked,privacy-v4,,`,
  `IE-GINA,direct_marketing,sms,granted,${GRANTED_AT},checkout,bundled,privacy-v4,,`,
);

beforeAll(async () => {
  database = await createTestDatabase();
  expect(await importFile(database, 'contacts', files.write('contacts.csv', CONTACTS))).toMatchObject({ status: 'committed', inserted: 7 });
  expect(await importFile(database, 'consents', files.write('consents.csv', CONSENTS))).toMatchObject({
    status: 'committed',
    inserted: 26,
  });
});
afterAll(() => database?.close());

// ---------------------------------------------------------------- helpers

const at = (iso: string) => new Date(iso);

async function contactId(externalId: string): Promise<number> {
  const row = await database.db.selectFrom('contacts').select('id').where('external_id', '=', externalId).executeTakeFirstOrThrow();
  return row.id;
}

async function externalIds(contactIds: Iterable<number>): Promise<string[]> {
  const ids = [...contactIds];
  if (ids.length === 0) return [];
  const rows = await database.db.selectFrom('contacts').select('external_id').where('id', 'in', ids).execute();
  return rows.map((row) => row.external_id!).sort();
}

/** External ids of the contacts `reachableContacts` gives for a channel, now. */
async function reachable(channel: Channel, now = NOW): Promise<string[]> {
  const { contact_field: contactField } = await database.db
    .selectFrom('channels')
    .select('contact_field')
    .where('code', '=', channel)
    .executeTakeFirstOrThrow();
  const { rows } = await sql<{ contact_id: number }>`
    SELECT r.contact_id FROM ${reachableContacts(channel, contactField, now)} r`.execute(database.db);
  return externalIds(rows.map((row) => row.contact_id));
}

function funnel(channel: Channel, now = NOW) {
  return channelFunnel(database.db, channel, now, DEFAULT_CONSENT_POLICY);
}

async function profileable(now = NOW, live = true): Promise<string[]> {
  return externalIds((await profileableContacts(database.db, now, live)).map((row) => row.contactId));
}

/** External ids whose consent counts as of `instant`, read from the ledger (live = false). */
async function countingAsOf(purpose: string, channel: string | null, instant: Date): Promise<string[]> {
  const { rows } = await sql<{ contact_id: number }>`
    SELECT contact_id FROM ${countingConsents(purpose, channel, instant, false)} c`.execute(database.db);
  return externalIds(rows.map((row) => row.contact_id));
}

/** Appends one event to the ledger the way an API call would: one INSERT, no import. */
async function recordEvent(
  externalId: string,
  event: { purpose: string; channel: string | null; status: ConsentStatus; capturedAt: string; source?: string; method?: string | null },
): Promise<void> {
  await database.db
    .insertInto('consent_events')
    .values({
      contact_id: await contactId(externalId),
      purpose: event.purpose,
      channel: event.channel,
      status: event.status,
      captured_at: at(event.capturedAt),
      source: event.source ?? 'preference_centre',
      method: event.method === undefined ? 'explicit_checkbox' : event.method,
      notice_version: 'privacy-v4',
      evidence_ref: null,
      expires_at: null,
      import_id: null,
    })
    .execute();
}

async function importConsentLines(name: string, ...lines: string[]): Promise<void> {
  expect(await importFile(database, 'consents', files.write(name, csv(CONSENT_HEADER, ...lines)))).toMatchObject({ status: 'committed' });
}

async function importPhoneOppositionList(name: string, listDate: string, ...values: string[]) {
  return importOppositionList(
    { database, logger: captureLogger().logger, now: NOW, defaultPhoneCountry: 'FR' },
    { name, channel: 'phone', listDate: at(listDate), file: files.write(`${name}-${listDate}.csv`, csv('value', ...values)) },
  );
}

/** Everything the eligibility queries answer now, to compare before and after one change. */
async function snapshot() {
  const result = { profileable: await profileable() } as {
    profileable: string[];
  } & Record<Channel, { reachable: string[]; funnel: Awaited<ReturnType<typeof funnel>> }>;
  for (const channel of CHANNELS) result[channel] = { reachable: await reachable(channel), funnel: await funnel(channel) };
  return result;
}

const without = (list: string[], externalId: string) => list.filter((id) => id !== externalId);

// ---------------------------------------------------------------- the tests (in order: they share one base)

describe('the phone channel needs a fresh opposition list (Bloctel: at most 30 days)', () => {
  it('is blocked, with its reason and nobody reachable, while no phone list is loaded', async () => {
    const phone = await funnel('phone');
    expect(phone.blocked).toBe('no opposition list is loaded for channel phone: import one (e.g. Bloctel) before using it');
    expect(phone).toMatchObject({ channelConsent: 6, withContactDetail: 6, notOpposed: 0, notObjected: 0 });
    // the other channels do not need a list; SMS reaches mobiles only (IE-FARID has a fixed line)
    expect(await funnel('sms')).toMatchObject({
      blocked: null,
      contactDetail: 'a mobile number',
      channelConsent: 6,
      withContactDetail: 5,
      notObjected: 5,
    });
    expect(await funnel('email')).toMatchObject({ blocked: null, notObjected: 6 });
  });

  it('is blocked with a list dated 31 days before now, open with one dated 30 days before', async () => {
    await importPhoneOppositionList('bloctel', '2026-05-01', '+33 1 99 00 99 99');
    const stale = await funnel('phone');
    expect(stale.blocked).toMatch(/^opposition list "bloctel" for channel phone is 31 days old \(at most 30\): import a fresh copy/);
    expect(stale).toMatchObject({ notOpposed: 0, notObjected: 0 });

    await importPhoneOppositionList('bloctel', '2026-05-02', '+33 1 99 00 99 99');
    expect(await funnel('phone')).toMatchObject({ blocked: null, notObjected: 6 });
  });

  it('is open with a fresh list, and every valid contact with a phone is reachable', async () => {
    await importPhoneOppositionList('bloctel', '2026-05-29', '+33 1 99 00 99 99', '01 99 00 99 98');
    const phone = await funnel('phone');
    expect(phone).toMatchObject({ blocked: null, contacts: 7, profilingConsent: 6, channelConsent: 6, notOpposed: 6, notObjected: 6 });
    expect(await reachable('phone')).toEqual(EVERY_VALID_CONTACT);
    expect(await reachable('sms')).toEqual(without(EVERY_VALID_CONTACT, 'IE-FARID'));
    expect(await reachable('email')).toEqual(EVERY_VALID_CONTACT);
    expect(await profileable()).toEqual(EVERY_VALID_CONTACT);
  });
});

describe('a change takes effect in the very next answer', () => {
  it('a profiling withdrawal removes the contact from profiling and from every channel, while the past still shows the consent', async () => {
    const before = await snapshot();
    expect(before.profileable).toContain('IE-ALICE');

    await importConsentLines(
      'alice-withdraws.csv',
      'IE-ALICE,profiling,,withdrawn,2026-05-20T09:00:00Z,preference_centre,explicit_checkbox,privacy-v4,ev-a-w,',
    );

    const after = await snapshot();
    expect(after.profileable).toEqual(without(before.profileable, 'IE-ALICE'));
    for (const channel of CHANNELS) {
      expect(after[channel].reachable, channel).toEqual(without(before[channel].reachable, 'IE-ALICE'));
      expect(after[channel].funnel.profilingConsent, channel).toBe(before[channel].funnel.profilingConsent - 1);
      expect(after[channel].funnel.notObjected, channel).toBe(before[channel].funnel.notObjected - 1);
    }

    // lineage: as of an instant before the withdrawal the consent counted, with the grant as its proof
    const aliceGrant = await database.db
      .selectFrom('consent_events')
      .select('id')
      .where('contact_id', '=', await contactId('IE-ALICE'))
      .where('purpose', '=', 'profiling')
      .where('status', '=', 'granted')
      .executeTakeFirstOrThrow();
    const justBefore = at('2026-05-20T08:59:59.999Z');
    expect(await countingAsOf('profiling', null, justBefore)).toContain('IE-ALICE');
    expect(await countingAsOf('profiling', null, at('2026-05-20T09:00:00Z'))).not.toContain('IE-ALICE');
    const snapshotBefore = await profileableContacts(database.db, justBefore, false);
    expect(snapshotBefore.find((row) => row.consentEventId === aliceGrant.id)).toBeDefined();
    expect(await profileable(justBefore, false)).toEqual(before.profileable);
  });

  it('an SMS withdrawal removes the contact from SMS only', async () => {
    const before = await snapshot();
    await recordEvent('IE-BRUNO', { purpose: 'direct_marketing', channel: 'sms', status: 'withdrawn', capturedAt: '2026-05-21T10:00:00Z' });
    const after = await snapshot();

    expect(after.sms.reachable).toEqual(without(before.sms.reachable, 'IE-BRUNO'));
    expect(after.sms.funnel.channelConsent).toBe(before.sms.funnel.channelConsent - 1);
    expect(after.email.reachable).toContain('IE-BRUNO');
    expect(after.phone.reachable).toContain('IE-BRUNO');
    expect(after.email.funnel).toEqual(before.email.funnel);
    expect(after.phone.funnel).toEqual(before.phone.funnel);
    expect(after.profileable).toEqual(before.profileable);
  });

  it('an objection to direct marketing (no channel) removes the contact from every channel; a later grant restores that channel only', async () => {
    const before = await snapshot();
    await recordEvent('IE-CHLOE', {
      purpose: 'direct_marketing',
      channel: null,
      status: 'objected',
      capturedAt: '2026-05-25T14:00:00Z',
      method: null,
    });
    const objected = await snapshot();
    for (const channel of CHANNELS) {
      expect(objected[channel].reachable, channel).toEqual(without(before[channel].reachable, 'IE-CHLOE'));
      expect(objected[channel].funnel.notOpposed, channel).toBe(before[channel].funnel.notOpposed);
      expect(objected[channel].funnel.notObjected, channel).toBe(before[channel].funnel.notObjected - 1);
    }
    // an objection to direct marketing is not an objection to profiling
    expect(objected.profileable).toEqual(before.profileable);

    await recordEvent('IE-CHLOE', {
      purpose: 'direct_marketing',
      channel: 'sms',
      status: 'granted',
      capturedAt: '2026-05-28T09:30:00Z',
      method: 'double_opt_in',
    });
    const regranted = await snapshot();
    expect(regranted.sms.reachable).toEqual(before.sms.reachable);
    expect(regranted.sms.funnel).toEqual(before.sms.funnel);
    expect(regranted.email.reachable).not.toContain('IE-CHLOE');
    expect(regranted.phone.reachable).not.toContain('IE-CHLOE');
    expect(regranted.email.funnel).toEqual(objected.email.funnel);
    expect(regranted.phone.funnel).toEqual(objected.phone.funnel);
  });

  it('an objection captured at the same instant as a channel grant wins: the right to object is absolute', async () => {
    const before = await snapshot();
    expect(before.email.reachable).toContain('IE-FARID');
    await recordEvent('IE-FARID', { purpose: 'direct_marketing', channel: 'email', status: 'granted', capturedAt: '2026-05-29T08:00:00Z' });
    await recordEvent('IE-FARID', {
      purpose: 'direct_marketing',
      channel: null,
      status: 'objected',
      capturedAt: '2026-05-29T08:00:00Z',
      method: null,
    });
    const after = await snapshot();
    expect(after.email.reachable).toEqual(without(before.email.reachable, 'IE-FARID'));
    await recordEvent('IE-FARID', { purpose: 'direct_marketing', channel: 'email', status: 'granted', capturedAt: '2026-05-29T08:00:01Z' });
    expect((await snapshot()).email.reachable).toEqual(before.email.reachable);
  });

  it('a grant whose source is only tabs or line breaks has no proof of means and does not count', async () => {
    const before = await snapshot();
    expect(before.sms.reachable).not.toContain('IE-GINA');
    await recordEvent('IE-GINA', {
      purpose: 'profiling',
      channel: null,
      status: 'granted',
      capturedAt: '2026-05-29T09:00:00Z',
      source: '\t\n',
    });
    expect(await profileable()).not.toContain('IE-GINA');
    await recordEvent('IE-GINA', {
      purpose: 'profiling',
      channel: null,
      status: 'granted',
      capturedAt: '2026-05-29T09:00:01Z',
      source: ' web_form ',
    });
    expect(await profileable()).toContain('IE-GINA');
  });

  it('a phone opposition list that holds the number written differently removes the contact from phone only', async () => {
    const stored = await database.db
      .selectFrom('contact_personal_data')
      .select('phone')
      .where('contact_id', '=', await contactId('IE-DAVID'))
      .executeTakeFirstOrThrow();
    expect(stored.phone).toBe('+33639980004');

    const before = await snapshot();
    const report = await importPhoneOppositionList('bloctel', '2026-05-31', '+33 1 99 00 99 99', '06 39 98 00 04');
    expect(report).toMatchObject({ status: 'committed', entries: 2 });
    const after = await snapshot();

    expect(after.phone.reachable).toEqual(without(before.phone.reachable, 'IE-DAVID'));
    expect(after.phone.funnel.notOpposed).toBe(before.phone.funnel.notOpposed - 1);
    expect(after.phone.funnel.blocked).toBeNull();
    // the same number on an SMS campaign is not covered by a telemarketing list
    expect(after.sms).toEqual(before.sms);
    expect(after.email).toEqual(before.email);
  });

  it('a profiling withdrawal deletes that contact’s scores in the same transaction, and only then', async () => {
    const scoreSetId = await createLiveScoreSet();
    await scoreEveryProfileableContact(scoreSetId);
    const scoredBefore = await scoredContacts();
    expect(scoredBefore).toContain('IE-EMMA');
    expect(scoredBefore).toContain('IE-FARID');

    // events that leave the profiling consent counting keep the scores
    await recordEvent('IE-FARID', {
      purpose: 'direct_marketing',
      channel: 'email',
      status: 'withdrawn',
      capturedAt: '2026-05-26T08:00:00Z',
    });
    await recordEvent('IE-FARID', { purpose: 'profiling', channel: null, status: 'refused', capturedAt: '2025-12-01T08:00:00Z' }); // arrives late, happened earlier
    await recordEvent('IE-FARID', {
      purpose: 'profiling',
      channel: null,
      status: 'granted',
      capturedAt: '2026-05-26T09:00:00Z',
      method: 'signed_form',
    });
    expect(await scoredContacts()).toEqual(scoredBefore);

    await recordEvent('IE-EMMA', { purpose: 'profiling', channel: null, status: 'withdrawn', capturedAt: '2026-05-27T16:45:00Z' });
    expect(await scoredContacts()).toEqual(without(scoredBefore, 'IE-EMMA'));
    expect(await profileable()).not.toContain('IE-EMMA');
  });
});

// ---------------------------------------------------------------- scores fixture

async function createLiveScoreSet(): Promise<number> {
  const model = await database.pool.query<{ id: number }>(
    `INSERT INTO models (target_kind, target_key) VALUES ('category', 'garden') RETURNING id`,
  );
  const modelId = model.rows[0]!.id;
  const version = await database.pool.query<{ id: number }>(
    `INSERT INTO model_versions (model_id, version, algorithm, status, trained_at, consent_snapshot_at, population_size,
       training_cutoff, horizon_days, feature_list, code_version, training_data_hash)
     VALUES ($1, 1, 'logistic', 'champion', $2, $2, 6, '2026-05-01T00:00:00Z', 30, '["recency_days"]', 'test', 'sha256:test')
     RETURNING id`,
    [modelId, at('2026-05-15T02:00:00Z')],
  );
  const scoreSet = await database.pool.query<{ id: number }>(
    `INSERT INTO score_sets (model_id, model_version_id, status, scored_at) VALUES ($1, $2, 'live', $3) RETURNING id`,
    [modelId, version.rows[0]!.id, at('2026-05-15T03:00:00Z')],
  );
  const scoreSetId = scoreSet.rows[0]!.id;
  await database.pool.query(`CREATE TABLE scores_p${Number(scoreSetId)} PARTITION OF scores FOR VALUES IN (${Number(scoreSetId)})`);
  return scoreSetId;
}

async function scoreEveryProfileableContact(scoreSetId: number): Promise<void> {
  const eligible = await profileableContacts(database.db, NOW, true);
  await database.db
    .insertInto('scores')
    .values(
      eligible.map((row, index) => ({
        score_set_id: scoreSetId,
        contact_id: row.contactId,
        score: 0.9 - index * 0.1,
        rank: index + 1,
        percentile: (index + 1) / eligible.length,
        reason_1: 0,
        contribution_1: 0.2,
      })),
    )
    .execute();
}

async function scoredContacts(): Promise<string[]> {
  const rows = await database.db.selectFrom('scores').select('contact_id').execute();
  return externalIds(rows.map((row) => row.contact_id));
}
