import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { hostname } from 'node:os';
import { Command } from 'commander';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildScoreSetTable, writeScoreTable } from '../../pipelines/scoring.ts';
import { UserError } from '../../src/cli/cli-context.ts';
import { registerRunsCommands } from '../../src/cli/runs.command.ts';
import { fixedClock } from '../../src/clock.ts';
import { loadConfig } from '../../src/config.ts';
import type { AppContext } from '../../src/context.ts';
import type { DatabaseHandle } from '../../src/db/engine.ts';
import {
  cancelRun,
  checkRunDate,
  createRun,
  finishRun,
  PipelineBusyError,
  RunNoLongerActiveError,
  type RunProcess,
  RunRequestError,
  THIS_PROCESS,
} from '../../src/registry/registry.repository.ts';
import { type ApiHarness, createApiHarness } from '../api/api.fixtures.ts';
import { createTestDatabase } from '../helpers/database.ts';
import { captureLogger } from '../helpers/silent-logger.ts';

/*
 * A run whose process was killed (kill -9) must neither block the pipeline for the stale
 * period nor leave its tables, networks and snapshot rows behind; any run can be cancelled,
 * from the CLI and over HTTP.
 */

const NOW = new Date('2026-12-03T10:00:00Z');
const run = (trigger: string) => ({ kind: 'pipeline' as const, trigger, asOf: NOW, horizonDays: 30, params: {}, startedAt: NOW });

/** The pid of a process that has exited: what a run's pid is after kill -9. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '0']);
  return child.pid as number;
}

const elsewhere = (pid: number): RunProcess => ({ host: hostname(), pid, isAlive: THIS_PROCESS.isAlive });

/** A live process on this host, standing for a `cible pipeline run` at work. */
async function liveProcess(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 60000)'], { stdio: 'ignore' });
  await once(child, 'spawn');
  return child;
}

async function killHard(child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

let database: DatabaseHandle;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database.close());

async function runRow(id: number) {
  return database.db.selectFrom('pipeline_runs').select(['status', 'error', 'host', 'pid']).where('id', '=', id).executeTakeFirstOrThrow();
}

async function tables(): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    SELECT relname AS name FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relkind = 'r'
      AND (relname ~ '^score_part_' OR relname ~ '^scores_[0-9]+$') ORDER BY 1`.execute(database.db);
  return rows.map((row) => row.name);
}

/** What a run killed during scoring leaves: a part table, a ranked table not attached, a network, snapshot rows. */
async function leaveLeftovers(runId: number, scoreSetId: number): Promise<void> {
  const data = {
    contactIds: Float64Array.from([1, 2]),
    scores: Float32Array.from([0.9, 0.4]),
    reasonCodes: new Uint8Array(6),
    contributions: new Float32Array(6),
  };
  await writeScoreTable(database, `score_part_${scoreSetId}_0_a1`, scoreSetId, data);
  await writeScoreTable(database, `score_part_${scoreSetId + 1}_0_a1`, scoreSetId + 1, data);
  await buildScoreSetTable(database, scoreSetId + 1, [`score_part_${scoreSetId + 1}_0_a1`]);
  await sql`INSERT INTO model_networks (run_id, role, algorithm, feature_list, metadata, format, model_topology, weight_specs, weight_data)
    VALUES (${runId}, 'production', 'logistic', '[]', '{}', 'layers-model', '{}', '[]', '\\x00')`.execute(database.db);
  await sql`INSERT INTO contacts (external_id, created_at) VALUES (${`RC-${runId}`}, ${NOW}) ON CONFLICT DO NOTHING`.execute(database.db);
  await sql`INSERT INTO profiling_snapshots (run_id, contact_id, consent_event_id, known_since)
    SELECT ${runId}, id, 0, ${NOW} FROM contacts WHERE external_id = ${`RC-${runId}`}`.execute(database.db);
}

async function leftoversOf(runId: number) {
  const count = async (table: 'model_networks' | 'profiling_snapshots') =>
    Number(
      (
        await database.db
          .selectFrom(table)
          .select((eb) => eb.fn.countAll().as('n'))
          .where('run_id', '=', runId)
          .executeTakeFirstOrThrow()
      ).n,
    );
  return { tables: await tables(), networks: await count('model_networks'), snapshotRows: await count('profiling_snapshots') };
}

describe('a run whose process was killed', () => {
  it('does not block the next run: recognised at once on its host, failed, and what it left is dropped', async () => {
    const dead = await createRun(database.db, run('cli'), 600, elsewhere(deadPid()));
    await leaveLeftovers(dead, 501);
    expect(await leftoversOf(dead)).toEqual({ tables: ['score_part_501_0_a1', 'scores_502'], networks: 1, snapshotRows: 1 });

    const next = await createRun(database.db, run('cli'));
    expect(await runRow(dead)).toMatchObject({
      status: 'failed',
      error: expect.stringMatching(/^abandoned: its process \(pid \d+ on .+\) is gone$/),
    });
    expect(await leftoversOf(dead)).toEqual({ tables: [], networks: 0, snapshotRows: 0 });
    expect(await runRow(next)).toMatchObject({ status: 'running', host: hostname(), pid: process.pid });
    await finishRun(database.db, next, { status: 'failed', finishedAt: NOW, summary: {} });
  });

  it('a run alive in another process still blocks the next run, and cannot be cancelled under it; killed -9, it can', async () => {
    const child = await liveProcess();
    try {
      const working = await createRun(database.db, run('api'), 600, elsewhere(child.pid!));
      await expect(createRun(database.db, run('cli'))).rejects.toThrow(PipelineBusyError);
      await expect(createRun(database.db, run('cli'))).rejects.toThrow(
        `pipeline run ${working} is running; try again when it has finished`,
      );
      await expect(cancelRun(database.db, working, NOW)).rejects.toThrow(
        `pipeline run ${working} is still working in process ${child.pid} on this host: stop that process first`,
      );
      await killHard(child);
      expect(await cancelRun(database.db, working, NOW)).toEqual({ runId: working, was: 'running', tablesDropped: 0 });
    } finally {
      if (child.exitCode === null && child.signalCode === null) await killHard(child);
    }
  });
});

describe('cancelling a run', () => {
  it('marks it cancelled, drops what it wrote, lets a new run start, and forbids it to publish', async () => {
    const queued = await createRun(database.db, { ...run('schedule:2026-12-03T01:00:00Z'), driver: 'queue' });
    await leaveLeftovers(queued, 601);
    const cancelled = await cancelRun(database.db, queued, NOW);
    expect(cancelled).toEqual({ runId: queued, was: 'queued', tablesDropped: 2 });
    expect(await runRow(queued)).toMatchObject({ status: 'cancelled', error: 'cancelled' });
    expect(await leftoversOf(queued)).toEqual({ tables: [], networks: 0, snapshotRows: 0 });
    // a worker that finishes the cancelled run cannot publish it, nor turn it into a failure
    await expect(finishRun(database.db, queued, { status: 'succeeded', finishedAt: NOW, summary: {} })).rejects.toThrow(
      RunNoLongerActiveError,
    );
    await finishRun(database.db, queued, { status: 'failed', finishedAt: NOW, summary: {}, error: 'late' });
    expect(await runRow(queued)).toMatchObject({ status: 'cancelled' });

    const next = await createRun(database.db, run('cli'));
    await expect(cancelRun(database.db, queued, NOW)).rejects.toThrow(
      `pipeline run ${queued} is already cancelled: only a queued or running run can be cancelled`,
    );
    await expect(cancelRun(database.db, 999_999, NOW)).rejects.toThrow(RunRequestError);
    await cancelRun(database.db, next, NOW);
  });

  it('cible runs cancel ID, and its refusals', async () => {
    const context: AppContext = {
      config: loadConfig({}),
      logger: captureLogger().logger,
      clock: fixedClock(NOW),
      database,
      stop: async () => undefined,
    };
    const cible = async (...args: string[]) => {
      const program = new Command('cible').exitOverride();
      registerRunsCommands(program, (work) => work(context));
      const printed: string[] = [];
      vi.spyOn(console, 'log').mockImplementation((line: string) => void printed.push(line));
      try {
        await program.parseAsync(['node', 'cible', ...args]);
      } finally {
        vi.restoreAllMocks();
      }
      return printed.join('\n');
    };
    const dead = await createRun(database.db, run('cli'), 600, elsewhere(deadPid()));
    await leaveLeftovers(dead, 701);
    expect(await cible('runs', 'cancel', String(dead))).toBe(
      `run ${dead} cancelled (it was running); 2 unpublished score table(s) dropped`,
    );
    await expect(cible('runs', 'cancel', String(dead))).rejects.toThrow(UserError);
    await expect(cible('runs', 'cancel', 'abc')).rejects.toThrow(/the run id is a positive whole number/);
  });
});

describe('POST /v1/pipeline/runs/{id}/cancel', () => {
  let api: ApiHarness;
  beforeAll(async () => {
    api = await createApiHarness({ database, clock: fixedClock(NOW) });
  });
  // the harness shares this file's database: closed once, by the outer afterAll

  it('cancels for the scheduler; 409 once ended, 404 when unknown', async () => {
    const dead = await createRun(database.db, run('api'), 600, elsewhere(deadPid()));
    const response = await api.call('scheduler', `/v1/pipeline/runs/${dead}/cancel`, { method: 'POST' });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ runId: dead, was: 'running', tablesDropped: 0 });
    expect((await api.call('scheduler', `/v1/pipeline/runs/${dead}/cancel`, { method: 'POST' })).status).toBe(409);
    expect((await api.call('scheduler', '/v1/pipeline/runs/999999/cancel', { method: 'POST' })).status).toBe(404);
    expect((await api.call('marketer', `/v1/pipeline/runs/${dead}/cancel`, { method: 'POST' })).status).toBe(403);
  });
});

describe('run dates', () => {
  it('refuses a run dated before 2000 or in the future, naming the field', () => {
    expect(() => checkRunDate(new Date('0001-01-01T00:00:00Z'), NOW, '--as-of')).toThrow(
      '--as-of 0001-01-01 is before 2000-01-01: not a date a run can look back to',
    );
    expect(() => checkRunDate(new Date('2027-01-01T00:00:00Z'), NOW, '--as-of')).toThrow(/is in the future/);
    expect(() => checkRunDate(new Date('2011-09-01T00:00:00Z'), NOW, '--as-of')).not.toThrow();
  });

  it('createRun refuses a year-1 run, so no path can record one', async () => {
    await expect(createRun(database.db, { ...run('cli'), asOf: new Date('0001-06-01T00:00:00Z') })).rejects.toThrow(/before 2000-01-01/);
  });
});
