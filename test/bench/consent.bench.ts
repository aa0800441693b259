// npm run bench:consent — the consent gate over 1M contacts / 3M consent events on PostgreSQL.
// Usage: npm run bench:consent [-- --contacts 1000000] [-- --runs 3] [-- --keep]
// Builds its own database (cible_bench_consent) on DATABASE_URL's server (default 127.0.0.1:5432),
// generates a synthetic base in SQL, vacuums it as autovacuum (or an import) would, times the
// eligibility queries and checks the funnels' consistency.
// Drops the database at the end unless --keep is given. Not a test: run it on a quiet machine.
import { parseArgs } from 'node:util';
import { sql } from 'kysely';
import pg from 'pg';
import { consentAudit } from '../../src/audit/consent-audit.service.ts';
import { DEFAULT_CONSENT_POLICY } from '../../src/config.ts';
import { type ChannelFunnel, channelFunnel, countingConsents, profileableContacts } from '../../src/consent/eligibility.ts';
import { type DatabaseHandle, openDatabase } from '../../src/db/engine.ts';
import { migrateToLatest } from '../../src/db/migrate.ts';
import { DEFAULT_IDENTITY_POLICY, resolveIdentities } from '../../src/identities/resolution.repository.ts';

const { values } = parseArgs({
  options: {
    contacts: { type: 'string', default: '1000000' },
    runs: { type: 'string', default: '3' },
    keep: { type: 'boolean', default: false },
  },
});
const CONTACTS = Number(values.contacts);
const RUNS = Number(values.runs);
const DATABASE = 'cible_bench_consent';
const TARGET_SECONDS = 2;
const NOW = new Date();
const AS_OF = new Date(NOW.getTime() - 365 * 86_400_000);
const serverUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

async function seconds<T>(run: () => Promise<T>): Promise<{ seconds: number; result: T }> {
  const began = process.hrtime.bigint();
  const result = await run();
  return { seconds: Number(process.hrtime.bigint() - began) / 1e9, result };
}

const median = (samples: number[]) => [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)]!;

// A deterministic pseudo-random draw in [0, m) per contact and key, so every run builds the same base.
const DRAW_FUNCTION = `
  CREATE FUNCTION bench_draw(id bigint, k int, m int) RETURNS int IMMUTABLE LANGUAGE sql
  AS $$ SELECT ((hashint8(id * 64 + k)::bigint + 2147483648) % m)::int $$`;

/**
 * Contacts with personal data hashed as src/contacts/identity.ts does: SHA-256 hex of the normalised value.
 * 5% of the records are a second record of the contact before them (another source: same email, same
 * name, their own phone), so that identity resolution has persons to link.
 */
const DUPLICATE_SHARE = 5;
const CONTACTS_SQL = `
  INSERT INTO contacts (external_id, created_at)
  SELECT 'B' || lpad(i::text, 7, '0'), $2::timestamptz - (i % 3000) * interval '1 day'
  FROM generate_series(1, $1::int) i`;

const PERSONAL_DATA_SQL = `
  INSERT INTO contact_personal_data (contact_id, email, phone, first_name, last_name, country, email_hash, phone_hash)
  SELECT id, email, phone, 'First' || source, 'Last' || source, 'FR',
         encode(sha256(convert_to(email, 'UTF8')), 'hex'), encode(sha256(convert_to(phone, 'UTF8')), 'hex')
  FROM (
    SELECT id, source,
           CASE WHEN source <> id OR bench_draw(id, 60, 100) < 85 THEN 'b' || source || '@example.test' END AS email,
           CASE WHEN bench_draw(id, 61, 100) < 70 THEN '+336' || lpad(id::text, 8, '0') END AS phone
    FROM (SELECT id, CASE WHEN id > 1 AND bench_draw(id, 90, 100) < ${DUPLICATE_SHARE} THEN id - 1 ELSE id END AS source FROM contacts) c
  ) p`;

/**
 * Which consents each contact gets: the share (per mille) of contacts per purpose × channel,
 * and a key that makes the draws of each target independent.
 */
const TARGETS = `(VALUES ('profiling', NULL, 970, 0), ('direct_marketing', 'email', 600, 1),
  ('direct_marketing', 'sms', 400, 2), ('direct_marketing', 'phone', 300, 3), ('direct_marketing', 'postal', 200, 4))
  AS t(purpose, channel, share, k)`;

const GRANTED = `FROM contacts c CROSS JOIN ${TARGETS} WHERE bench_draw(c.id, t.k, 1000) < t.share`;

// Recent events first, older ones after: the state must keep the latest by captured_at, not by arrival.
/** Withdrawals of 10% of the grants, in the last 10 to 25 days. */
const WITHDRAWALS_SQL = `
  INSERT INTO consent_events (contact_id, purpose, channel, status, captured_at, source, method)
  SELECT c.id, t.purpose, t.channel, 'withdrawn', $1::timestamptz - (10 + bench_draw(c.id, 10 + t.k, 15)) * interval '1 day',
         'preference_centre', NULL
  ${GRANTED} AND bench_draw(c.id, 20 + t.k, 1000) < 100`;

/** A fifth of those who withdrew grant again, in the last 10 days. */
const REGRANTS_SQL = `
  INSERT INTO consent_events (contact_id, purpose, channel, status, captured_at, source, method, notice_version, evidence_ref)
  SELECT c.id, t.purpose, t.channel, 'granted', $1::timestamptz - bench_draw(c.id, 30 + t.k, 10) * interval '1 day' - interval '1 hour',
         'web_form', 'double_opt_in', 'privacy-v5', 'ev-re-' || c.id || '-' || t.k
  ${GRANTED} AND bench_draw(c.id, 20 + t.k, 1000) < 20`;

/** 0.5% object to direct marketing on every channel, in the last 20 days. */
const OBJECTIONS_SQL = `
  INSERT INTO consent_events (contact_id, purpose, channel, status, captured_at, source, method)
  SELECT id, 'direct_marketing', NULL, 'objected', $1::timestamptz - bench_draw(id, 40, 20) * interval '1 day', 'dpo_request', NULL
  FROM contacts WHERE bench_draw(id, 41, 1000) < 5`;

/**
 * The grants themselves, 30 days to ~7 years old: 3% pre-ticked, 1% implied, 1% bundled,
 * 4% collected before 25 May 2018 without a source; 10% carry an expiry within ±200 days of now.
 */
const GRANTS_SQL = `
  INSERT INTO consent_events
    (contact_id, purpose, channel, status, captured_at, source, method, notice_version, evidence_ref, expires_at)
  SELECT id, purpose, channel, 'granted', captured_at, source, method, notice_version, evidence_ref,
         CASE WHEN bench_draw(id, 50 + k, 100) < 10
              THEN greatest(captured_at + interval '1 day', $1::timestamptz + (bench_draw(id, 55 + k, 400) - 200) * interval '1 day') END
  FROM (
    SELECT c.id, t.purpose, t.channel, t.k, r,
           CASE WHEN r BETWEEN 50 AND 89 THEN '2014-01-01'::timestamptz + bench_draw(c.id, 5 + t.k, 1600) * interval '1 day'
                ELSE $1::timestamptz - (30 + bench_draw(c.id, 5 + t.k, 2600)) * interval '1 day' END AS captured_at,
           CASE WHEN r BETWEEN 50 AND 89 THEN NULL WHEN r < 30 OR r BETWEEN 40 AND 49 THEN 'checkout' ELSE 'web_form' END AS source,
           CASE WHEN r < 30 THEN 'pre_ticked' WHEN r < 40 THEN 'implied' WHEN r < 50 THEN 'bundled'
                ELSE (ARRAY['explicit_checkbox', 'double_opt_in', 'signed_form', 'recorded_verbal'])[1 + r % 4] END AS method,
           CASE WHEN r BETWEEN 50 AND 89 THEN NULL ELSE 'privacy-v' || (1 + r % 4) END AS notice_version,
           CASE WHEN r BETWEEN 50 AND 89 THEN NULL ELSE 'ev-' || c.id || '-' || t.k END AS evidence_ref
    FROM contacts c CROSS JOIN ${TARGETS} CROSS JOIN LATERAL (SELECT bench_draw(c.id, 15 + t.k, 1000) AS r) draw
    WHERE bench_draw(c.id, t.k, 1000) < t.share
  ) g`;

// The oldest events last: superseded profiling grants from 2010-2013, for 22% of contacts (brings the ledger to ~3M).
const HISTORY_SQL = `
  INSERT INTO consent_events (contact_id, purpose, channel, status, captured_at, source, method)
  SELECT id, 'profiling', NULL, 'granted', '2010-01-01'::timestamptz + bench_draw(id, 70, 1400) * interval '1 day', NULL, 'implied'
  FROM contacts WHERE bench_draw(id, 71, 1000) < 220`;

/** A Bloctel-like phone list dated 3 days ago: 3,000 of our contacts' numbers and 2,000 others. */
const OPPOSITION_SQL = `
  WITH list AS (
    INSERT INTO opposition_lists (name, channel, list_date, imported_at, entry_count)
    VALUES ('bloctel', 'phone', ($1::timestamptz - interval '3 days')::date, $1, 0) RETURNING id
  )
  INSERT INTO opposition_entries (list_id, value_hash)
  SELECT list.id, hash FROM list, (
    (SELECT phone_hash AS hash FROM contact_personal_data WHERE phone_hash IS NOT NULL AND bench_draw(contact_id, 80, 1000) < 5 LIMIT 3000)
    UNION
    (SELECT encode(sha256(convert_to('+337' || lpad(i::text, 8, '0'), 'UTF8')), 'hex') FROM generate_series(1, 2000) i)
  ) hashes`;

const OPPOSITION_COUNT_SQL = `
  UPDATE opposition_lists l SET entry_count = (SELECT count(*) FROM opposition_entries e WHERE e.list_id = l.id)`;

async function createBenchDatabase(admin: pg.Pool): Promise<DatabaseHandle> {
  await admin.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${DATABASE}`);
  const url = new URL(serverUrl);
  url.pathname = `/${DATABASE}`;
  const database = await openDatabase({ kind: 'postgres', url: url.toString() });
  await migrateToLatest(database.db);
  return database;
}

async function load(database: DatabaseHandle): Promise<Array<Record<string, string | number>>> {
  const steps: Array<[string, string, unknown[]]> = [
    ['draw function', DRAW_FUNCTION, []],
    ['contacts', CONTACTS_SQL, [CONTACTS, NOW]],
    ['contact_personal_data', PERSONAL_DATA_SQL, []],
    ['withdrawals (recent, inserted first)', WITHDRAWALS_SQL, [NOW]],
    ['re-grants', REGRANTS_SQL, [NOW]],
    ['objections', OBJECTIONS_SQL, [NOW]],
    ['grants (older, inserted after)', GRANTS_SQL, [NOW]],
    ['old superseded grants (inserted last)', HISTORY_SQL, []],
    ['opposition list (phone)', OPPOSITION_SQL, [NOW]],
    ['opposition list count', OPPOSITION_COUNT_SQL, []],
    ['ANALYZE', 'ANALYZE', []],
  ];
  const timings: Array<Record<string, string | number>> = [];
  for (const [step, text, parameters] of steps) {
    const { seconds: took, result } = await seconds(() => database.pool.query(text, parameters));
    timings.push({ step, rows: result.rowCount ?? 0, seconds: Number(took.toFixed(2)) });
  }
  return timings;
}

async function tableSizes(database: DatabaseHandle): Promise<Record<string, number>> {
  const { rows } = await database.pool.query<Record<string, number>>(`
    SELECT (SELECT count(*) FROM contacts)::int AS contacts,
           (SELECT count(*) FROM contact_personal_data)::int AS contact_personal_data,
           (SELECT count(*) FROM consent_events)::int AS consent_events,
           (SELECT count(*) FROM consent_state)::int AS consent_state,
           (SELECT count(*) FROM opposition_entries)::int AS opposition_entries`);
  return rows[0]!;
}

interface Measure {
  name: string;
  run: () => Promise<number | ChannelFunnel>;
}

async function countOf(database: DatabaseHandle, at: Date, live: boolean): Promise<number> {
  const { rows } = await sql<{ n: number }>`
    SELECT count(*)::int AS n FROM ${countingConsents('profiling', null, at, live)} p`.execute(database.db);
  return rows[0]!.n;
}

/** The ledger read as of T per record, as the gate did before persons (issue 19): the anchor of the person-level form. */
async function recordLevelCountOf(database: DatabaseHandle, at: Date): Promise<number> {
  const { rows } = await database.pool.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM (
       SELECT DISTINCT ON (contact_id) contact_id, status, method, source, expires_at
       FROM consent_events WHERE purpose = 'profiling' AND channel IS NULL AND captured_at <= $1
       ORDER BY contact_id, captured_at DESC, id DESC) latest
     LEFT JOIN consent_methods m ON m.code = latest.method
     WHERE consent_is_valid(latest.status, latest.source, m.is_explicit) AND (latest.expires_at IS NULL OR latest.expires_at > $1)`,
    [at],
  );
  return rows[0]!.n;
}

function measures(database: DatabaseHandle): Measure[] {
  const funnel = (channel: string) => () => channelFunnel(database.db, channel, NOW, DEFAULT_CONSENT_POLICY);
  return [
    { name: 'channelFunnel email', run: funnel('email') },
    { name: 'channelFunnel sms', run: funnel('sms') },
    { name: 'channelFunnel phone', run: funnel('phone') },
    { name: 'profileableContacts(now, live) rows', run: async () => (await profileableContacts(database.db, NOW, true)).length },
    { name: 'count countingConsents(profiling, now, live)', run: () => countOf(database, NOW, true) },
    { name: 'count countingConsents(profiling, T-365d, ledger)', run: () => countOf(database, AS_OF, false) },
    { name: 'count countingConsents(profiling, now, ledger)', run: () => countOf(database, NOW, false) },
    { name: 'anchor: per-record ledger as of T-365d (before persons)', run: () => recordLevelCountOf(database, AS_OF) },
  ];
}

const FUNNEL_STEPS = ['contacts', 'profilingConsent', 'channelConsent', 'withContactDetail', 'notOpposed', 'notObjected'] as const;

/** Each step of the funnel keeps at most what the previous one kept. */
function funnelProblems(funnel: ChannelFunnel): string[] {
  const problems: string[] = [];
  for (let i = 1; i < FUNNEL_STEPS.length; i += 1) {
    const [before, after] = [FUNNEL_STEPS[i - 1]!, FUNNEL_STEPS[i]!];
    if (funnel[after] > funnel[before]) problems.push(`${funnel.channel}: ${after} ${funnel[after]} > ${before} ${funnel[before]}`);
  }
  return problems;
}

async function measureAll(list: Measure[], results: Map<string, number | ChannelFunnel>): Promise<Array<Record<string, string | number>>> {
  const rows: Array<Record<string, string | number>> = [];
  for (const measure of list) {
    const samples: number[] = [];
    for (let run = 0; run < RUNS; run += 1) {
      const timed = await seconds(measure.run);
      samples.push(timed.seconds);
      results.set(measure.name, timed.result);
    }
    const result = results.get(measure.name)!;
    rows.push({
      query: measure.name,
      result: typeof result === 'number' ? result.toLocaleString('en-GB') : `${result.notObjected.toLocaleString('en-GB')} reachable`,
      'median s': Number(median(samples).toFixed(3)),
      'runs s': samples.map((s) => s.toFixed(2)).join(' '),
    });
  }
  return rows;
}

async function main(): Promise<void> {
  const admin = new pg.Pool({ connectionString: serverUrl, max: 1 });
  const database = await createBenchDatabase(admin);
  try {
    const { seconds: loadSeconds, result: loadSteps } = await seconds(() => load(database));
    // index-only scans of the consent state need the visibility map that VACUUM sets
    await database.pool.query('VACUUM (ANALYZE) consent_state, contacts, contact_personal_data');
    const sizes = await tableSizes(database);
    console.log(`loaded in ${loadSeconds.toFixed(1)} s (generated in SQL; not what is measured):`);
    console.table(loadSteps);
    console.log(
      Object.entries(sizes)
        .map(([table, n]) => `${table} ${n.toLocaleString('en-GB')}`)
        .join(', '),
    );

    // first with every record its own person (no resolution), then with the duplicates linked:
    // the same base, the same ledger, measured in the same run
    const unresolved = await measureAll(measures(database), new Map());
    const client = await database.pool.connect();
    const resolution = await seconds(async () => {
      await client.query('BEGIN');
      const report = await resolveIdentities(client, 'all', DEFAULT_IDENTITY_POLICY);
      await client.query('COMMIT');
      return report;
    });
    client.release();
    await database.pool.query('VACUUM (ANALYZE) consent_state, contacts, contact_personal_data');
    console.log(
      `\nidentity resolution over the whole base: ${resolution.seconds.toFixed(1)} s, ${resolution.result.examined.toLocaleString('en-GB')} records, ` +
        `${resolution.result.personsBefore.toLocaleString('en-GB')} persons before, ${resolution.result.personsAfter.toLocaleString('en-GB')} after`,
    );

    const results = new Map<string, number | ChannelFunnel>();
    const rows = await measureAll(measures(database), results);
    console.log('\nwith resolution on (duplicates linked) against off (every record its own person), same run:');
    console.table(
      rows.map((row, index) => ({
        query: row.query,
        'off median s': unresolved[index]!['median s'],
        'on median s': row['median s'],
        'on / off': (Number(row['median s']) / Number(unresolved[index]!['median s'])).toFixed(2),
      })),
    );
    const audit = await seconds(() => consentAudit(database.db, NOW));
    rows.push({
      query: 'consentAudit (once)',
      result: `${audit.result.withoutProof.total.toLocaleString('en-GB')} to ask again`,
      'median s': Number(audit.seconds.toFixed(3)),
      'runs s': audit.seconds.toFixed(2),
    });

    console.log(
      `\nconsent gate on PostgreSQL, ${sizes.contacts!.toLocaleString('en-GB')} contacts, ` +
        `${sizes.consent_events!.toLocaleString('en-GB')} consent events, median of ${RUNS} runs (now = ${NOW.toISOString()}, T = ${AS_OF.toISOString()})`,
    );
    console.table(rows);

    const funnels = ['email', 'sms', 'phone'].map((channel) => results.get(`channelFunnel ${channel}`) as ChannelFunnel);
    console.log('\nfunnels:');
    console.table(funnels.map(({ at: _at, ...funnel }) => funnel));
    const problems = funnels.flatMap(funnelProblems);
    const profileable = results.get('profileableContacts(now, live) rows') as number;
    if (funnels.some((funnel) => funnel.profilingConsent !== profileable)) problems.push('funnel profilingConsent ≠ profileableContacts');
    if (results.get('count countingConsents(profiling, now, ledger)') !== results.get('count countingConsents(profiling, now, live)')) {
      problems.push('the state kept by the trigger and the ledger read as of now disagree');
    }
    const slow = rows.filter((row) => String(row.query).startsWith('channelFunnel') && Number(row['median s']) >= TARGET_SECONDS);
    console.log(
      problems.length === 0
        ? 'consistency: every funnel step ≤ the previous; live state = ledger as of now'
        : `INCONSISTENT: ${problems.join('; ')}`,
    );
    console.log(
      slow.length === 0
        ? `target met: every funnel under ${TARGET_SECONDS} s`
        : `target missed (${TARGET_SECONDS} s): ${slow.map((row) => row.query).join(', ')}`,
    );

    if (problems.length > 0) process.exitCode = 1;
  } finally {
    await database.close();
    if (!values.keep) await admin.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    await admin.end();
  }
}

await main();
