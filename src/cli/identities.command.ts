import type { Command } from 'commander';
import type pg from 'pg';
import type { AppContext } from '../context.ts';
import type { IdentityConflict, ResolutionReport, SplitReport } from '../identities/resolution.repository.ts';
import { cliActor, positiveInteger, UserError, withContext } from './cli-context.ts';

/*
 * `cible identities resolve|conflicts|split`: persons above records (issue 19). What they print
 * names records by external id only: never an email or a phone number, which stay out of
 * terminals and logs.
 */

/** Opens a context for one command; tests pass one on their own database. */
export type ContextOpener = <T>(run: (context: AppContext) => Promise<T>) => Promise<T>;

const openContext: ContextOpener = (run) => withContext({ migrate: true }, run);

export const DEFAULT_IDENTITIES_LIMIT = 50;

/** What `identities resolve --json` prints. */
export interface ResolveJson {
  dryRun: boolean;
  examined: number;
  personsBefore: number;
  personsAfter: number;
  /** records whose person changes (or would change, on a dry run) */
  changed: number;
  /** the first `limit` of them, by new person then record */
  records: Array<{ record: string | null; person: string | null; previousPerson: string | null; via: string[] }>;
  /** changed records left out of `records` */
  more: number;
}

/** What `identities conflicts --json` prints. */
export interface ConflictsJson {
  total: number;
  conflicts: Array<{
    identifier: IdentityConflict['identifier'];
    reason: IdentityConflict['reason'];
    records: Array<{ record: string | null; person: string | null }>;
  }>;
  more: number;
}

/** What `identities split --json` prints. */
export interface SplitJson {
  person: string | null;
  records: Array<{ record: string | null; person: string | null }>;
  scoresDroppedFor: number;
}

type Client = pg.PoolClient;

/** Runs `work` in a transaction on a connection of its own, committed only when `commit` says so and nothing failed. */
async function inTransaction<T>(context: AppContext, work: (client: Client) => Promise<T>, commit = true): Promise<T> {
  const client = await context.database.pool.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query(commit ? 'COMMIT' : 'ROLLBACK');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** record id -> its external id (null once erased) */
async function externalIds(client: Client, ids: Iterable<number>): Promise<Map<number, string | null>> {
  const { rows } = await client.query<{ id: string | number; external_id: string | null }>(
    'SELECT id, external_id FROM contacts WHERE id = ANY($1::bigint[])',
    [[...new Set(ids)]],
  );
  return new Map(rows.map((row) => [Number(row.id), row.external_id]));
}

/** Resolves the whole base (or says what it would do), audited with counts only. */
export async function resolveBase(
  context: AppContext,
  { dryRun, limit, actor }: { dryRun: boolean; limit: number; actor: string },
): Promise<ResolveJson> {
  const { resolveIdentities } = await import('../identities/resolution.repository.ts');
  return inTransaction(context, async (client) => {
    const report: ResolutionReport = await resolveIdentities(client, 'all', context.config.identityPolicy, { dryRun });
    const shown = report.relinked.slice(0, limit);
    const names = await externalIds(
      client,
      shown.flatMap((record) => [record.recordId, record.toPerson, record.fromPerson]),
    );
    const name = (id: number) => names.get(Number(id)) ?? null;
    await client.query(`INSERT INTO audit_log (at, actor, action, details) VALUES ($1, $2, 'identities.resolve', $3)`, [
      context.clock.now(),
      actor,
      JSON.stringify({
        dryRun,
        examined: report.examined,
        personsBefore: report.personsBefore,
        personsAfter: report.personsAfter,
        relinked: report.relinked.length,
      }),
    ]);
    return {
      dryRun,
      examined: report.examined,
      personsBefore: report.personsBefore,
      personsAfter: report.personsAfter,
      changed: report.relinked.length,
      records: shown.map((record) => ({
        record: name(record.recordId),
        person: name(record.toPerson),
        previousPerson: name(record.fromPerson),
        via: record.via,
      })),
      more: report.relinked.length - shown.length,
    };
  });
}

/** What resolution leaves for review over the whole base; changes nothing. */
export async function listConflicts(context: AppContext, limit: number): Promise<ConflictsJson> {
  const { resolveIdentities } = await import('../identities/resolution.repository.ts');
  return inTransaction(
    context,
    async (client) => {
      const { conflicts } = await resolveIdentities(client, 'all', context.config.identityPolicy, { dryRun: true, conflicts: true });
      const shown = conflicts.slice(0, limit);
      const names = await externalIds(
        client,
        shown.flatMap((conflict) => conflict.records.map((record) => record.personId)),
      );
      return {
        total: conflicts.length,
        conflicts: shown.map((conflict) => ({
          identifier: conflict.identifier,
          reason: conflict.reason,
          records: conflict.records.map((record) => ({ record: record.externalId, person: names.get(Number(record.personId)) ?? null })),
        })),
        more: conflicts.length - shown.length,
      };
    },
    false,
  );
}

/** External ids as typed after --records: separated by commas, blanks ignored. */
export function parseRecords(value: string): string[] {
  return value
    .split(',')
    .map((id) => id.trim())
    .filter((id) => id !== '');
}

/** "position 2", "positions 1, 3" (in the list given), so that an error names no external id */
const positions = (indexes: number[]) => `position${indexes.length > 1 ? 's' : ''} ${indexes.map((index) => index + 1).join(', ')}`;

/**
 * Splits records off a person. PERSON and the records are external ids (PERSON may be any
 * record of the person). Errors name the position of an id, never the id itself: they may reach logs.
 */
export async function splitByExternalIds(
  context: AppContext,
  request: { person: string; records: readonly string[]; reason: string; actor: string },
): Promise<SplitJson> {
  const [{ splitPerson }, { InvalidInputError, DomainError }, { normalizeExternalId }] = await Promise.all([
    import('../identities/resolution.repository.ts'),
    import('../errors.ts'),
    import('../contacts/identity.ts'),
  ]);
  const person = normalizeExternalId(request.person);
  if (person === '') throw new InvalidInputError('PERSON', 'is empty: give the external id of any record of the person');
  const named = request.records.map(normalizeExternalId).filter((id) => id !== '');
  if (named.length === 0) throw new InvalidInputError('records', 'must name at least one record: external ids separated by commas');
  const reason = request.reason.trim();
  if (reason === '') throw new InvalidInputError('reason', 'is required: say why the link was wrong (kept with the split and audited)');
  return inTransaction(context, async (client) => {
    const { rows } = await client.query<{ id: string | number; external_id: string; person_id: string | number }>(
      'SELECT id, external_id, person_id FROM contacts WHERE external_id = ANY($1::text[]) AND erased_at IS NULL',
      [[person, ...named]],
    );
    const byExternalId = new Map(rows.map((row) => [row.external_id, { id: Number(row.id), personId: Number(row.person_id) }]));
    const target = byExternalId.get(person);
    if (!target) throw new DomainError('notFound', 'Unknown person', 'is not the external id of a live record', 'PERSON');
    const unknown = named.flatMap((id, index) => (byExternalId.has(id) ? [] : [index]));
    if (unknown.length > 0) {
      throw new DomainError('notFound', 'Unknown record', `has no live record under the external id at ${positions(unknown)}`, 'records');
    }
    const foreign = named.flatMap((id, index) => (byExternalId.get(id)!.personId === target.personId ? [] : [index]));
    if (foreign.length > 0) {
      throw new InvalidInputError('records', `names a record that is not of PERSON's person at ${positions(foreign)}`);
    }
    const recordIds = [...new Set(named.map((id) => byExternalId.get(id)!.id))];
    const { rows: held } = await client.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM contacts WHERE person_id = $1 AND erased_at IS NULL',
      [target.personId],
    );
    if (recordIds.length >= held[0]!.n) {
      throw new InvalidInputError('records', `names every record of the person (${held[0]!.n}): leave at least one with the person`);
    }
    const report: SplitReport = await splitPerson(
      client,
      { personId: target.personId, recordIds, reason, actor: request.actor },
      context.config.identityPolicy,
    );
    const names = await externalIds(client, [report.personId, ...report.persons.map((record) => record.personId)]);
    return {
      person: names.get(report.personId) ?? null,
      records: report.persons.map((record) => ({ record: record.externalId, person: names.get(Number(record.personId)) ?? null })),
      scoresDroppedFor: report.scoresDroppedFor.length,
    };
  });
}

// ---- printing -----------------------------------------------------------------------------

const n = (value: number) => value.toLocaleString('en-GB');
const shownId = (id: string | null) => id ?? '(erased)';

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => `  ${row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ')}`.trimEnd());
}

const moreLine = (more: number, what: string) => (more > 0 ? [`  … and ${n(more)} more ${what}: a larger --limit shows them`] : []);

export function formatResolve(report: ResolveJson): string {
  const verb = report.dryRun ? 'would change person' : 'changed person';
  const lines = [
    `${report.dryRun ? 'dry run, nothing changed: ' : ''}${n(report.examined)} records examined, ` +
      `persons ${n(report.personsBefore)} → ${n(report.personsAfter)}, ${n(report.changed)} records ${verb}`,
  ];
  if (report.records.length > 0) {
    lines.push(
      ...table([
        ['record', 'person (first record)', 'was', 'via'],
        ...report.records.map((record) => [
          shownId(record.record),
          shownId(record.person),
          shownId(record.previousPerson),
          record.via.length > 0 ? record.via.join(', ') : '- (leaves its person)',
        ]),
      ]),
      ...moreLine(report.more, 'records'),
    );
  }
  return lines.join('\n');
}

export function formatConflicts(report: ConflictsJson): string {
  const lines = [`${n(report.total)} identity conflicts left for review (records not linked)`];
  if (report.conflicts.length > 0) {
    lines.push(
      ...table([
        ['shared', 'reason', 'records (person)'],
        ...report.conflicts.map((conflict) => [
          conflict.identifier,
          conflict.reason,
          conflict.records.map((record) => `${shownId(record.record)} (${shownId(record.person)})`).join(', '),
        ]),
      ]),
      ...moreLine(report.more, 'conflicts'),
    );
  }
  return lines.join('\n');
}

export function formatSplit(report: SplitJson): string {
  return [
    `person ${shownId(report.person)} split; the scores of ${n(report.scoresDroppedFor)} persons are dropped until the next run`,
    ...table([['record', 'person (first record)'], ...report.records.map((record) => [shownId(record.record), shownId(record.person)])]),
  ].join('\n');
}

// ---- commands -----------------------------------------------------------------------------

interface ListFlags {
  limit: number;
  json?: boolean;
}

export function registerIdentityCommands(program: Command, open: ContextOpener = openContext): void {
  const identities = program
    .command('identities')
    .description('persons above records: records of one person linked by lower-cased email and E.164 phone');
  identities
    .command('resolve')
    .description('link the records of the whole base into persons (run inside every contacts import too); audited')
    .option('--dry-run', 'say what would change, change nothing')
    .option('--limit <n>', 'records listed at most', positiveInteger('--limit'), DEFAULT_IDENTITIES_LIMIT)
    .option('--json', 'print the report as JSON')
    .action((flags: ListFlags & { dryRun?: boolean }) =>
      open(async (context) => {
        const report = await resolveBase(context, { dryRun: flags.dryRun ?? false, limit: flags.limit, actor: cliActor() });
        console.log(flags.json ? JSON.stringify(report, null, 2) : formatResolve(report));
      }),
    );
  identities
    .command('conflicts')
    .description('identifiers shared by records that were not linked (generic addresses, different names), for review')
    .option('--limit <n>', 'conflicts listed at most', positiveInteger('--limit'), DEFAULT_IDENTITIES_LIMIT)
    .option('--json', 'print the report as JSON')
    .action((flags: ListFlags) =>
      open(async (context) => {
        const report = await listConflicts(context, flags.limit);
        console.log(flags.json ? JSON.stringify(report, null, 2) : formatConflicts(report));
      }),
    );
  identities
    .command('split <PERSON>')
    .description('undo a wrong link: the records named leave the person (PERSON: the external id of any of its records); audited')
    .option('--records <ids>', 'external ids of the records taken out, separated by commas')
    .option('--reason <text>', 'why the link was wrong (kept with the split)')
    .option('--json', 'print the persons after the split as JSON')
    .action(async (person: string, flags: { records?: string; reason?: string; json?: boolean }) => {
      if (flags.records === undefined) throw new UserError('--records is required: the external ids of the records to take out');
      if (flags.reason === undefined) throw new UserError('--reason is required: say why the link was wrong');
      const records = parseRecords(flags.records);
      return open(async (context) => {
        const report = await splitByExternalIds(context, { person, records, reason: flags.reason!, actor: cliActor() });
        console.log(flags.json ? JSON.stringify(report, null, 2) : formatSplit(report));
      });
    });
}
