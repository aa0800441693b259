import { randomBytes, randomUUID } from 'node:crypto';
import { type Kysely, sql, type Transaction } from 'kysely';
import { mulberry32 } from '../../models/random.ts';
import type { TargetingPolicy } from '../config.ts';
import { channelBlock } from '../consent/eligibility.ts';
import type { Database } from '../db/database.ts';
import type { ScoreReason } from '../scores/score.table.ts';
import { type Candidate, candidateBatch, type LiveScoreSet, liveScoreSetOf } from './candidates.repository.ts';
import { insertExport, markDelivered, releaseUndelivered } from './export.repository.ts';
import { LIST_SIZE_FIELDS, type ListSizeField, listSizeOf } from './list-size.ts';
import { type ManifestHeader, manifestHash, memberHash } from './manifest.ts';
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

// lists are built one at a time, so two lists asked at once cannot both take a contact
// who has room for one more list under the pressure cap
const LIST_LOCK = 0x63_69_62_6c; // "cibl"
const DAY_MS = 86_400_000;

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
  const target = await listTarget(db, request, policies, now);
  return db.transaction().execute(async (trx) => {
    await sql`SELECT pg_advisory_xact_lock(${LIST_LOCK})`.execute(trx);
    await releaseStaleDeliveries(trx, policies.targeting, now);
    const walk = await selectMembers(trx, request, target, policies.targeting, now);
    return recordList(trx, request, target, walk, policies.targeting, now);
  });
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
    return selectMembers(trx, request, target, policies.targeting, now);
  });
  const count = walk.selected.length;
  const holdout = holdoutSize(count, request.holdoutPercent);
  const summed = walk.selected.reduce((sum, candidate) => sum + candidate.score, 0);
  return {
    recorded: false,
    note: PREVIEW_NOTE,
    ...selectionSummary(request, target, walk, policies.targeting, { selected: count, holdout, returned: count - holdout }),
    // the holdout is drawn at random when the list is made: each person is held out with probability holdout / count
    expectedBuyers: count === 0 ? 0 : (summed * (count - holdout)) / count,
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
  selected: Candidate[];
  funnel: Omit<TargetFunnel, 'selected' | 'holdout' | 'returned'>;
  /** summed scores of everyone selected */
  summed: number;
  stoppedBy: StopReason;
}

/** Who the list takes, in rank order: the one walk behind lists and previews. */
async function selectMembers(
  trx: Transaction<Database>,
  request: TargetListRequest,
  target: ListTarget,
  policy: TargetingPolicy,
  now: Date,
): Promise<Walk> {
  const { live } = target;
  const size = request.size;
  const funnel = { scored: live.rowCount, examined: 0, consentedForChannel: 0, notOpposed: 0, underPressureCap: 0 };
  const selected: Candidate[] = [];
  const pressureSince = new Date(now.getTime() - policy.pressureWindowDays * DAY_MS);
  let summed = 0;
  let afterRank = 0;
  // most scored people are reachable: a fifth more than asked usually fills the list in one query
  let batch = 'top' in size ? Math.ceil(size.top * 1.2) + 50 : 5_000;

  const fullAt = (): StopReason | null => {
    if (('top' in size && selected.length >= size.top) || ('expectedBuyers' in size && summed >= size.expectedBuyers)) return 'size';
    return selected.length >= policy.maxMembers ? 'maxMembers' : null;
  };
  const beyondCut = (candidate: Candidate) =>
    ('percentile' in size && candidate.percentile <= 100 - size.percentile) || ('minScore' in size && candidate.score < size.minScore);
  const stop = (stoppedBy: StopReason): Walk => ({ selected, funnel, summed, stoppedBy });

  for (;;) {
    const candidates = await candidateBatch(trx, {
      scoreSetId: live.scoreSetId,
      channel: request.channel,
      contactField: target.contactField,
      now,
      pressureSince,
      pressureCap: policy.pressureMaxLists,
      afterRank,
      limit: batch,
    });
    for (const candidate of candidates) {
      const full = fullAt();
      if (full) return stop(full);
      if (beyondCut(candidate)) return stop('cut');
      funnel.examined += 1;
      if (candidate.erased || candidate.profilingEventId === null || candidate.channelEventId === null || !candidate.hasContactDetail)
        continue;
      funnel.consentedForChannel += 1;
      if (candidate.opposed || candidate.objected) continue;
      funnel.notOpposed += 1;
      if (candidate.recentLists >= policy.pressureMaxLists) continue;
      funnel.underPressureCap += 1;
      selected.push(candidate);
      summed += candidate.score;
    }
    const full = fullAt();
    if (full) return stop(full);
    if (candidates.length < batch) return stop('exhausted');
    afterRank = candidates[candidates.length - 1]!.rank;
    batch = Math.min(batch * 2, 100_000);
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
    scoreThreshold: walk.selected.at(-1)?.score ?? null,
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
  if ('top' in size && walk.selected.length < size.top) {
    return { asked: size.top, reached: walk.selected.length, of: 'members', reason };
  }
  if ('expectedBuyers' in size && walk.summed < size.expectedBuyers) {
    return { asked: size.expectedBuyers, reached: Math.round(walk.summed * 1000) / 1000, of: 'expectedBuyers', reason };
  }
  if (walk.stoppedBy === 'maxMembers' && !('top' in size)) {
    return { asked: null, reached: walk.selected.length, of: 'members', reason };
  }
  return null;
}

async function recordList(
  trx: Transaction<Database>,
  request: TargetListRequest,
  target: ListTarget,
  walk: Walk,
  policy: TargetingPolicy,
  now: Date,
): Promise<TargetList> {
  const { live } = target;
  const { selected } = walk;
  const holdoutSeed = request.holdoutPercent > 0 ? randomBytes(8).toString('hex') : null;
  const isHoldout = holdoutFlags(selected.length, request.holdoutPercent, holdoutSeed);
  const exportId = randomUUID();
  const params = listParams(request);

  const manifestMembers = selected.map((candidate, index) => ({
    position: index + 1,
    contactId: candidate.contactId,
    score: candidate.score,
    rank: candidate.rank,
    percentile: candidate.percentile,
    isHoldout: isHoldout[index] === 1,
    consentEventIds: [candidate.profilingEventId!, candidate.channelEventId!],
  }));
  const memberHashes = manifestMembers.map(memberHash);
  const holdoutCount = manifestMembers.filter((member) => member.isHoldout).length;
  const header: ManifestHeader = {
    exportId,
    createdAt: now.toISOString(),
    actor: request.actor,
    modelVersionId: live.modelVersionId,
    scoreSetId: live.scoreSetId,
    channel: request.channel,
    params,
    memberCount: selected.length,
    holdoutCount,
    holdoutSeed,
  };
  const summary = selectionSummary(request, target, walk, policy, {
    selected: selected.length,
    holdout: holdoutCount,
    returned: selected.length - holdoutCount,
  });
  const hash = manifestHash(header, memberHashes);

  await insertExport(trx, {
    header,
    apiKeyId: request.apiKeyId,
    modelId: live.modelId,
    funnel: summary.funnel,
    manifestHash: hash,
    members: manifestMembers.map((member, index) => ({
      ...member,
      externalId: selected[index]!.externalId,
      contactValue: selected[index]!.contactValue,
      memberHash: memberHashes[index]!,
    })),
  });

  const members: TargetMember[] = [];
  const holdout: TargetMember[] = [];
  manifestMembers.forEach((member, index) => {
    const candidate = selected[index]!;
    const line: TargetMember = {
      position: member.position,
      externalId: candidate.externalId!,
      contact: candidate.contactValue!,
      score: candidate.score,
      percentile: candidate.percentile,
      rank: candidate.rank,
      reasons: reasonsOf(candidate, live.explanationGroups),
      consentEventIds: member.consentEventIds,
    };
    (member.isHoldout ? holdout : members).push(line);
  });
  return {
    recorded: true,
    exportId,
    createdAt: header.createdAt,
    ...summary,
    expectedBuyers: members.reduce((sum, member) => sum + member.score, 0),
    members,
    holdout,
    holdoutSeed,
    manifestHash: hash,
  };
}

function holdoutSize(count: number, percent: number): number {
  return percent === 0 ? 0 : Math.round((count * percent) / 100);
}

/** A seeded random choice of round(n × percent / 100) positions: 1 marks a holdout member. */
function holdoutFlags(count: number, percent: number, seed: string | null): Uint8Array {
  const flags = new Uint8Array(count);
  if (seed === null || percent === 0) return flags;
  const random = mulberry32(Number.parseInt(seed.slice(0, 8), 16));
  const wanted = holdoutSize(count, percent);
  // a partial Fisher-Yates over positions: every subset of that size is equally likely
  const positions = Uint32Array.from({ length: count }, (_, i) => i);
  for (let i = 0; i < wanted; i++) {
    const j = i + Math.floor(random() * (count - i));
    const chosen = positions[j]!;
    positions[j] = positions[i]!;
    positions[i] = chosen;
    flags[chosen] = 1;
  }
  return flags;
}

function reasonsOf(candidate: Candidate, groups: string[]): ScoreReason[] {
  const reasons: ScoreReason[] = [];
  candidate.reasonCodes.forEach((code, index) => {
    if (code === null || groups[code] === undefined) return;
    reasons.push({ feature: groups[code]!, contribution: candidate.contributions[index] ?? 0 });
  });
  return reasons;
}
