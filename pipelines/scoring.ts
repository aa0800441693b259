import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { type Kysely, sql } from 'kysely';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { NO_GROUP } from '../models/propensity-network.ts';
import { countingConsents } from '../src/consent/eligibility.ts';
import type { Database } from '../src/db/database.ts';
import type { DatabaseHandle } from '../src/db/engine.ts';
import { inTransaction } from '../src/registry/registry.repository.ts';

/** One target's scores for everyone in the scoring matrix, ready to write. */
export interface TargetScores {
  contactIds: Float64Array;
  /** probability per row */
  scores: Float32Array;
  /** rows x 3 explanation-group codes (255 = none) and their logit contributions */
  reasonCodes: Uint8Array;
  contributions: Float32Array;
}

/**
 * Rows best first: highest score, ties by row (the scoring matrix is in contact id order, so
 * ties go by contact id and ranks are reproducible). Position i holds the row of rank i + 1.
 */
export function rankOrder(scores: Float32Array): Uint32Array {
  const rows = scores.length;
  const order = new Uint32Array(rows);
  if (rows < 2 ** 21) {
    // score bits (monotonic for non-negative floats) and row index packed into one exact double
    const bits = new Uint32Array(scores.buffer, scores.byteOffset, rows);
    const keys = new Float64Array(rows);
    for (let row = 0; row < rows; row++) keys[row] = (0xffffffff - (bits[row] as number)) * 2 ** 21 + row;
    keys.sort();
    for (let i = 0; i < rows; i++) order[i] = (keys[i] as number) % 2 ** 21;
  } else {
    for (let i = 0; i < rows; i++) order[i] = i;
    order.sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b);
  }
  return order;
}

const COPY_CHUNK = 50_000;

function scoreLines(scoreSetId: number, data: TargetScores, order: Uint32Array, from: number, to: number): string {
  const rows = data.scores.length;
  let text = '';
  for (let at = from; at < to; at++) {
    const row = order[at] as number;
    const rank = at + 1;
    const percentile = (100 * (rows - rank + 1)) / rows;
    let reasons = '';
    for (let k = 0; k < 3; k++) {
      const code = data.reasonCodes[row * 3 + k] as number;
      reasons += code === NO_GROUP ? '\t\\N' : `\t${code}`;
    }
    for (let k = 0; k < 3; k++) {
      const code = data.reasonCodes[row * 3 + k] as number;
      reasons += code === NO_GROUP ? '\t\\N' : `\t${(data.contributions[row * 3 + k] as number).toPrecision(4)}`;
    }
    // nine digits read back the same float4 (six made ties of scores a baseline keeps apart within 1e-4)
    text += `${scoreSetId}\t${data.contactIds[row]}\t${(data.scores[row] as number).toPrecision(9)}\t${rank}\t${percentile.toPrecision(6)}${reasons}\n`;
  }
  return text;
}

const SCORE_COLUMNS =
  'score_set_id, contact_id, score, rank, percentile, reason_1, reason_2, reason_3, contribution_1, contribution_2, contribution_3';

/**
 * A table shaped like `scores` whose CHECK already implies the partition constraint of the
 * set, so that attaching it does not scan it (adding the CHECK afterwards scanned it once more).
 */
function createScoreTable(table: string, scoreSetId: number): string {
  return `CREATE TABLE ${table} (LIKE scores INCLUDING DEFAULTS INCLUDING CONSTRAINTS, CHECK (score_set_id = ${Number(scoreSetId)}))`;
}

/**
 * Loads one target's scores into a new table of its own, best rank first (target lists read
 * in rank order: consecutive ranks share heap pages), without indexes while loading (ranks
 * are within these rows). COPY on PostgreSQL; PGlite cannot COPY over its socket, so it reads
 * the same text through unnest.
 */
export async function writeScoreTable(database: DatabaseHandle, table: string, scoreSetId: number, data: TargetScores): Promise<number> {
  const order = rankOrder(data.scores);
  const client = await database.pool.connect();
  try {
    await client.query(`DROP TABLE IF EXISTS ${table}`);
    await client.query(createScoreTable(table, scoreSetId));
    if (database.engine === 'postgres') await copyLines(client, table, scoreSetId, data, order);
    else await insertLines(client, table, scoreSetId, data, order);
  } catch (error) {
    await client.query(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
  return data.scores.length;
}

export function scoreSetTable(scoreSetId: number): string {
  return `scores_${Number(scoreSetId)}`;
}

/**
 * A score set's table from the parts its scoring jobs wrote: one part already holds global
 * ranks, in rank order; several are ranked together (ties by contact id, as rankOrder does)
 * and written in rank order. Then the keys and indexes of `scores`, built here so that
 * attaching it later (in the publishing transaction) reuses them instead of building them
 * under a lock; the contact_id index serves erasures and withdrawals, which look a person up
 * in every partition. One transaction (DDL is transactional in PostgreSQL): a retry after a
 * crash finds either the parts or the table.
 */
export async function buildScoreSetTable(database: DatabaseHandle, scoreSetId: number, parts: readonly string[]): Promise<number> {
  const table = scoreSetTable(scoreSetId);
  const client = await database.pool.connect();
  const exists = async (name: string) =>
    (await client.query('SELECT to_regclass($1) IS NOT NULL AS found', [name])).rows[0]?.found === true;
  const count = async () => (await client.query<{ count: number }>(`SELECT count(*)::int AS count FROM ${table}`)).rows[0]?.count ?? 0;
  try {
    const present = [];
    for (const part of parts) if (await exists(part)) present.push(part);
    if (present.length === 0 && (await exists(table))) return await count();
    if (present.length !== parts.length)
      throw new Error(`score set ${scoreSetId}: ${parts.length - present.length} of its ${parts.length} scored parts are missing`);
    await client.query('BEGIN');
    try {
      await client.query(`DROP TABLE IF EXISTS ${table}`);
      if (parts.length === 1) {
        await client.query(`ALTER TABLE ${parts[0]} RENAME TO ${table}`);
      } else {
        await client.query(createScoreTable(table, scoreSetId));
        // counted first: count(*) OVER () beside the ranking kept every row for a second pass (700k rows: 1.5 s, 1.3 s without, measured)
        const { rows } = await client.query<{ total: string }>(
          `SELECT ${parts.map((part) => `(SELECT count(*) FROM ${part})`).join(' + ')} AS total`,
        );
        const total = Number(rows[0]?.total ?? 0);
        await client.query(
          `INSERT INTO ${table} (${SCORE_COLUMNS})
           SELECT score_set_id, contact_id, score, place::int, (100.0 * (${total} - place + 1) / ${total})::real,
             reason_1, reason_2, reason_3, contribution_1, contribution_2, contribution_3
           FROM (SELECT *, row_number() OVER (ORDER BY score DESC, contact_id) AS place
                 FROM (${parts.map((part) => `SELECT * FROM ${part}`).join(' UNION ALL ')}) AS every_part) AS ranked
           ORDER BY score DESC, contact_id`,
        );
        for (const part of parts) await client.query(`DROP TABLE ${part}`);
      }
      await client.query(`ALTER TABLE ${table} ADD PRIMARY KEY (score_set_id, contact_id)`);
      await client.query(`CREATE INDEX ON ${table} (score_set_id, rank)`);
      await client.query(`CREATE INDEX ON ${table} (contact_id)`);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
    await client.query(`ANALYZE ${table}`);
    return await count();
  } finally {
    client.release();
  }
}

/** One score set written and attached in one go (one scoring process, no queue). */
export async function writeScoreSet(database: DatabaseHandle, scoreSetId: number, data: TargetScores): Promise<number> {
  const part = `score_part_${Number(scoreSetId)}_0`;
  await writeScoreTable(database, part, scoreSetId, data);
  const rows = await buildScoreSetTable(database, scoreSetId, [part]);
  await sql
    .raw(`ALTER TABLE scores ATTACH PARTITION ${scoreSetTable(scoreSetId)} FOR VALUES IN (${Number(scoreSetId)})`)
    .execute(database.db);
  return rows;
}

const COPY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const BINARY_ROW_BYTES = 92;

/**
 * One chunk of score rows in PostgreSQL's binary COPY format: written with DataView
 * setters straight from the typed arrays (measured several times faster than building
 * text lines, which was the bottleneck of scoring).
 */
function binaryRows(scoreSetId: number, data: TargetScores, order: Uint32Array, from: number, to: number): Buffer {
  const rows = data.scores.length;
  const buffer = Buffer.allocUnsafe((to - from) * BINARY_ROW_BYTES);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  let at = 0;
  const int64 = (value: number) => {
    view.setInt32(at, 8);
    view.setBigInt64(at + 4, BigInt(value));
    at += 12;
  };
  const int32 = (value: number) => {
    view.setInt32(at, 4);
    view.setInt32(at + 4, value);
    at += 8;
  };
  const float32 = (value: number) => {
    view.setInt32(at, 4);
    view.setFloat32(at + 4, value);
    at += 8;
  };
  const nullField = () => {
    view.setInt32(at, -1);
    at += 4;
  };
  for (let position = from; position < to; position++) {
    const row = order[position] as number;
    const rank = position + 1;
    view.setInt16(at, 11);
    at += 2;
    int64(scoreSetId);
    int64(data.contactIds[row] as number);
    float32(data.scores[row] as number);
    int32(rank);
    float32((100 * (rows - rank + 1)) / rows);
    for (let k = 0; k < 3; k++) {
      const code = data.reasonCodes[row * 3 + k] as number;
      if (code === NO_GROUP) nullField();
      else {
        view.setInt32(at, 2);
        view.setInt16(at + 4, code);
        at += 6;
      }
    }
    for (let k = 0; k < 3; k++) {
      if ((data.reasonCodes[row * 3 + k] as number) === NO_GROUP) nullField();
      else float32(data.contributions[row * 3 + k] as number);
    }
  }
  return buffer.subarray(0, at);
}

async function copyLines(client: pg.PoolClient, table: string, scoreSetId: number, data: TargetScores, order: Uint32Array): Promise<void> {
  const stream: Writable = client.query(copyFrom(`COPY ${table} (${SCORE_COLUMNS}) FROM STDIN (FORMAT binary)`));
  const finished = once(stream, 'finish');
  const failed = once(stream, 'error').then(([error]) => Promise.reject(error as Error));
  failed.catch(() => undefined);
  const header = Buffer.alloc(COPY_SIGNATURE.length + 8);
  COPY_SIGNATURE.copy(header);
  stream.write(header);
  for (let from = 0; from < data.scores.length; from += COPY_CHUNK) {
    const chunk = binaryRows(scoreSetId, data, order, from, Math.min(data.scores.length, from + COPY_CHUNK));
    if (!stream.write(chunk)) await Promise.race([once(stream, 'drain'), failed]);
  }
  const trailer = Buffer.alloc(2);
  trailer.writeInt16BE(-1);
  stream.end(trailer);
  await Promise.race([finished, failed]);
}

async function insertLines(
  client: pg.PoolClient,
  table: string,
  scoreSetId: number,
  data: TargetScores,
  order: Uint32Array,
): Promise<void> {
  for (let from = 0; from < data.scores.length; from += COPY_CHUNK) {
    const text = scoreLines(scoreSetId, data, order, from, Math.min(data.scores.length, from + COPY_CHUNK));
    await client.query(
      `INSERT INTO ${table} (${SCORE_COLUMNS})
       SELECT f[1]::bigint, f[2]::bigint, f[3]::real, f[4]::int, f[5]::real,
         nullif(f[6], '\\N')::smallint, nullif(f[7], '\\N')::smallint, nullif(f[8], '\\N')::smallint,
         nullif(f[9], '\\N')::real, nullif(f[10], '\\N')::real, nullif(f[11], '\\N')::real
       FROM unnest(string_to_array(rtrim($1, E'\\n'), E'\\n')) AS line, string_to_array(line, E'\\t') AS f`,
      [text],
    );
  }
}

/**
 * Makes a score set the one marketers read, in one transaction (the caller's, when it is
 * publishing a whole run): people whose profiling consent stopped counting while it was
 * built are removed first (the consent trigger only reaches attached partitions), then the
 * previous live set retires. Its partition stays attached until dropRetiredScoreSets runs
 * after the caller commits: dropping or detaching a partition locks all of `scores`, and
 * readers pick their set by its live status, so a retired one is already out of their sight.
 */
export async function switchLive(db: Kysely<Database>, modelId: number, scoreSetId: number, now: Date): Promise<number[]> {
  return inTransaction(db, async (trx) => {
    await sql`
      DELETE FROM scores s WHERE s.score_set_id = ${scoreSetId}
        AND NOT EXISTS (SELECT 1 FROM ${countingConsents('profiling', null, now, true)} live WHERE live.contact_id = s.contact_id)`.execute(
      trx,
    );
    const retired = await trx
      .updateTable('score_sets')
      .set({ status: 'retired' })
      .where('model_id', '=', modelId)
      .where('status', '=', 'live')
      .returning('id')
      .execute();
    await trx.updateTable('score_sets').set({ status: 'live' }).where('id', '=', scoreSetId).execute();
    return retired.map((row) => Number(row.id));
  });
}

/** How long a cleanup waits for the lock of a table that someone reads before leaving it for later. */
export const CLEANUP_LOCK_TIMEOUT = '2s';

export function isLockTimeout(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '55P03';
}

/**
 * Detaches and drops the partitions of retired score sets, each in a short transaction of its
 * own: DETACH takes ACCESS EXCLUSIVE on `scores`, so it waits for readers (a target list held
 * open) and makes new ones queue behind it, both for at most the lock timeout. The first
 * timeout ends the sweep (the same readers would hold up the rest); the next publish sweeps again.
 */
export async function dropRetiredScoreSets(db: Kysely<Database>): Promise<{ dropped: number[]; left: number[] }> {
  const { rows } = await sql<{ id: string }>`
    SELECT ss.id FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    JOIN score_sets ss ON ss.id = substring(c.relname FROM '^scores_([0-9]+)$')::bigint
    WHERE i.inhparent = 'scores'::regclass AND ss.status = 'retired'
    ORDER BY ss.id`.execute(db);
  const ids = rows.map((row) => Number(row.id));
  const dropped: number[] = [];
  for (const [index, id] of ids.entries()) {
    try {
      await db.transaction().execute(async (trx) => {
        await sql.raw(`SET LOCAL lock_timeout = '${CLEANUP_LOCK_TIMEOUT}'`).execute(trx);
        await sql.raw(`ALTER TABLE scores DETACH PARTITION ${scoreSetTable(id)}`).execute(trx);
        await sql.raw(`DROP TABLE ${scoreSetTable(id)}`).execute(trx);
      });
      dropped.push(id);
    } catch (error) {
      if (!isLockTimeout(error)) throw error;
      return { dropped, left: ids.slice(index) };
    }
  }
  return { dropped, left: [] };
}
