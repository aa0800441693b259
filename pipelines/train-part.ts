import { createHash } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import type { BinnedCalibration } from '../models/baselines.ts';
import { type AucInterval, aucInterval, type PairedAucDifference, pairedAucDifference } from '../models/delong.ts';
import { type BinaryMetrics, evaluationCurves, labelColumn, strided } from '../models/metrics.ts';
import type { NetworkKind } from '../models/propensity-network.ts';
import { personShare } from '../models/random.ts';
import { standardisationFromJson, standardisationToJson } from '../models/standardisation.ts';
import type { Tensorflow } from '../models/tensorflow.ts';
import type { AppContext } from '../src/context.ts';
import type { Database } from '../src/db/database.ts';
import { type CurrentChampion, currentChampions } from '../src/registry/champions.repository.ts';
import { codeVersion } from '../src/registry/code-version.ts';
import { exportNetwork, loadNetwork, saveNetwork } from '../src/registry/model-store.ts';
import type { NewVersion } from '../src/registry/registry.repository.ts';
import type { BaselineScorer } from './baseline-scoring.ts';
import { type BuyTillYouDie, type BuyTillYouDieFit, fillBuyTillYouDie, fitBuyTillYouDie } from './buy-till-you-die.ts';
import { takeConsentSnapshot } from './consent-snapshot.ts';
import {
  type BaselineEvaluation,
  type BaselineKind,
  evaluateBaselines,
  fitBaselineCalibration,
  activeRowsOnly,
  groupImportance,
  metricsPerTarget,
  selectRows,
} from './evaluation.ts';
import { type FeatureProfile, featureProfile } from './feature-profile.ts';
import { PERSON_FEATURES } from './feature-spec.ts';
import { computeFeatures, type FeatureLayout, type FeatureMatrix, featureLayout, storedLayout } from './features.ts';
import { computeLabels } from './labels.ts';
import { type Progress, stageTimer } from './progress.ts';
import { type Algorithm, DEFAULT_PIPELINE_OPTIONS, type EvaluationDesign, type PipelineOptions, type PipelineReport, type TargetOutcome } from './run-pipeline.ts';
import { classifyCategories, selectTargets, type Target, type TargetCandidate, targetId } from './targets.ts';
import { type FittedNetwork, fitNetwork, type InferenceNetwork, type LabelledMatrix, predictMatrix } from './training.ts';

const DAY_MS = 86_400_000;
/** people sampled at the scoring instant to fit the BG/NBD every scoring shard uses */
const SCORING_FIT_ROWS = 60_000;
const ALGORITHMS: readonly Algorithm[] = ['logistic', 'mlp', 'bgnbd', 'rfm'];

/** How a version scores people: a stored network's output, or a baseline applied to the run's matrix. */
export type Scorer =
  | { kind: 'network'; networkId: number; outputIndex: number; layout: FeatureLayout }
  | (BaselineScorer & { layout: FeatureLayout });

/** A model version decided by training, written (and promoted) only when the run publishes. */
export interface PlannedVersion {
  target: Target;
  outputIndex: number;
  status: 'champion' | 'candidate' | 'rejected';
  algorithm: Algorithm;
  /** reserved for a champion of a pipeline run (or a kept champion scored again): its scores carry this id before the set exists */
  scoreSetId: number | null;
  /** how to score with it (champions only) */
  scorer: Scorer | null;
  /** a champion kept from an earlier run that this run scores again: no version is written for this entry */
  kept?: { modelId: number; versionId: number; version: number };
  version: Omit<NewVersion, 'modelId' | 'status' | 'outputIndex' | 'trainedAt' | 'consentSnapshotAt' | 'trainingCutoff'> & {
    trainedAt: string;
    consentSnapshotAt: string;
    trainingCutoff: string;
  };
}

/**
 * What training hands to scoring and publishing (stored as JSON with the run's train part,
 * so that any worker can take the next step): decisions, not yet visible to anyone.
 */
export interface TrainingPlan {
  runId: number;
  kind: 'pipeline' | 'backtest';
  asOf: string;
  horizonDays: number;
  seed: number;
  layout: FeatureLayout | null;
  versions: PlannedVersion[];
  /** BG/NBD fitted at the scoring instant, shared by every scoring shard */
  scoringFit: BuyTillYouDieFit | null;
  /** the training population's feature profile, the reference for drift */
  trainingProfile: FeatureProfile | null;
  report: PipelineReport;
}

interface NetworkPair {
  evaluation: FittedNetwork;
  production?: FittedNetwork;
  evaluationProbabilities: Float32Array;
  evaluationMetrics: Array<BinaryMetrics | null>;
}

/** One candidate of one target on the evaluation rows: its figures and the scores its AUC ranks. */
interface Candidate {
  algorithm: Algorithm;
  metrics: BinaryMetrics | null;
  interval: AucInterval | null;
  scores: Float32Array;
}

function day(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function minusDays(date: Date, days: number): Date {
  return new Date(date.getTime() - days * DAY_MS);
}

/** Whether the person had a purchase before the matrix's cutoff. */
function hasHistory(row: number, matrix: FeatureMatrix): boolean {
  return (matrix.x[row * matrix.columns + PERSON_FEATURES.indexOf('has_history')] as number) > 0;
}

const isNetwork = (algorithm: Algorithm): algorithm is NetworkKind => algorithm === 'logistic' || algorithm === 'mlp';

/**
 * Out-of-time evaluation (networks trained at T−2H, judged on [T−H, T)) needs people who had a
 * history at T−2H already. When fewer than `minHistoryShare` of those with a purchase before T−H
 * had one before T−2H (a young base, a cohort that arrived recently), or too few had one at all,
 * the candidates are judged at T−H instead, on people held out by a seeded split by person.
 */
async function chooseEvaluationDesign(
  db: Kysely<Database>,
  runId: number,
  evaluationCutoff: Date,
  calibrationCutoff: Date,
  options: PipelineOptions,
): Promise<EvaluationDesign> {
  const settings = options.evaluation ?? DEFAULT_PIPELINE_OPTIONS.evaluation;
  const { rows } = await sql<{ at_evaluation: number; at_calibration: number }>`
    SELECT count(*)::int AS at_evaluation, count(*) FILTER (WHERE first_purchase < ${calibrationCutoff})::int AS at_calibration
    FROM (SELECT s.contact_id, min(p.purchased_at) AS first_purchase
          FROM profiling_snapshots s JOIN purchases p ON p.contact_id = s.contact_id
          WHERE s.run_id = ${runId} AND s.known_since < ${evaluationCutoff} AND p.purchased_at < ${evaluationCutoff}
          GROUP BY s.contact_id) AS history`.execute(db);
  const atEvaluation = rows[0]?.at_evaluation ?? 0;
  const atCalibration = rows[0]?.at_calibration ?? 0;
  const share = atEvaluation > 0 ? atCalibration / atEvaluation : 0;
  const base = { historyAtEvaluation: atEvaluation, historyAtCalibration: atCalibration, seed: options.training.seed, test: 'DeLong paired' as const };
  const percent = (value: number) => `${(100 * value).toFixed(0)}%`;
  const enough = options.minPositives + options.minNegatives;
  if (share >= settings.minHistoryShare && atCalibration >= enough) {
    return {
      ...base,
      kind: 'out-of-time',
      holdoutShare: null,
      reason: `out-of-time: trained at ${day(calibrationCutoff)}, judged on [${day(evaluationCutoff)}, +${options.horizonDays} d); ${percent(share)} of the ${atEvaluation} people with a history at ${day(evaluationCutoff)} already had one at ${day(calibrationCutoff)}`,
    };
  }
  return {
    ...base,
    kind: 'person-split',
    holdoutShare: settings.holdoutShare,
    reason: `split by person at ${day(evaluationCutoff)}: only ${atCalibration} of the ${atEvaluation} people with a history at ${day(evaluationCutoff)} (${percent(share)}, below ${percent(settings.minHistoryShare)}${atCalibration < enough ? `, or fewer than ${enough}` : ''}) had one at ${day(calibrationCutoff)}; ${percent(settings.holdoutShare)} of the people (seeded by id) held out and judged on [${day(evaluationCutoff)}, +${options.horizonDays} d)`,
  };
}

/**
 * The training part of a run, stage by stage: consent snapshot → evaluation design → targets →
 * features → labels → train (evaluation networks, early stopping) → evaluate every candidate
 * (networks, BG/NBD, RFM) on the same rows → production networks for the winners → register →
 * decide each target's version, and plan a new score set for every champion, kept ones included.
 * Nothing it writes is visible: the snapshot and networks belong to the run, and versions are
 * only planned (see publish-part.ts). A backtest also judges the winners on what really
 * happened after `asOf`.
 */
export async function trainRun(
  context: AppContext,
  t: Tensorflow,
  runId: number,
  options: PipelineOptions,
  progress: Progress,
  startedAt: Date,
): Promise<TrainingPlan> {
  const { db } = context.database;
  const asOf = options.asOf ?? startedAt;
  const live = options.asOf === null;
  const horizon = options.horizonDays;
  const training = { ...DEFAULT_PIPELINE_OPTIONS.training, ...options.training };
  const { stages, timed, peakRss } = stageTimer(progress);
  return stagesOf(runId);

  async function stagesOf(run: number): Promise<TrainingPlan> {
    const snapshot = await timed('consent snapshot', async () => {
      const value = await takeConsentSnapshot(db, run, asOf, live);
      return { value, rows: value.size };
    });

    // special categories resolved once into exact names: every SQL stage excludes the same ones
    const categories = await classifyCategories(db, options.specialCategories);
    const evaluationCutoff = minusDays(asOf, horizon);
    const calibrationCutoff = minusDays(asOf, 2 * horizon);
    const design = await timed('evaluation design', async () => ({
      value: await chooseEvaluationDesign(db, run, evaluationCutoff, calibrationCutoff, options),
      rows: 1,
    }));
    const outOfTime = design.kind === 'out-of-time';
    const windows = outOfTime
      ? [{ cutoff: evaluationCutoff, horizonDays: horizon }, { cutoff: calibrationCutoff, horizonDays: horizon }]
      : [{ cutoff: evaluationCutoff, horizonDays: horizon }];
    const candidates = await timed('targets', async () => {
      const value = await selectTargets(db, run, windows, {
        minPositives: options.minPositives,
        minNegatives: options.minNegatives,
        products: options.products,
        specialCategories: categories.special,
      });
      return { value, rows: value.length };
    });
    const targets: Target[] = candidates.filter((candidate) => candidate.eligible);
    const candidateOf = new Map(candidates.map((candidate) => [targetId(candidate), candidate]));
    const outcomes = new Map<string, TargetOutcome>();
    // a catalogue may hold thousands of products too rarely bought to model: only those asked
    // for, or already in the registry (their champion stays, and a reviewer should see why), are reported
    const modelled = new Set(
      (await db.selectFrom('models').select('target_key').where('target_kind', '=', 'product').execute()).map((row) => row.target_key),
    );
    for (const candidate of candidates.filter((c) => !c.eligible && (c.kind !== 'product' || options.products || modelled.has(c.key)))) {
      outcomes.set(targetId(candidate), notEligible(candidate));
    }
    const champions = options.kind === 'pipeline' ? await currentChampions(db) : [];
    const rescored: NonNullable<PipelineReport['rescored']> = [];
    let evaluationOrigins: Date[] = [];
    let productionOrigins: Date[] = [];
    const report = (): PipelineReport => ({
      runId: run,
      kind: options.kind,
      asOf: asOf.toISOString(),
      horizonDays: horizon,
      backend: t.backend,
      population: snapshot.size,
      cutoffs: {
        evaluationTraining: evaluationOrigins.map(day),
        evaluation: day(evaluationCutoff),
        productionTraining: productionOrigins.map(day),
        scoring: day(asOf),
      },
      evaluationDesign: design,
      rescored,
      targets: [...outcomes.values()],
      stages,
      peakRssMb: Math.round(peakRss() / 2 ** 20),
    });
    const planned: PlannedVersion[] = [];
    let planLayout: FeatureLayout | null = null;
    let trainingProfile: FeatureProfile | null = null;
    let scoringFit: BuyTillYouDieFit | null = null;
    const plan = (): TrainingPlan => ({
      runId: run,
      kind: options.kind,
      asOf: asOf.toISOString(),
      horizonDays: horizon,
      seed: training.seed,
      layout: planLayout,
      versions: planned,
      scoringFit,
      trainingProfile,
      report: report(),
    });
    const fitForScoring = async (layout: FeatureLayout) =>
      timed('BG/NBD (scoring)', async () => {
        // the BG/NBD columns of the scoring matrix come from one fit shared by every scoring shard
        const sample = await computeFeatures(db, {
          runId: run,
          cutoff: asOf,
          horizonDays: horizon,
          layout,
          liveConsentAt: context.clock.now(),
          samplePermille: Math.min(1000, Math.ceil((1000 * SCORING_FIT_ROWS) / Math.max(1, snapshot.size))),
        });
        return { value: fitBuyTillYouDie(sample, training.seed), rows: sample.rows };
      });

    if (targets.length === 0) {
      // nothing to train, but every champion still scores today's people
      await planKeptChampions(new Set(), null);
      const first = planned[0]?.scorer;
      if (first) {
        planLayout = first.layout;
        scoringFit = await fitForScoring(first.layout);
      }
      return plan();
    }

    const origins = Math.max(1, Math.min(options.maxOrigins, Math.ceil(training.maxTrainingRows / Math.max(1, snapshot.size))));
    productionOrigins = Array.from({ length: origins }, (_, k) => minusDays(evaluationCutoff, k * options.originStepDays));
    evaluationOrigins = outOfTime ? Array.from({ length: origins }, (_, k) => minusDays(calibrationCutoff, k * options.originStepDays)) : productionOrigins;

    const layout = featureLayout(targets, categories.allowed, categories.special);
    planLayout = layout;

    // every cutoff's matrix once; BG/NBD is fitted at each cutoff on what was known then
    const matrices = new Map<number, { labelled: LabelledMatrix; bgnbd: BuyTillYouDie }>();
    const trainingCutoffs = [...new Set([...evaluationOrigins, ...productionOrigins].map((date) => date.getTime()))].sort((a, b) => b - a);
    // training and evaluation read a sample of people beyond the training cap; only scoring needs everyone
    const samplePermille = Math.min(1000, Math.ceil((1000 * training.maxTrainingRows) / Math.max(1, snapshot.size)));
    await timed('features', async () => {
      let rows = 0;
      for (const [index, cutoff] of trainingCutoffs.entries()) {
        const matrix = await computeFeatures(db, { runId: run, cutoff: new Date(cutoff), horizonDays: horizon, layout, samplePermille }, (done, total) =>
          progress.step(`cutoff ${index + 1}/${trainingCutoffs.length + 1}, people`, done, total),
        );
        const bgnbd = fillBuyTillYouDie(matrix, training.seed);
        matrices.set(cutoff, { labelled: { matrix, labels: new Uint8Array(0) }, bgnbd });
        rows += matrix.rows;
      }
      return { value: undefined, rows };
    });
    await timed('labels', async () => {
      let rows = 0;
      for (const entry of matrices.values()) {
        entry.labelled.labels = await computeLabels(db, entry.labelled.matrix, targets);
        rows += entry.labelled.matrix.rows;
      }
      return { value: undefined, rows };
    });
    const at = (date: Date) => matrices.get(date.getTime()) as { labelled: LabelledMatrix; bgnbd: BuyTillYouDie };
    // person split: the held-out people are judged, the others train (and calibrate the baselines)
    const heldOut = (contactId: number) => personShare(contactId, training.seed + 2) < (design.holdoutShare ?? 0);
    const atEvaluation = at(evaluationCutoff);
    const evaluated = selectRows(atEvaluation.labelled, atEvaluation.bgnbd, (row, matrix) =>
      hasHistory(row, matrix) && (outOfTime || heldOut(matrix.contactIds[row] as number)),
    );
    const calibration = outOfTime
      ? at(calibrationCutoff)
      : selectRows(atEvaluation.labelled, atEvaluation.bgnbd, (row, matrix) => !heldOut(matrix.contactIds[row] as number));
    const evaluationStack = evaluationOrigins.map((date) =>
      outOfTime ? at(date).labelled : selectRows(at(date).labelled, at(date).bgnbd, (row, matrix) => !heldOut(matrix.contactIds[row] as number)).labelled,
    );

    const networks = new Map<NetworkKind, NetworkPair>();
    await timed('train (evaluation)', async () => {
      let rows = 0;
      for (const kind of training.algorithms) {
        const evaluation = await fitNetwork(t, kind, evaluationStack, targets.length, training, (epoch) =>
          progress.step(`${kind} epoch`, epoch + 1, training.maxEpochs),
        );
        const evaluationProbabilities = await predictMatrix(t, evaluation, evaluated.labelled.matrix);
        networks.set(kind, {
          evaluation,
          evaluationProbabilities,
          evaluationMetrics: metricsPerTarget(evaluated.labelled.labels, evaluationProbabilities, targets.length, { curves: true }),
        });
        rows += evaluation.trainingRows;
      }
      return { value: undefined, rows };
    });
    const baselines = await timed('evaluate baselines', async () => {
      const value = evaluateBaselines(calibration.labelled, calibration.bgnbd, evaluated.labelled, evaluated.bgnbd, targets);
      return { value, rows: evaluated.labelled.matrix.rows * targets.length };
    });

    // per target: every candidate on the same rows, the best AUC wins
    const choices = await timed('choose', async () => {
      const value = targets.map((target, index) => {
        const labels = labelColumn(evaluated.labelled.labels, targets.length, index);
        const baseline = baselines[index] as BaselineEvaluation;
        const list: Candidate[] = [];
        for (const [kind, pair] of networks) {
          const scores = strided(pair.evaluationProbabilities, targets.length, index);
          list.push({ algorithm: kind, metrics: pair.evaluationMetrics[index] ?? null, interval: aucInterval(labels, scores), scores });
        }
        for (const kind of ['bgnbd', 'rfm'] as const) {
          const scores = kind === 'bgnbd' ? strided(baseline.bgnbdScores, 1, 0) : strided(baseline.rfmScores, 1, 0);
          const probabilities = kind === 'bgnbd' ? baseline.bgnbdProbabilities : baseline.rfmProbabilities;
          const metrics = baseline[kind];
          list.push({
            algorithm: kind,
            metrics: metrics ? { ...metrics, curves: evaluationCurves(labels, probabilities) } as BinaryMetrics : null,
            interval: aucInterval(labels, scores),
            scores,
          });
        }
        return chooseCandidate(target, labels, list, options.minimumAuc);
      });
      return { value, rows: evaluated.labelled.matrix.rows * targets.length };
    });
    const neededKinds = new Set(choices.flatMap((choice) => (choice.winner && isNetwork(choice.winner.algorithm) ? [choice.winner.algorithm] : [])));
    await timed('train (production)', async () => {
      let rows = 0;
      for (const kind of neededKinds) {
        const pair = networks.get(kind) as NetworkPair;
        // with early stopping, as many epochs as it found for the evaluation network, on everyone
        pair.production = await fitNetwork(
          t,
          kind,
          productionOrigins.map((date) => at(date).labelled),
          targets.length,
          training,
          (epoch) => progress.step(`${kind} epoch`, epoch + 1, training.maxEpochs),
          { epochs: training.validationShare > 0 ? pair.evaluation.epochs : undefined },
        );
        rows += pair.production.trainingRows;
      }
      return { value: undefined, rows };
    });
    // a baseline that wins is calibrated on the production window, as a network is trained on it
    const productionCalibration = new Map<number, BinnedCalibration>();
    for (const [index, choice] of choices.entries()) {
      const algorithm = choice.winner?.algorithm;
      if (algorithm === 'bgnbd' || algorithm === 'rfm') {
        productionCalibration.set(index, fitBaselineCalibration(algorithm, atEvaluation.labelled, atEvaluation.bgnbd, targets[index] as Target, index, targets.length));
      }
    }
    for (const date of evaluationOrigins) if (date.getTime() !== evaluationCutoff.getTime()) matrices.delete(date.getTime());

    const importance = await timed('importance', async () => {
      const value = new Map<NetworkKind, Array<{ name: string; aucDrop: number[] }>>();
      for (const kind of neededKinds) {
        value.set(kind, await groupImportance(t, (networks.get(kind) as NetworkPair).evaluation, evaluated.labelled, training.seed));
      }
      return { value, rows: 0 };
    });

    // the population at the last training cutoff, for drift checks by later runs and reviewers
    const savedNetworks = await timed('register', async () => {
      const ids = new Map<string, number>();
      const profile = await featureProfile(evaluated.labelled.matrix, training.seed);
      trainingProfile = profile;
      for (const kind of neededKinds) {
        const pair = networks.get(kind) as NetworkPair;
        for (const [role, fitted] of [['evaluation', pair.evaluation], ['production', pair.production]] as const) {
          if (!fitted) continue;
          await fitted.model.save(
            saveNetwork(db, { runId: run, role, algorithm: kind, featureList: layout.names, metadata: { ...networkMetadata(fitted, targets, layout, role === 'evaluation' ? evaluationOrigins : productionOrigins, horizon), featureProfile: profile } }, (id) =>
              ids.set(`${kind}:${role}`, id),
            ),
          );
        }
      }
      if (options.modelsDir) for (const id of ids.values()) await exportNetwork(db, id, options.modelsDir);
      return { value: ids, rows: ids.size };
    });

    const promotedModels = new Set<number>();
    await timed('decide', async () => {
      const code = codeVersion();
      const championPredictions = new Map<number, { targets: string[]; probabilities: Float32Array } | null>();
      for (const [index, target] of targets.entries()) {
        const choice = choices[index] as Choice;
        const baseline = baselines[index] as BaselineEvaluation;
        const winner = choice.winner;
        const outcome: TargetOutcome = {
          target: targetId(target),
          algorithm: winner?.algorithm ?? null,
          version: null,
          status: 'rejected',
          reason: choice.reason,
          auc: { model: winner?.interval?.auc ?? null, rfm: baseline.rfm?.rocAuc ?? null, bgnbd: baseline.bgnbd?.rocAuc ?? null, champion: null },
          candidates: Object.fromEntries(choice.candidates.map((candidate) => [candidate.algorithm, candidate.interval])),
          margin: choice.margin,
        };
        outcomes.set(outcome.target, outcome);
        if (!winner) continue;
        let status: 'champion' | 'candidate' | 'rejected' = choice.atChance ? 'rejected' : 'candidate';
        let reason = choice.reason;
        const champion = champions.find((entry) => entry.target.kind === target.kind && entry.target.key === target.key) ?? null;
        let championComparison: { version: number; algorithm: string; auc: number | null; difference: PairedAucDifference | null } | null = null;
        if (status === 'candidate' && options.kind === 'pipeline') {
          const labels = labelColumn(evaluated.labelled.labels, targets.length, index);
          const championScores = champion ? await championScoresOnWindow(t, context, champion, target, choices[index] as Choice, evaluated.labelled, layout, championPredictions) : null;
          const storedAuc = champion ? ((champion.metrics.evaluation as { rocAuc?: number } | null)?.rocAuc ?? null) : null;
          const difference = championScores ? pairedAucDifference(labels, winner.scores, championScores) : null;
          const championAuc = difference ? (winner.interval?.auc ?? 0) - difference.difference : storedAuc;
          outcome.auc.champion = championAuc;
          outcome.championDifference = difference;
          if (champion) championComparison = { version: champion.version, algorithm: champion.algorithm, auc: championAuc, difference };
          // the champion stays only when it is better beyond the tolerance and the paired interval says so
          const championBetter =
            championAuc !== null &&
            (winner.interval?.auc ?? 0) < championAuc - options.promotionTolerance &&
            (difference === null || difference.high < 0);
          if (!champion || !championBetter) {
            status = 'champion';
            reason = champion
              ? `${reason}; not worse than champion v${champion.version} (${champion.algorithm}, AUC ${fmt(championAuc)} on these rows${difference ? `, difference ${signed(difference.difference)} [${signed(difference.low)}, ${signed(difference.high)}]` : ''})`
              : `${reason}; first model for this target`;
          } else {
            reason = `${reason}; champion v${champion.version} stays: its AUC ${fmt(championAuc)} on these rows is higher by more than ${options.promotionTolerance}${difference ? ` (difference ${signed(difference.difference)}, 95% interval [${signed(difference.low)}, ${signed(difference.high)}])` : ''}`;
          }
        } else if (status === 'candidate') {
          reason = `${reason}; backtest run, never promoted`;
        }
        const network = isNetwork(winner.algorithm) ? (networks.get(winner.algorithm) as NetworkPair) : null;
        const productionNetworkId = network ? (savedNetworks.get(`${winner.algorithm}:production`) ?? null) : null;
        const scorer: Scorer | null =
          status !== 'champion'
            ? null
            : network
              ? { kind: 'network', networkId: productionNetworkId as number, outputIndex: index, layout }
              : { kind: winner.algorithm as BaselineKind, target, calibration: productionCalibration.get(index) as BinnedCalibration, layout };
        if (status === 'champion' && champion) promotedModels.add(champion.modelId);
        const baselineMetrics = { rfm: baseline.rfm, bgnbd: baseline.bgnbd, bgnbdParams: evaluated.bgnbd.params };
        planned.push({
          target,
          outputIndex: index,
          status,
          algorithm: winner.algorithm,
          scoreSetId: status === 'champion' ? await reserveScoreSetId(db) : null,
          scorer,
          version: {
            algorithm: winner.algorithm,
            runId: run,
            trainedAt: context.clock.now().toISOString(),
            consentSnapshotAt: snapshot.at.toISOString(),
            populationSize: snapshot.size,
            trainingCutoff: evaluationCutoff.toISOString(),
            horizonDays: horizon,
            featureList: layout.names,
            codeVersion: code,
            trainingDataHash: network ? (network.production ?? network.evaluation).trainingDataHash : atEvaluation.labelled.matrix.rows > 0 ? matrixHash(atEvaluation.labelled) : '',
            metrics: {
              evaluationDesign: design,
              evaluationWindow: { cutoff: day(evaluationCutoff), horizonDays: horizon, rows: evaluated.labelled.matrix.rows },
              // buyers among everyone in the snapshot (not the training sample) in the window from the
              // evaluation cutoff: the most recent window the production version is trained on
              trainingWindow: {
                cutoff: day(evaluationCutoff),
                horizonDays: horizon,
                buyers: candidateOf.get(targetId(target))?.positives[0] ?? null,
                population: candidateOf.get(targetId(target))?.population[0] ?? null,
              },
              evaluationTrainingCutoffs: evaluationOrigins.map(day),
              productionTrainingCutoffs: productionOrigins.map(day),
              trainingRows: network?.production?.trainingRows ?? null,
              epochs: network ? { found: network.evaluation.epochs, validationLoss: network.evaluation.validationLoss } : null,
              evaluation: winner.metrics,
              aucInterval: winner.interval,
              candidates: Object.fromEntries(choice.candidates.map((candidate) => [candidate.algorithm, candidate.interval])),
              margin: choice.margin,
              importance: network
                ? importance
                    .get(winner.algorithm as NetworkKind)
                    ?.map((group) => ({ group: group.name, aucDrop: group.aucDrop[index] ?? null }))
                    .sort((a, b) => (b.aucDrop ?? 0) - (a.aucDrop ?? 0))
                : null,
              champion: championComparison,
              alternatives: Object.fromEntries(choice.candidates.map((candidate) => [candidate.algorithm, candidate.interval?.auc ?? null])),
              explanationGroups: layout.explanationGroups.map((group) => group.name),
              ...(scorer && scorer.kind !== 'network' ? { scorer: { kind: scorer.kind, calibration: scorer.calibration } } : {}),
              layout: { categories: layout.categories, productIds: layout.productIds, specialCategories: layout.specialCategories },
            },
            baselineMetrics,
            decisionReason: reason,
            networkId: productionNetworkId,
            evaluationNetworkId: network ? (savedNetworks.get(`${winner.algorithm}:evaluation`) ?? null) : null,
          },
        });
        outcome.status = status;
        outcome.reason = reason;
      }
      return { value: undefined, rows: targets.length };
    });

    if (options.kind === 'backtest') {
      await backtestStage();
    } else {
      await planKeptChampions(promotedModels, layout);
      if (planned.some((entry) => entry.scoreSetId !== null)) scoringFit = await fitForScoring(layout);
    }
    matrices.clear();
    return plan();

    /**
     * Every champion that this run does not replace is scored again on today's people: a network
     * by its stored production network (with the features of its own layout), a baseline by its
     * stored calibration on this run's BG/NBD fit. No version is written; its new score set
     * names this run.
     */
    async function planKeptChampions(replaced: ReadonlySet<number>, runLayout: FeatureLayout | null): Promise<void> {
      for (const champion of champions) {
        if (replaced.has(champion.modelId)) continue;
        const target = targetOf(champion);
        const scorer = keptScorer(champion, target, runLayout);
        const id = targetId(target);
        if (!scorer) {
          outcomes.set(id, { ...(outcomes.get(id) ?? notEligibleOf(id)), reason: `${outcomes.get(id)?.reason ?? ''}; champion v${champion.version} could not be scored again (its scorer is not stored)` });
          continue;
        }
        planned.push({
          target,
          outputIndex: champion.outputIndex ?? 0,
          status: 'champion',
          algorithm: champion.algorithm as Algorithm,
          scoreSetId: await reserveScoreSetId(db),
          scorer,
          kept: { modelId: champion.modelId, versionId: champion.versionId, version: champion.version },
          version: {
            algorithm: champion.algorithm,
            runId: run,
            trainedAt: context.clock.now().toISOString(),
            consentSnapshotAt: snapshot.at.toISOString(),
            populationSize: snapshot.size,
            trainingCutoff: evaluationCutoff.toISOString(),
            horizonDays: horizon,
            featureList: scorer.layout.names,
            codeVersion: codeVersion(),
            trainingDataHash: '',
            metrics: {},
            baselineMetrics: {},
            decisionReason: `champion v${champion.version} kept, scored again by run ${run}`,
            networkId: champion.networkId,
            evaluationNetworkId: champion.evaluationNetworkId,
          },
        });
        rescored.push({ target: id, version: champion.version, algorithm: champion.algorithm, scored: null });
      }
    }

    async function backtestStage(): Promise<void> {
      const truth = await timed('backtest (truth)', async () => {
        const matrix = await computeFeatures(db, { runId: run, cutoff: asOf, horizonDays: horizon, layout: planLayout as FeatureLayout });
        const bgnbd = fillBuyTillYouDie(matrix, training.seed);
        const labels = await computeLabels(db, matrix, targets);
        const value = activeRowsOnly({ matrix, labels }, bgnbd);
        return { value, rows: value.labelled.matrix.rows };
      });
      await timed('backtest (metrics)', async () => {
        // the production baselines are calibrated on the production window, as in a pipeline run
        const atEvaluation = at(minusDays(asOf, horizon));
        const truthBaselines = evaluateBaselines(atEvaluation.labelled, atEvaluation.bgnbd, truth.labelled, truth.bgnbd, targets);
        const predictions = new Map<NetworkKind, Array<BinaryMetrics | null>>();
        for (const kind of neededKinds) {
          const production = (networks.get(kind) as NetworkPair).production as FittedNetwork;
          const probabilities = await predictMatrix(t, production, truth.labelled.matrix);
          predictions.set(kind, metricsPerTarget(truth.labelled.labels, probabilities, targets.length));
        }
        for (const [index, target] of targets.entries()) {
          const outcome = outcomes.get(targetId(target));
          const winner = (choices[index] as Choice).winner;
          if (!outcome) continue;
          const rfm = truthBaselines[index]?.rfm ?? null;
          const bgnbd = truthBaselines[index]?.bgnbd ?? null;
          outcome.backtest = {
            model: !winner ? null : isNetwork(winner.algorithm) ? (predictions.get(winner.algorithm)?.[index] ?? null) : winner.algorithm === 'bgnbd' ? bgnbd : rfm,
            rfm,
            bgnbd,
          };
        }
        return { value: undefined, rows: truth.labelled.matrix.rows * targets.length };
      });
    }
  }
}

function targetOf(champion: CurrentChampion): Target {
  const { kind, key, productId } = champion.target;
  return { kind, key, productId, category: kind === 'category' ? key : null };
}

/** How a kept champion scores: from what its version (baseline) or its network (layout, targets) stored. */
function keptScorer(champion: CurrentChampion, target: Target, runLayout: FeatureLayout | null): Scorer | null {
  const stored = champion.metrics.layout as { categories: string[]; productIds: number[]; specialCategories: string[] } | undefined;
  if (champion.algorithm === 'bgnbd' || champion.algorithm === 'rfm') {
    const scorer = champion.metrics.scorer as { kind: BaselineKind; calibration: BinnedCalibration } | undefined;
    if (!scorer || !stored) return null;
    return { kind: scorer.kind, target, calibration: scorer.calibration, layout: runLayout && hasBlock(runLayout, target) ? runLayout : storedLayout({ names: champion.featureList, ...stored }) };
  }
  if (champion.networkId === null || !champion.network) return null;
  const metadata = champion.network.metadata as { layout?: { categories: string[]; productIds: number[]; specialCategories: string[] } };
  if (!metadata.layout) return null;
  const layout = storedLayout({ names: champion.network.featureList, ...metadata.layout });
  return { kind: 'network', networkId: champion.networkId, outputIndex: champion.outputIndex ?? 0, layout };
}

function hasBlock(layout: FeatureLayout, target: Target): boolean {
  if (target.kind === 'any') return true;
  return layout.names.includes(`${target.kind}:${target.key}:purchase_days`);
}

interface Choice {
  winner: Candidate | null;
  candidates: Candidate[];
  /** the winner's paired lead over the runner-up */
  margin: (PairedAucDifference & { over: Algorithm }) | null;
  atChance: boolean;
  reason: string;
}

function fmt(value: number | null | undefined): string {
  return value === null || value === undefined || Number.isNaN(value) ? 'n/a' : value.toFixed(3);
}

function signed(value: number): string {
  return `${value >= 0 ? '+' : ''}${value.toFixed(3)}`;
}

/**
 * The best AUC among the candidates wins (ties: the first of logistic, mlp, BG/NBD, RFM); the
 * target gets no version in force only when even the winner is below `minimumAuc`.
 */
function chooseCandidate(target: Target, labels: Uint8Array, candidates: Candidate[], minimumAuc: number): Choice {
  const aucOf = (candidate: Candidate) => (candidate.interval as AucInterval).auc;
  const ranked = candidates
    .filter((candidate) => candidate.interval !== null && Number.isFinite(candidate.interval.auc))
    .sort((a, b) => aucOf(b) - aucOf(a) || ALGORITHMS.indexOf(a.algorithm) - ALGORITHMS.indexOf(b.algorithm));
  const winner = ranked[0] ?? null;
  if (!winner) return { winner: null, candidates, margin: null, atChance: true, reason: `no evaluation possible for ${targetId(target)}: one class only in the window` };
  const runnerUp = ranked[1] ?? null;
  const difference = runnerUp ? pairedAucDifference(labels, winner.scores, runnerUp.scores) : null;
  const margin = difference && runnerUp ? { ...difference, over: runnerUp.algorithm } : null;
  const interval = winner.interval as AucInterval;
  const figures = candidates.map((candidate) => `${candidate.algorithm} ${fmt(candidate.interval?.auc)}`).join(', ');
  const lead = margin ? `, ahead of ${margin.over} by ${margin.difference.toFixed(3)} [${signed(margin.low)}, ${signed(margin.high)}]` : '';
  if (interval.auc < minimumAuc) {
    return { winner, candidates, margin, atChance: true, reason: `best candidate ${winner.algorithm} AUC ${fmt(interval.auc)} below ${minimumAuc}, too close to chance (${figures})` };
  }
  return { winner, candidates, margin, atChance: false, reason: `${winner.algorithm} wins with AUC ${fmt(interval.auc)} [${fmt(interval.low)}, ${fmt(interval.high)}]${lead} (${figures})` };
}

function notEligible(candidate: TargetCandidate): TargetOutcome {
  return { ...notEligibleOf(targetId(candidate)), reason: candidate.reason ?? 'not eligible' };
}

function notEligibleOf(target: string): TargetOutcome {
  return {
    target,
    algorithm: null,
    version: null,
    status: 'not eligible',
    reason: 'not eligible',
    auc: { model: null, rfm: null, bgnbd: null, champion: null },
  };
}

function networkMetadata(fitted: FittedNetwork, targets: readonly Target[], layout: FeatureLayout, cutoffs: Date[], horizonDays: number): Record<string, unknown> {
  return {
    targets: targets.map(targetId),
    logPositiveWeights: Array.from(fitted.logPositiveWeights),
    standardisation: standardisationToJson(fitted.standardisation),
    explanationGroups: layout.explanationGroups.map((group) => group.name),
    layout: { categories: layout.categories, productIds: layout.productIds, specialCategories: layout.specialCategories },
    trainingCutoffs: cutoffs.map(day),
    horizonDays,
    trainingRows: fitted.trainingRows,
    trainingDataHash: fitted.trainingDataHash,
    epochs: fitted.epochs,
  };
}

/** SHA-256 of the matrix and labels a baseline's calibration was fitted on (lineage). */
function matrixHash(labelled: LabelledMatrix): string {
  const x = labelled.matrix.x;
  return createHash('sha256').update(new Uint8Array(x.buffer, x.byteOffset, x.byteLength)).update(labelled.labels).digest('hex');
}

/**
 * The champion's scores on this run's evaluation rows, for a paired comparison: a network
 * champion by its own evaluation network (trained one horizon before its run, so it never saw
 * this window), a baseline champion by this run's candidate of its kind (a baseline is refitted
 * every run). Null when its features differ from this run's: the AUC it was registered with is
 * used instead. A network serves many targets: each one is loaded and run once per run.
 */
async function championScoresOnWindow(
  t: Tensorflow,
  context: AppContext,
  champion: CurrentChampion,
  target: Target,
  choice: Choice,
  evaluated: LabelledMatrix,
  layout: FeatureLayout,
  predictions: Map<number, { targets: string[]; probabilities: Float32Array } | null>,
): Promise<Float32Array | null> {
  if (champion.algorithm === 'bgnbd' || champion.algorithm === 'rfm') {
    return choice.candidates.find((candidate) => candidate.algorithm === champion.algorithm)?.scores ?? null;
  }
  const networkId = champion.evaluationNetworkId;
  if (!networkId) return null;
  if (!predictions.has(networkId)) predictions.set(networkId, await predictWithStoredNetwork(t, context, networkId, evaluated, layout));
  const cached = predictions.get(networkId);
  const output = cached ? cached.targets.indexOf(targetId(target)) : -1;
  if (!cached || output < 0) return null;
  return strided(cached.probabilities, cached.targets.length, output);
}

async function predictWithStoredNetwork(
  t: Tensorflow,
  context: AppContext,
  networkId: number,
  evaluated: LabelledMatrix,
  layout: FeatureLayout,
): Promise<{ targets: string[]; probabilities: Float32Array } | null> {
  const network = await loadNetwork(context.database.db, networkId);
  if (JSON.stringify(network.featureList) !== JSON.stringify(layout.names)) return null;
  const metadata = network.metadata as { targets: string[]; logPositiveWeights: number[]; standardisation: { mean: number[]; scale: number[] } };
  const model = await t.tf.loadLayersModel(network.handler);
  try {
    const inference: InferenceNetwork = {
      model,
      logPositiveWeights: Float32Array.from(metadata.logPositiveWeights),
      standardisation: standardisationFromJson(metadata.standardisation),
    };
    return { targets: metadata.targets, probabilities: await predictMatrix(t, inference, evaluated.matrix) };
  } finally {
    model.dispose();
  }
}

/** A score set id taken now, so that scoring jobs write rows under it before the set exists. */
async function reserveScoreSetId(db: Kysely<Database>): Promise<number> {
  const { rows } = await sql<{ id: number }>`SELECT nextval(pg_get_serial_sequence('score_sets', 'id'))::int AS id`.execute(db);
  return (rows[0] as { id: number }).id;
}
