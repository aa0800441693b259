import { type AucInterval, aucInterval, type PairedAucDifference, pairedAucDifference } from '../models/delong.ts';
import { type BinaryMetrics, evaluationCurves, strided } from '../models/metrics.ts';
import type { NetworkKind } from '../models/propensity-network.ts';
import type { BaselineEvaluation } from './evaluation.ts';
import type { Algorithm } from './run-types.ts';
import { type Target, targetId } from './targets.ts';

/** Every model family, simplest last: the order that breaks ties between equal AUCs. */
export const ALGORITHMS: readonly Algorithm[] = ['logistic', 'mlp', 'bgnbd', 'rfm'];

export const isNetwork = (algorithm: Algorithm): algorithm is NetworkKind => algorithm === 'logistic' || algorithm === 'mlp';

/** One candidate of one target on the evaluation rows: its figures and the scores its AUC ranks. */
export interface Candidate {
  algorithm: Algorithm;
  metrics: BinaryMetrics | null;
  interval: AucInterval | null;
  scores: Float32Array;
}

/** What the evaluation decided for one target, before any champion is considered. */
export interface Choice {
  winner: Candidate | null;
  candidates: Candidate[];
  /** the winner's paired lead over the runner-up */
  margin: (PairedAucDifference & { over: Algorithm }) | null;
  atChance: boolean;
  reason: string;
}

export function fmt(value: number | null | undefined): string {
  return value === null || value === undefined || Number.isNaN(value) ? 'n/a' : value.toFixed(3);
}

export function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(3)}`;
}

/** Every candidate of target `index` on the evaluation rows: the networks' outputs, then both baselines. */
export function targetCandidates(
  index: number,
  targets: number,
  labels: Uint8Array,
  networks: ReadonlyMap<NetworkKind, { evaluationProbabilities: Float32Array; evaluationMetrics: Array<BinaryMetrics | null> }>,
  baseline: BaselineEvaluation,
): Candidate[] {
  const list: Candidate[] = [];
  for (const [kind, pair] of networks) {
    const scores = strided(pair.evaluationProbabilities, targets, index);
    list.push({ algorithm: kind, metrics: pair.evaluationMetrics[index] ?? null, interval: aucInterval(labels, scores), scores });
  }
  for (const kind of ['bgnbd', 'rfm'] as const) {
    const scores = kind === 'bgnbd' ? strided(baseline.bgnbdScores, 1, 0) : strided(baseline.rfmScores, 1, 0);
    const probabilities = kind === 'bgnbd' ? baseline.bgnbdProbabilities : baseline.rfmProbabilities;
    const metrics = baseline[kind];
    list.push({
      algorithm: kind,
      metrics: metrics ? ({ ...metrics, curves: evaluationCurves(labels, probabilities) } as BinaryMetrics) : null,
      interval: aucInterval(labels, scores),
      scores,
    });
  }
  return list;
}

/**
 * The best AUC among the candidates wins (ties: the first of logistic, mlp, BG/NBD, RFM); the
 * target gets no version in force only when even the winner is below `minimumAuc`.
 */
export function chooseCandidate(target: Target, labels: Uint8Array, candidates: Candidate[], minimumAuc: number, note = ''): Choice {
  const aucOf = (candidate: Candidate) => (candidate.interval as AucInterval).auc;
  const ranked = candidates
    .filter((candidate) => candidate.interval !== null && Number.isFinite(candidate.interval.auc))
    .sort((a, b) => aucOf(b) - aucOf(a) || ALGORITHMS.indexOf(a.algorithm) - ALGORITHMS.indexOf(b.algorithm));
  const winner = ranked[0] ?? null;
  if (!winner)
    return {
      winner: null,
      candidates,
      margin: null,
      atChance: true,
      reason: `no evaluation possible for ${targetId(target)}: one class only in the window`,
    };
  const runnerUp = ranked[1] ?? null;
  const difference = runnerUp ? pairedAucDifference(labels, winner.scores, runnerUp.scores) : null;
  const margin = difference && runnerUp ? { ...difference, over: runnerUp.algorithm } : null;
  const interval = winner.interval as AucInterval;
  const figures = `${candidates.map((candidate) => `${candidate.algorithm} ${fmt(candidate.interval?.auc)}`).join(', ')}${note}`;
  const lead = margin ? `, ahead of ${margin.over} by ${margin.difference.toFixed(3)} [${signed(margin.low)}, ${signed(margin.high)}]` : '';
  if (interval.auc < minimumAuc) {
    return {
      winner,
      candidates,
      margin,
      atChance: true,
      reason: `best candidate ${winner.algorithm} AUC ${fmt(interval.auc)} below ${minimumAuc}, too close to chance (${figures})`,
    };
  }
  return {
    winner,
    candidates,
    margin,
    atChance: false,
    reason: `${winner.algorithm} wins with AUC ${fmt(interval.auc)} [${fmt(interval.low)}, ${fmt(interval.high)}]${lead} (${figures})`,
  };
}
