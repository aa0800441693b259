import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { UserError } from '../../src/cli/cli-context.ts';
import { main } from '../../src/cli/main.ts';
import { parseRunId, registerRunsCommands } from '../../src/cli/runs.command.ts';
import { fixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import type { AppContext } from '../../src/context.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { captureLogger } from '../helpers/silent-logger.ts';

/*
 * `cible runs list|show`, in-process on the test's database: runs and parts written straight
 * into pipeline_runs and pipeline_run_parts, the commands parsed by commander as on the
 * command line, what they print captured.
 */

const NOW = new Date('2026-11-29T12:00:00Z');
const at = (iso: string) => new Date(`2026-11-29T${iso}Z`);

let database: DatabaseHandle;
let context: AppContext;
let inlineRun: number;
let queueRun: number;
let runningRun: number;

beforeAll(async () => {
  database = await createTestDatabase();
  context = { config: loadConfig({}), logger: captureLogger().logger, clock: fixedClock(NOW), database, stop: async () => undefined };
  const { db } = database;
  const insertRun = async (values: Record<string, unknown>) =>
    Number(
      (
        await db
          .insertInto('pipeline_runs')
          .values({ trigger: 'test', params: '{}', summary: '{}', as_of: at('02:00:00'), ...values } as never)
          .returning('id')
          .executeTakeFirstOrThrow()
      ).id,
    );
  inlineRun = await insertRun({
    status: 'succeeded',
    trigger: 'cli',
    driver: 'inline',
    horizon_days: 30,
    started_at: at('01:00:00'),
    finished_at: at('01:01:30'),
    summary: JSON.stringify({
      targets: [
        { target: 'any:any', status: 'champion' },
        { target: 'product:PL-MUG', status: 'not eligible' },
      ],
    }),
  });
  queueRun = await insertRun({
    status: 'failed',
    trigger: 'schedule:2026-11-29T02:00:00Z',
    driver: 'queue',
    shards: 3,
    horizon_days: 30,
    started_at: at('02:00:00'),
    finished_at: at('02:20:00'),
    heartbeat_at: at('02:19:50'),
    error: 'part score:2 failed after 3 attempts',
    summary: JSON.stringify({
      targets: [
        { target: 'any:any', status: 'champion' },
        { target: 'category:crafts', status: 'champion' },
        { target: 'product:PL-KIT', status: 'rejected' },
      ],
    }),
  });
  runningRun = await insertRun({
    status: 'running',
    trigger: 'api',
    driver: 'queue',
    shards: 2,
    started_at: at('11:30:00'),
    heartbeat_at: at('11:59:30'),
  });

  const part = (runId: number, name: string, values: Record<string, unknown>) => ({
    run_id: runId,
    part: name,
    status: 'succeeded',
    attempt: 1,
    worker: 'worker-a:101',
    rows: null,
    output: null,
    error: null,
    ...values,
  });
  await db
    .insertInto('pipeline_run_parts')
    .values([
      // in no particular order: show sorts them as they run
      part(queueRun, 'publish', {
        status: 'failed',
        started_at: at('02:19:00'),
        finished_at: at('02:19:01'),
        error: 'not all\nscore shards are done',
      }),
      part(queueRun, 'score:10', { started_at: at('02:05:00'), finished_at: at('02:06:00'), rows: 400 }),
      part(queueRun, 'score:2', {
        status: 'failed',
        attempt: 3,
        worker: 'worker-b:202',
        started_at: at('02:10:00'),
        finished_at: at('02:10:05'),
        error: 'out of memory',
      }),
      part(queueRun, 'train', { started_at: at('02:00:05'), finished_at: at('02:04:35'), rows: 12000 }),
      part(queueRun, 'score:1', { started_at: at('02:05:00'), finished_at: at('02:07:30'), rows: 400 }),
      part(runningRun, 'train', { started_at: at('11:30:01'), finished_at: at('11:40:01'), rows: 9000 }),
      part(runningRun, 'score:1', { status: 'running', worker: 'worker-b:202', started_at: at('11:40:02') }),
    ] as never)
    .execute();
}, 120_000);

afterAll(() => database?.close());
afterEach(() => vi.restoreAllMocks());

/** Runs `cible <args>` in-process on the test database; what it printed on stdout. */
async function cible(...args: string[]): Promise<string> {
  const program = new Command('cible').exitOverride();
  registerRunsCommands(program, (run) => run(context));
  const printed: string[] = [];
  vi.spyOn(console, 'log').mockImplementation((...values: unknown[]) => {
    printed.push(values.map(String).join(' '));
  });
  await program.parseAsync(['node', 'cible', ...args]);
  return printed.join('\n');
}

async function refusal(...args: string[]): Promise<string> {
  const error = await cible(...args).then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(UserError);
  return (error as Error).message;
}

describe('cible runs list', () => {
  it('lists the latest runs, newest first, with driver, duration and parts done', async () => {
    const lines = (await cible('runs', 'list')).split('\n');
    expect(lines[0]).toMatch(
      /^\s*id {2}kind {6}driver {2}status {5}trigger\s+as of \(UTC\)\s+started \(UTC\)\s+finished \(UTC\)\s+duration {2}parts done$/,
    );
    expect(lines.slice(1).map((line) => Number(line.trim().split(/\s+/)[0]))).toEqual([runningRun, queueRun, inlineRun]);
    expect(lines[1]).toMatch(/pipeline {2}queue {3}running {4}api .* 2026-11-29 11:30:00 {2}- +30\.0 min\+ {2}1\/2$/);
    expect(lines[2]).toMatch(
      /pipeline {2}queue {3}failed {5}schedule:2026-11-29T02:00:00Z {2}2026-11-29 02:00:00 {2}2026-11-29 02:00:00 {2}2026-11-29 02:20:00 +20\.0 min {2}3\/5 \(2 failed\)$/,
    );
    expect(lines[3]).toMatch(/pipeline {2}inline {2}succeeded {2}cli .* 2026-11-29 01:01:30 +90\.0 s {2}-$/);
  });

  it('takes --limit and prints JSON', async () => {
    const listed = JSON.parse(await cible('runs', 'list', '--limit', '2', '--json'));
    expect(listed).toHaveLength(2);
    expect(listed[1]).toEqual({
      id: queueRun,
      kind: 'pipeline',
      driver: 'queue',
      status: 'failed',
      trigger: 'schedule:2026-11-29T02:00:00Z',
      asOf: '2026-11-29T02:00:00.000Z',
      createdAt: expect.any(String),
      startedAt: '2026-11-29T02:00:00.000Z',
      finishedAt: '2026-11-29T02:20:00.000Z',
      seconds: 1200,
      partCounts: { succeeded: 3, failed: 2, running: 0, total: 5 },
      withoutWorker: null,
    });
    expect(await refusal('runs', 'list', '--limit', '0')).toBe('--limit expects a number from 1 to 10,000,000, got 0');
    expect(await refusal('runs', 'list', '--limit', 'ten')).toBe('--limit expects a whole number, got "ten"');
  });
});

describe('cible runs show', () => {
  it('prints the run, its parts in the order they run, and its target outcomes', async () => {
    const text = await cible('runs', 'show', String(queueRun));
    const lines = text.split('\n');
    expect(lines[0]).toBe(`run ${queueRun}: pipeline, failed`);
    expect(text).toContain('  driver      queue, 3 scoring shards\n');
    expect(text).toContain('  trigger     schedule:2026-11-29T02:00:00Z\n');
    expect(text).toContain('  finished    2026-11-29 02:20:00 UTC (20.0 min)\n');
    expect(text).toContain('  heartbeat   2026-11-29 02:19:50 UTC\n');
    expect(text).toContain('  error       part score:2 failed after 3 attempts\n');
    expect(text).toContain('parts: 3/5 (2 failed) done\n');
    const header = lines.findIndex((line) => line.startsWith('  part '));
    expect(lines[header]!.trim().split(/\s+/)).toEqual([
      'part',
      'status',
      'attempt',
      'worker',
      'started',
      '(UTC)',
      'seconds',
      'rows',
      'error',
    ]);
    const parts = lines.slice(header + 1, header + 6);
    expect(parts.map((line) => line.trim().split(/\s+/)[0])).toEqual(['train', 'score:1', 'score:2', 'score:10', 'publish']);
    expect(parts[0]).toMatch(/^ {2}train\s+succeeded\s+1 {2}worker-a:101 {2}2026-11-29 02:00:05\s+270\.0 {2}12000$/);
    // numbers right-aligned under their header
    expect(parts[2]).toMatch(/^ {2}score:2\s+failed\s+3 {2}worker-b:202 {2}2026-11-29 02:10:00 {6}5\.0 {6}- {2}out of memory$/);
    expect(parts[2]!.indexOf('3  worker')).toBe(lines[header]!.indexOf('attempt') + 'attempt'.length - 1);
    // an error on one line in the table
    expect(parts[4]).toMatch(/failed .* {2}not all score shards are done$/);
    expect(lines.at(-1)).toBe('targets: 3 (2 champion, 1 rejected)');
  });

  it('says when a run has no parts, and how long a running one has run', async () => {
    const inline = await cible('runs', 'show', String(inlineRun));
    expect(inline).toContain('  driver      inline\n');
    expect(inline).toContain('parts: none (an inline run records no parts)');
    expect(inline).toContain('targets: 2 (1 champion, 1 not eligible)');
    const running = await cible('runs', 'show', String(runningRun));
    expect(running).toContain('  finished    - (30.0 min+)\n');
    expect(running).toContain('parts: 1/2 done\n');
    expect(running).toMatch(/\n {2}score:1\s+running\s+1 {2}worker-b:202 {2}2026-11-29 11:40:02\s+-\s+-\n/);
    expect(running).toContain('targets: none recorded');
  });

  it('prints JSON with every part', async () => {
    const shown = JSON.parse(await cible('runs', 'show', ` ${queueRun} `, '--json'));
    expect(shown).toMatchObject({
      id: queueRun,
      driver: 'queue',
      shards: 3,
      status: 'failed',
      error: 'part score:2 failed after 3 attempts',
      heartbeatAt: '2026-11-29T02:19:50.000Z',
    });
    expect(shown.targets).toEqual({ total: 3, byStatus: { champion: 2, rejected: 1 } });
    expect(shown.parts).toHaveLength(5);
    expect(shown.parts[2]).toEqual({
      part: 'score:2',
      status: 'failed',
      attempt: 3,
      worker: 'worker-b:202',
      startedAt: '2026-11-29T02:10:00.000Z',
      finishedAt: '2026-11-29T02:10:05.000Z',
      seconds: 5,
      rows: null,
      error: 'out of memory',
    });
    expect(shown.parts[4].error).toBe('not all\nscore shards are done');
  });

  it('refuses an id that is not a positive whole number, and an unknown one, clearly', async () => {
    for (const value of ['abc', '0', '-3', '1.5', '', '12x']) {
      expect(() => parseRunId(value)).toThrow(UserError);
      expect(await refusal('runs', 'show', value)).toBe(`the run id is a positive whole number (see cible runs list), got "${value}"`);
    }
    expect(await refusal('runs', 'show', '999999')).toBe('no pipeline run 999999; see cible runs list');
  });

  it('exits with code 2 and one line on stderr for a bad or unknown id', { timeout: 120_000 }, async () => {
    const errors: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((...values: unknown[]) => {
      errors.push(values.map(String).join(' '));
    });
    const saved = {
      exitCode: process.exitCode,
      url: process.env.DATABASE_URL,
      dataDir: process.env.CIBLE_DATA_DIR,
      logLevel: process.env.LOG_LEVEL,
    };
    // the real program on a throw-away embedded database, whatever this test run's engine
    const dataDir = mkdtempSync(join(tmpdir(), 'cible-runs-cli-'));
    process.env.DATABASE_URL = '';
    process.env.CIBLE_DATA_DIR = dataDir;
    process.env.LOG_LEVEL = 'silent';
    try {
      await main(['node', 'cible', 'runs', 'show', 'abc']);
      expect(process.exitCode).toBe(2);
      process.exitCode = undefined;
      await main(['node', 'cible', 'runs', 'show', '42']);
      expect(process.exitCode).toBe(2);
    } finally {
      process.exitCode = saved.exitCode;
      for (const [name, value] of [
        ['DATABASE_URL', saved.url],
        ['CIBLE_DATA_DIR', saved.dataDir],
        ['LOG_LEVEL', saved.logLevel],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      rmSync(dataDir, { recursive: true, force: true });
    }
    expect(errors).toEqual([
      'error: the run id is a positive whole number (see cible runs list), got "abc"',
      'error: no pipeline run 42; see cible runs list',
    ]);
  });
});
