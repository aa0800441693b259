import { randomBytes, randomUUID } from 'node:crypto';
import { type Kysely, sql, type Transaction } from 'kysely';
import type { TargetingPolicy } from '../config.ts';
import { channelBlock } from '../consent/eligibility.ts';
import type { Database } from '../db/database.ts';
import type { DatabaseHandle } from '../db/engine.ts';
import type { ScoreReason } from '../scores/score.table.ts';
import { type ManifestMemberRow, manifestMembersQuery } from './export.repository.ts';
import { markDelivered, numberSelection, recordSelection, releaseUndelivered } from './list-recording.repository.ts';
import { LIST_SIZE_FIELDS, type ListSizeField, listSizeOf } from './list-size.ts';
import type { ManifestHeader } from './manifest.ts';
import { type Reservation, releaseHoldout, reserveSelection } from './pressure.repository.ts';
import { type LiveScoreSet, liveScoreSetOf, prepareSelection, type WalkLimit, walkStretch } from './selection.repository.ts';
import {
  PREVIEW_NOTE,
  type Shortfall,
  type TargetFunnel,
  type TargetList,
  type TargetListPolicies,
  type TargetListRequest,
  type TargetMember,
  type TargetPreview,
  type TargetSelection,
} from './target-list.types.ts';
import { ChannelClosedError, InvalidTargetRequestError, NoLiveScoresError, UnknownProductError } from './targeting.errors.ts';

export type { ListSize } from './list-size.ts';

export type {
  Shortfall,
  TargetFunnel,
  TargetList,
  TargetListPolicies,
  TargetListRequest,
  TargetMember,
  TargetPreview,
  TargetSelection,
} from './target-list.types.ts';
export { PREVIEW_NOTE } from './target-list.types.ts';

const DAY_MS = 86_400_000;
// two lists reserving overlapping people in several stretches can deadlock; PostgreSQL aborts one, which starts again
const DEADLOCK_RETRIES = 3;

/** Checks the size and holdout parameters; throws InvalidTargetRequestError naming the field. */
export function validateListRequest(request: TargetListRequest, policy: TargetingPolicy): void {
  const size = request.size as Partial<Record<ListSizeField, number>>;
  const unknown = Object.keys(size).filter((key) => !(LIST_SIZE_FIELDS as readonly string[]).includes(key));
  if (unknown.length > 0 || Object.keys(size).length === 0) {
    throw new InvalidTargetRequestError(
      'size',
      `takes exactly one of ${LIST_SIZE_FIELDS.join(', ')} (got ${Object.keys(size).join(', ') || 'none'})`,
    );
  }
  const [field, value] = Object.entries(listSizeOf(size))[0] as [ListSizeField, number];
  if (!Number.isFinite(value)) throw new InvalidTargetRequestError(field, 'must be a number');
  if ('top' in request.size && (!Number.isInteger(value) || value < 1 || value > policy.maxMembers)) {
    throw new InvalidTargetRequestError('top', `must be a whole number from 1 to ${policy.maxMembers}`);
  }
  if ('percentile' in request.size && !(value > 0 && value <= 100)) {
    throw new InvalidTargetRequestError('percentile', 'must be more than 0 and at most 100 (the best-scored percent of the product)');
  }
  if ('minScore' in request.size && !(value >= 0 && value <= 1)) {
    throw new InvalidTargetRequestError('minScore', 'must be a probability from 0 to 1');
  }
  if ('expectedBuyers' in request.size && !(value > 0 && value <= policy.maxMembers)) {
    throw new InvalidTargetRequestError('expectedBuyers', `must be more than 0 and at most ${policy.maxMembers}`);
  }
  if (!(Number.isInteger(request.holdoutPercent) && request.holdoutPercent >= 0 && request.holdoutPercent <= 50)) {
    throw new InvalidTargetRequestError('holdout', 'must be a whole percent from 0 to 50');
  }
}

interface ListTarget {
  product: { name: string };
  live: LiveScoreSet;
  contactField: string;
}

/** The product's live scores and the channel's contact field, or the reason no list can be made. */
async function listTarget(db: Kysely<Database>, request: TargetListRequest, policies: TargetListPolicies, now: Date): Promise<ListTarget> {
  validateListRequest(request, policies.targeting);
  const channel = await db.selectFrom('channels').select('contact_field').where('code', '=', request.channel).executeTakeFirst();
  if (!channel) {
    const known = (await db.selectFrom('channels').select('code').orderBy('code').execute()).map((row) => row.code);
    throw new InvalidTargetRequestError('channel', `"${request.channel}" is unknown (expected one of ${known.join(', ')})`);
  }
  const { product, live } = await liveScoreSetOf(db, request.sku);
  if (!product) throw new UnknownProductError(`no product has the SKU "${request.sku}"`);
  if (!live) {
    throw new NoLiveScoresError(
      `product "${request.sku}" has no live scores: it has no champion model yet (too few buyers, or the pipeline has not run); see \`cible models list\``,
    );
  }
  const blocked = await channelBlock(db, request.channel, now, policies.consent);
  if (blocked) throw new ChannelClosedError(blocked);
  return { product, live, contactField: channel.contact_field };
}

/** A recorded list without its members, and what reading them needs. */
export interface RecordedTargetList {
  list: Omit<TargetList, 'members' | 'holdout'>;
  contactField: string;
  explanationGroups: string[];
}

/**
 * The ranked list of people to contact about a product on a channel, decided now: every
 * member has valid profiling and channel consent at this instant, a contact detail for the
 * channel, is on no opposition list of the channel, has not objected, and is under the
 * contact-pressure cap. The list is recorded with its manifest before it is returned, pending
 * delivery: it counts towards pressure from then on, unless its delivery fails (settleDelivery).
 */
export async function buildTargetList(
  db: Kysely<Database>,
  request: TargetListRequest,
  policies: TargetListPolicies,
  now: Date,
): Promise<TargetList> {
  const recorded = await recordTargetList(db, request, policies, now);
  const { rows } = await manifestMembersQuery(recorded.list.exportId, recorded.contactField).execute(db);
  const members: TargetMember[] = [];
  const holdout: TargetMember[] = [];
  for (const row of rows) (row.is_holdout ? holdout : members).push(lineOf(row, recorded.explanationGroups).member);
  return { ...recorded.list, members, holdout };
}

/** buildTargetList without reading the members back: a large list is then read by recordedMembers as it is sent. */
export async function recordTargetList(
  db: Kysely<Database>,
  request: TargetListRequest,
  policies: TargetListPolicies,
  now: Date,
): Promise<RecordedTargetList> {
  const target = await listTarget(db, request, policies, now);
  const policy = policies.targeting;
  for (let attempt = 1; ; attempt++) {
    try {
      const list = await db.transaction().execute(async (trx) => {
        await releaseStaleDeliveries(trx, policy, now);
        const exportId = randomUUID();
        const reservation: Reservation = { exportId, sentAt: now, since: pressureSince(policy, now), cap: policy.pressureMaxLists };
        const walk = await walkList(trx, request, target, policy, now, reservation);
        return recordWalk(trx, request, target, walk, policy, now, exportId);
      });
      return { list, contactField: target.contactField, explanationGroups: target.live.explanationGroups };
    } catch (error) {
      if (attempt >= DEADLOCK_RETRIES || (error as { code?: string }).code !== '40P01') throw error;
    }
  }
}

/**
 * What buildTargetList would return for the same request now (funnel, size, expected buyers,
 * score threshold), by the same walk, without recording a list, writing a manifest or using
 * contact pressure.
 */
export async function previewTargetList(
  db: Kysely<Database>,
  request: TargetListRequest,
  policies: TargetListPolicies,
  now: Date,
): Promise<TargetPreview> {
  const target = await listTarget(db, request, policies, now);
  const walk = await db.transaction().execute(async (trx) => {
    await releaseStaleDeliveries(trx, policies.targeting, now);
    return walkList(trx, request, target, policies.targeting, now, null);
  });
  const count = walk.members;
  const holdout = holdoutSize(count, request.holdoutPercent);
  return {
    recorded: false,
    note: PREVIEW_NOTE,
    ...selectionSummary(request, target, walk, policies.targeting, { selected: count, holdout, returned: count - holdout }),
    // the holdout is drawn at random when the list is made: each person is held out with probability holdout / count
    expectedBuyers: count === 0 ? 0 : (walk.summed * (count - holdout)) / count,
  };
}

/** Records that a list's response was fully sent (true) or not (false: its members are released from pressure). */
export async function settleDelivery(db: Kysely<Database>, exportId: string, delivered: boolean, now: Date): Promise<boolean> {
  if (delivered) return markDelivered(db, exportId, now);
  const released = await db.transaction().execute((trx) => releaseUndelivered(trx, { exportId }, now));
  return released.length > 0;
}

/** Lists whose delivery never finished (the process serving them died) stop counting towards pressure. */
async function releaseStaleDeliveries(trx: Transaction<Database>, policy: TargetingPolicy, now: Date): Promise<void> {
  await releaseUndelivered(trx, { staleBefore: new Date(now.getTime() - policy.deliveryTimeoutSeconds * 1000) }, now);
}

type StopReason = 'size' | 'cut' | 'exhausted' | 'maxMembers';

interface Walk {
  /** people in list_selection */
  members: number;
  funnel: Omit<TargetFunnel, 'selected' | 'holdout' | 'returned'>;
  /** summed scores of everyone selected */
  summed: number;
  /** the lowest score selected (the last member's), null for an empty list */
  lowestScore: number | null;
  stoppedBy: StopReason;
}

function pressureSince(policy: TargetingPolicy, now: Date): Date {
  return new Date(now.getTime() - policy.pressureWindowDays * DAY_MS);
}

/** How far the walk goes for the list's size. */
function walkLimit(request: TargetListRequest, policy: TargetingPolicy): WalkLimit {
  const { size } = request;
  return {
    members: 'top' in size ? Math.min(size.top, policy.maxMembers) : policy.maxMembers,
    summedScores: 'expectedBuyers' in size ? size.expectedBuyers : null,
    cut:
      'percentile' in size
        ? sql<boolean>`s.percentile <= ${100 - size.percentile}`
        : 'minScore' in size
          ? sql<boolean>`s.score < ${size.minScore}`
          : null,
  };
}

/**
 * Who the list takes, in rank order, into list_selection: the one walk behind lists and
 * previews, in stretches down the score index. With a reservation, each stretch's people are
 * reserved under the pressure cap; people a concurrent list took meanwhile are replaced by
 * the next ones in rank order.
 */
async function walkList(
  trx: Transaction<Database>,
  request: TargetListRequest,
  target: ListTarget,
  policy: TargetingPolicy,
  now: Date,
  reservation: Reservation | null,
): Promise<Walk> {
  const { size } = request;
  const limit = walkLimit(request, policy);
  const funnel = { scored: target.live.rowCount, examined: 0, consentedForChannel: 0, notOpposed: 0, underPressureCap: 0 };
  const taken = { members: 0, summedScores: 0 };
  let afterRank = 0;
  let reserved = false;
  // most scored people are reachable: a fifth more than asked usually fills the list in one stretch
  let read = 'top' in size ? Math.ceil(limit.members * 1.2) + 50 : 5_000;
  await prepareSelection(trx);

  const fullAt = (): StopReason | null => {
    if (('top' in size && taken.members >= size.top) || ('expectedBuyers' in size && taken.summedScores >= size.expectedBuyers))
      return 'size';
    return taken.members >= policy.maxMembers ? 'maxMembers' : null;
  };
  const stop = async (stoppedBy: StopReason): Promise<Walk> => {
    const { rows } = await sql<{ lowest: number | null }>`SELECT min(score) AS lowest FROM list_selection`.execute(trx);
    return { members: taken.members, funnel, summed: taken.summedScores, lowestScore: rows[0]?.lowest ?? null, stoppedBy };
  };

  for (;;) {
    const stretch = await walkStretch(trx, {
      scoreSetId: target.live.scoreSetId,
      channel: request.channel,
      contactField: target.contactField,
      now,
      pressureSince: pressureSince(policy, now),
      pressureCap: policy.pressureMaxLists,
      afterRank,
      read,
      limit,
      taken,
    });
    funnel.examined += stretch.examined;
    funnel.consentedForChannel += stretch.consentedForChannel;
    funnel.notOpposed += stretch.notOpposed;
    funnel.underPressureCap += stretch.underPressureCap;
    taken.members += stretch.kept;
    taken.summedScores += stretch.keptScores;
    if (reservation && stretch.kept > 0) {
      const { refused, refusedScores } = await reserveSelection(trx, reservation, !reserved);
      reserved = true;
      funnel.underPressureCap -= refused;
      taken.members -= refused;
      taken.summedScores -= refusedScores;
    }
    const full = fullAt();
    if (full) return stop(full);
    if (stretch.cutReached) return stop('cut');
    // the list was full before the end of the stretch, then lost members to concurrent lists: go on from there
    if (stretch.lastRank !== stretch.lastReadRank) {
      afterRank = stretch.lastRank ?? afterRank;
      continue;
    }
    if (stretch.read < read) return stop('exhausted');
    afterRank = stretch.lastRank ?? afterRank;
    read = Math.min(read * 2, 100_000);
  }
}

/** The parts of the answer a list and its preview share. */
function selectionSummary(
  request: TargetListRequest,
  target: ListTarget,
  walk: Walk,
  policy: TargetingPolicy,
  counts: Pick<TargetFunnel, 'selected' | 'holdout' | 'returned'>,
): Omit<TargetSelection, 'expectedBuyers'> {
  const { live } = target;
  return {
    product: { sku: request.sku, name: target.product.name },
    model: {
      id: live.modelId,
      version: live.modelVersion,
      versionId: live.modelVersionId,
      algorithm: live.algorithm,
      horizonDays: live.horizonDays,
      scoredAt: live.scoredAt.toISOString(),
    },
    channel: request.channel,
    params: listParams(request),
    funnel: { ...walk.funnel, ...counts },
    scoreThreshold: walk.lowestScore,
    shortfall: shortfallOf(request, walk, policy),
  };
}

function listParams(request: TargetListRequest): Record<string, unknown> {
  return { sku: request.sku, ...request.size, holdout: request.holdoutPercent };
}

function shortfallOf(request: TargetListRequest, walk: Walk, policy: TargetingPolicy): Shortfall | null {
  const { size } = request;
  const reason =
    walk.stoppedBy === 'maxMembers'
      ? `the list reached its maximum size of ${policy.maxMembers} members (CIBLE_TARGETS_MAX_MEMBERS)`
      : `ran out of eligible people: every one of the ${walk.funnel.examined} people still scored was examined, and only those counted in the funnel may be contacted on ${request.channel}`;
  if ('top' in size && walk.members < size.top) {
    return { asked: size.top, reached: walk.members, of: 'members', reason };
  }
  if ('expectedBuyers' in size && walk.summed < size.expectedBuyers) {
    return { asked: size.expectedBuyers, reached: Math.round(walk.summed * 1000) / 1000, of: 'expectedBuyers', reason };
  }
  if (walk.stoppedBy === 'maxMembers' && !('top' in size)) {
    return { asked: null, reached: walk.members, of: 'members', reason };
  }
  return null;
}

async function recordWalk(
  trx: Transaction<Database>,
  request: TargetListRequest,
  target: ListTarget,
  walk: Walk,
  policy: TargetingPolicy,
  now: Date,
  exportId: string,
): Promise<RecordedTargetList['list']> {
  const { live } = target;
  const holdoutSeed = request.holdoutPercent > 0 ? randomBytes(8).toString('hex') : null;
  const holdoutCount = holdoutSize(walk.members, request.holdoutPercent);
  const contactedScores = await numberSelection(trx, holdoutSeed, holdoutCount);
  if (holdoutCount > 0) await releaseHoldout(trx, exportId);
  const header: ManifestHeader = {
    exportId,
    createdAt: now.toISOString(),
    actor: request.actor,
    modelVersionId: live.modelVersionId,
    scoreSetId: live.scoreSetId,
    channel: request.channel,
    params: listParams(request),
    memberCount: walk.members,
    holdoutCount,
    holdoutSeed,
  };
  const summary = selectionSummary(request, target, walk, policy, {
    selected: walk.members,
    holdout: holdoutCount,
    returned: walk.members - holdoutCount,
  });
  const manifestHash = await recordSelection(trx, { header, apiKeyId: request.apiKeyId, modelId: live.modelId, funnel: summary.funnel });
  return {
    recorded: true,
    exportId,
    createdAt: header.createdAt,
    ...summary,
    expectedBuyers: contactedScores,
    holdoutSeed,
    manifestHash,
  };
}

export interface ListLine {
  isHoldout: boolean;
  member: TargetMember;
}

const LINES_PER_FETCH = 5_000;

/**
 * A recorded list's members as stored in its manifest, members to contact first, then the
 * holdout, in chunks read through a cursor on a connection of its own: a list of any size is
 * sent without being held in memory. External ids and contact details are read now (an
 * erasure since removes them).
 */
export async function* recordedMembers(
  database: Pick<DatabaseHandle, 'db' | 'pool'>,
  recorded: RecordedTargetList,
): AsyncGenerator<ListLine[]> {
  const query = manifestMembersQuery(recorded.list.exportId, recorded.contactField).compile(database.db);
  const client = await database.pool.connect();
  let broken: Error | undefined;
  try {
    // WITH HOLD: the rows are kept once the statement commits, so no transaction stays open while a slow client reads
    await client.query(`DECLARE list_lines NO SCROLL CURSOR WITH HOLD FOR ${query.sql}`, [...query.parameters]);
    try {
      for (;;) {
        const { rows } = await client.query<ManifestMemberRow>(`FETCH ${LINES_PER_FETCH} FROM list_lines`);
        if (rows.length > 0) yield rows.map((row) => lineOf(row, recorded.explanationGroups));
        if (rows.length < LINES_PER_FETCH) return;
      }
    } finally {
      await client.query('CLOSE list_lines');
    }
  } catch (error) {
    broken = error as Error;
    throw error;
  } finally {
    // a connection whose cursor could not be closed is not given back to others
    client.release(broken);
  }
}

function lineOf(row: ManifestMemberRow, groups: string[]): ListLine {
  const reasons: ScoreReason[] = [];
  const codes = [row.reason_1, row.reason_2, row.reason_3];
  const contributions = [row.contribution_1, row.contribution_2, row.contribution_3];
  codes.forEach((code, index) => {
    if (code === null || groups[code] === undefined) return;
    reasons.push({ feature: groups[code]!, contribution: contributions[index] ?? 0 });
  });
  return {
    isHoldout: row.is_holdout,
    member: {
      position: row.position,
      externalId: row.external_id ?? '',
      contact: row.contact ?? '',
      score: row.score,
      percentile: row.percentile,
      rank: row.rank,
      reasons,
      consentEventIds: [Number(row.profiling_event_id), Number(row.channel_event_id)],
    },
  };
}

function holdoutSize(count: number, percent: number): number {
  return percent === 0 ? 0 : Math.round((count * percent) / 100);
}
