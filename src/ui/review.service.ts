import { featurePsi, PSI_THRESHOLD } from '../../models/drift.ts';
import { type ModelTarget, targetLabel } from '../registry/model-catalog.repository.ts';
import type { RunOutcome } from '../registry/pipeline-runs.repository.ts';
import type { RecordedFunnel } from '../registry/run-summary.ts';
import type { ScoredProfile } from './model.repository.ts';
import type { OverviewModelRow } from './overview.repository.ts';

/*
 * What the review pages conclude from the registry: a status and the problems of each model,
 * the overview's order, the drift per feature, the consent funnel's steps.
 */

export type ReviewStatus = 'promoted' | 'kept old' | 'rejected' | 'not enough data';

/** Above this expected calibration error (probability points), calibration is a problem. */
export const ECE_LIMIT = 0.05;
/** A top decile buying at less than this many times the base rate is a weak ranking. */
export const WEAK_LIFT = 1.5;
/** An AUC this much below the previous pipeline version's (each on its own window) reads as degrading. */
export const DEGRADING_AUC = 0.02;
/** The pipeline's promotion tolerance: a new version may be this much below the champion on the same window. */
export const SAME_WINDOW_TOLERANCE = 0.005;

export interface OverviewEntry {
  target: ModelTarget;
  label: string;
  name: string | null;
  model: OverviewModelRow | null;
  outcome: RunOutcome | null;
  status: ReviewStatus;
  reason: string;
  problems: string[];
}

function statusOf(row: OverviewModelRow | null, outcome: RunOutcome | null): { status: ReviewStatus; reason: string } {
  const champion = row?.champion ?? null;
  const latest = row?.latest ?? null;
  if (champion) {
    if (outcome?.status === 'not eligible') {
      return { status: 'kept old', reason: `not enough data in run #${outcome.runId} (${outcome.reason}); v${champion.version} stays` };
    }
    if (latest && latest.version !== champion.version) {
      return { status: 'kept old', reason: `v${latest.version} was not promoted: ${latest.decisionReason ?? 'no reason recorded'}` };
    }
    return { status: 'promoted', reason: champion.decisionReason ?? 'promoted' };
  }
  if (outcome?.status === 'not eligible') return { status: 'not enough data', reason: outcome.reason };
  if (latest) return { status: 'rejected', reason: latest.decisionReason ?? 'not promoted' };
  if (outcome) return { status: 'not enough data', reason: outcome.reason };
  return { status: 'not enough data', reason: 'no version has been trained yet' };
}

const fixed3 = (value: number) => value.toFixed(3);

function problemsOf(row: OverviewModelRow | null, status: ReviewStatus): string[] {
  const problems: string[] = [];
  const champion = row?.champion ?? null;
  if (!champion) {
    problems.push('no live model');
    return problems;
  }
  if (status === 'kept old') problems.push('latest version not promoted');
  const { auc } = champion;
  if (auc !== null) {
    if (champion.rfmAuc !== null && auc <= champion.rfmAuc)
      problems.push(`AUC not above RFM (${fixed3(auc)} ≤ ${fixed3(champion.rfmAuc)})`);
    if (champion.bgnbdAuc !== null && auc <= champion.bgnbdAuc)
      problems.push(`AUC not above BG/NBD (${fixed3(auc)} ≤ ${fixed3(champion.bgnbdAuc)})`);
    const previous = champion.previous;
    if (previous?.auc != null && previous.auc - auc > SAME_WINDOW_TOLERANCE) {
      problems.push(`AUC below v${previous.version} on the same window by ${fixed3(previous.auc - auc)}`);
    }
    if (champion.priorVersionAuc !== null && champion.priorVersionAuc - auc > DEGRADING_AUC) {
      problems.push(`AUC down ${fixed3(champion.priorVersionAuc - auc)} since the previous version`);
    }
  } else {
    problems.push('no AUC recorded');
  }
  if (champion.ece !== null && champion.ece > ECE_LIMIT)
    problems.push(`calibration error ${(champion.ece * 100).toFixed(1)} points (limit ${ECE_LIMIT * 100})`);
  if (champion.liftTopDecile !== null && champion.liftTopDecile < WEAK_LIFT)
    problems.push(`top-decile lift ${champion.liftTopDecile.toFixed(2)}× (below ${WEAK_LIFT}×)`);
  return problems;
}

/**
 * One entry per model, plus the targets without a model: those the latest run found without
 * enough data, and the catalogue's products no run has modelled (a run records only the
 * targets it looked at, so a product bought too rarely appears in no run's report).
 */
export function buildOverview(
  rows: readonly OverviewModelRow[],
  outcomes: ReadonlyMap<string, RunOutcome>,
  productsWithoutModel: ReadonlyArray<{ sku: string; name: string }> = [],
): OverviewEntry[] {
  const entries: OverviewEntry[] = [];
  const seen = new Set<string>();
  for (const row of rows) {
    const label = targetLabel(row.target);
    seen.add(label);
    const outcome = outcomes.get(label) ?? null;
    const { status, reason } = statusOf(row, outcome);
    entries.push({
      target: row.target,
      label,
      name: row.productName,
      model: row,
      outcome,
      status,
      reason,
      problems: problemsOf(row, status),
    });
  }
  for (const [label, outcome] of outcomes) {
    if (seen.has(label) || outcome.status !== 'not eligible') continue;
    const [kind, ...rest] = label.split(':');
    const target: ModelTarget = kind === 'any' ? { kind: 'any', key: 'any' } : { kind: kind as ModelTarget['kind'], key: rest.join(':') };
    const { status, reason } = statusOf(null, outcome);
    seen.add(label);
    entries.push({ target, label, name: null, model: null, outcome, status, reason, problems: problemsOf(null, status) });
  }
  for (const product of productsWithoutModel) {
    const target: ModelTarget = { kind: 'product', key: product.sku };
    const label = targetLabel(target);
    if (seen.has(label)) continue;
    const outcome = outcomes.get(label) ?? null;
    const reason = outcome
      ? outcome.reason
      : 'no run has modelled it: fewer buyers than a run requires, or added to the catalogue since the latest run';
    entries.push({
      target,
      label,
      name: product.name,
      model: null,
      outcome,
      status: 'not enough data',
      reason,
      problems: problemsOf(null, 'not enough data'),
    });
  }
  return entries;
}

export const SORT_KEYS = [
  'problems',
  'target',
  'status',
  'version',
  'trained',
  'snapshot',
  'population',
  'buyers',
  'auc',
  'lift',
  'ece',
  'rfm',
  'bgnbd',
  'previous',
] as const;
export type SortKey = (typeof SORT_KEYS)[number];
export type SortDirection = 'asc' | 'desc';

/** The direction a column sorts in when its header is first clicked: the interesting end first. */
export const DEFAULT_DIRECTION: Record<SortKey, SortDirection> = {
  problems: 'desc',
  target: 'asc',
  status: 'asc',
  version: 'desc',
  trained: 'desc',
  snapshot: 'desc',
  population: 'desc',
  buyers: 'asc',
  auc: 'asc',
  lift: 'asc',
  ece: 'desc',
  rfm: 'asc',
  bgnbd: 'asc',
  previous: 'asc',
};

const STATUS_ORDER: Record<ReviewStatus, number> = { rejected: 0, 'not enough data': 1, 'kept old': 2, promoted: 3 };

function sortValue(entry: OverviewEntry, key: SortKey): number | string | null {
  const c = entry.model?.champion ?? null;
  switch (key) {
    case 'problems':
      return entry.problems.length;
    case 'target':
      return entry.label;
    case 'status':
      return STATUS_ORDER[entry.status];
    case 'version':
      return c?.version ?? null;
    case 'trained':
      return c?.trainedAt.getTime() ?? null;
    case 'snapshot':
      return c?.consentSnapshotAt.getTime() ?? null;
    case 'population':
      return c?.populationSize ?? null;
    case 'buyers':
      return c?.buyers ?? null;
    case 'auc':
      return c?.auc ?? null;
    case 'lift':
      return c?.liftTopDecile ?? null;
    case 'ece':
      return c?.ece ?? null;
    case 'rfm':
      return c?.auc != null && c.rfmAuc !== null ? c.auc - c.rfmAuc : null;
    case 'bgnbd':
      return c?.auc != null && c.bgnbdAuc !== null ? c.auc - c.bgnbdAuc : null;
    case 'previous':
      return c?.auc != null && c.previous?.auc != null ? c.auc - c.previous.auc : null;
  }
}

/** Sorted by one column; rows without a value go last either way, ties by target. */
export function sortOverview(entries: readonly OverviewEntry[], key: SortKey, direction: SortDirection): OverviewEntry[] {
  const sign = direction === 'asc' ? 1 : -1;
  return [...entries].sort((a, b) => {
    const x = sortValue(a, key);
    const y = sortValue(b, key);
    if (x === null || y === null) {
      if (x !== y) return x === null ? 1 : -1;
    } else if (x !== y) {
      return sign * (typeof x === 'string' ? x.localeCompare(y as string) : x - (y as number));
    }
    // problems first also means the worse status first among equals
    if (key === 'problems' && STATUS_ORDER[a.status] !== STATUS_ORDER[b.status]) return STATUS_ORDER[a.status] - STATUS_ORDER[b.status];
    return a.label.localeCompare(b.label);
  });
}

/**
 * Features that grow with time by construction: between the training cutoff and the scoring
 * date every person's value moves by the same number of days, so their PSI measures the gap
 * between the two dates, not a change in the people. Their PSI is shown, never flagged.
 */
export const TIME_GROWING_FEATURES: Readonly<Record<string, string>> = {
  tenure_days:
    'days since the first purchase: everyone is older by the days between the training cutoff and the scoring date, so its PSI measures that gap, not a change in the people',
  history_covers_last_year:
    'whether the first purchase is a year old or more: it turns from 0 to 1 for everyone whose first purchase passes the year mark between the training cutoff and the scoring date, so its PSI measures that gap, not a change in the people',
};

export interface FeatureDrift {
  feature: string;
  psi: number;
  /** above the threshold, and not a feature that grows with time */
  flagged: boolean;
  /** why the feature is never flagged (it grows with time by construction), else null */
  exempt: string | null;
  edges: number[];
  /** shares per bin, the missing values last */
  training: number[];
  scored: number[];
}

/** PSI per feature present in both profiles (the same bins), most shifted first. */
export function computeDrift(
  training: Record<string, { edges: number[]; shares: number[]; missing: number }> | undefined,
  scored: ScoredProfile['bins'] | undefined,
): FeatureDrift[] {
  if (!training || !scored) return [];
  const drift: FeatureDrift[] = [];
  for (const [feature, reference] of Object.entries(training)) {
    const later = scored[feature];
    if (!later || later.shares.length !== reference.shares.length) continue;
    const psi = featurePsi(reference, later);
    const exempt = TIME_GROWING_FEATURES[feature] ?? null;
    drift.push({
      feature,
      psi,
      flagged: exempt === null && psi > PSI_THRESHOLD,
      exempt,
      edges: reference.edges,
      training: [...reference.shares, reference.missing],
      scored: [...later.shares, later.missing],
    });
  }
  return drift.sort((a, b) => b.psi - a.psi || a.feature.localeCompare(b.feature));
}

export interface FunnelView {
  at: string;
  population: Array<{ step: string; people: number }>;
  /** contactDetail: the detail the channel needs ("a mobile number"), null in funnels recorded before it was named */
  channels: Array<{
    channel: string;
    contactDetail: string | null;
    steps: Array<{ step: string; people: number }>;
    blocked: string | null;
  }>;
}

export const CHANNEL_STEPS = ['channel consent', 'with a contact detail', 'not on an opposition list', 'no objection (reachable)'] as const;

/** The funnel of the population a model scored: base → consent → snapshot → scored, then per channel. */
export function funnelView(recorded: RecordedFunnel | null, snapshot: number | null, scored: number | null): FunnelView | null {
  if (!recorded || recorded.channels.length === 0) return null;
  const first = recorded.channels[0]!;
  const population = [
    { step: 'contacts in the base', people: first.contacts },
    { step: 'valid profiling consent when scored', people: first.profilingConsent },
    ...(snapshot !== null ? [{ step: 'in the training consent snapshot', people: snapshot }] : []),
    ...(scored !== null ? [{ step: 'scored by this model', people: scored }] : []),
  ];
  const channels = recorded.channels.map((channel) => ({
    channel: channel.channel,
    contactDetail: channel.contactDetail ?? null,
    blocked: channel.blocked,
    steps: [
      { step: CHANNEL_STEPS[0], people: channel.channelConsent },
      { step: CHANNEL_STEPS[1], people: channel.withContactDetail },
      { step: CHANNEL_STEPS[2], people: channel.notOpposed },
      { step: CHANNEL_STEPS[3], people: channel.notObjected },
    ],
  }));
  return { at: recorded.at, population, channels };
}
