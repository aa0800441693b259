import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { BinnedCalibration } from '../models/baselines.ts';
import { type PairedAucDifference, pairedAucDifference } from '../models/delong.ts';
import { type BinaryMetrics, labelColumn } from '../models/metrics.ts';
import type { NetworkKind } from '../models/propensity-network.ts';
import { personShare } from '../models/random.ts';
import { standardisationToJson } from '../models/standardisation.ts';
import type { Tensorflow } from '../models/tensorflow.ts';
import type { AppContext } from '../src/context.ts';
import type { Database } from '../src/db/database.ts';
import { type CurrentChampion, currentChampions } from '../src/registry/champions.repository.ts';
import { codeVersion } from '../src/registry/code-version.ts';
import { exportNetwork, saveNetwork } from '../src/registry/model-store.ts';
import { type BuyTillYouDie, type BuyTillYouDieFit, fillBuyTillYouDie, fitBuyTillYouDie } from './buy-till-you-die.ts';
import { type Candidate, type Choice, chooseCandidate, fmt, isNetwork, signed, targetCandidates } from './candidates.ts';
import { type ConsentSnapshot, takeConsentSnapshot } from './consent-snapshot.ts';
import {
  activeRowsOnly,
  type BaselineEvaluation,
  type BaselineKind,
  evaluateBaselines,
  fitBaselineCalibration,
  groupImportance,
  metricsPerTarget,
  selectRows,
} from './evaluation.ts';
import { chooseEvaluationDesign, day, minusDays } from './evaluation-design.ts';
import { type FeatureProfile, featureProfile } from './feature-profile.ts';
import { PERSON_FEATURES } from './feature-spec.ts';
import { computeFeatures, type FeatureLayout, type FeatureMatrix, featureLayout } from './features.ts';
import { championScoresOnWindow, keptChampionEntry, reserveScoreSetId, targetOf } from './kept-champions.ts';
import { computeLabels } from './labels.ts';
import { type Progress, type StageTimer, stageTimer } from './progress.ts';
import {
  DEFAULT_PIPELINE_OPTIONS,
  type EvaluationDesign,
  type PipelineOptions,
  type PipelineReport,
  type PlannedVersion,
  type Scorer,
  type TargetOutcome,
  type TrainingPlan,
} from './run-types.ts';
import { classifyCategories, selectTargets, type Target, type TargetCandidate, targetId } from './targets.ts';
import { type FittedNetwork, fitNetwork, type LabelledMatrix, predictMatrix, type TrainingConfig } from './training.ts';

export type { PlannedVersion, Scorer, TrainingPlan } from './run-types.ts';

/** people sampled at the scoring instant to fit the BG/NBD every scoring shard uses */
const SCORING_FIT_ROWS = 60_000;

/*
 * The training part of a run, as named stages:
 *
 *   snapshot → targets → features → labels → evaluate → decide → production → register
 *
 * snapshot: who may be profiled at the run's instant; targets: the evaluation design (out-of-time
 * or split by person) and the targets with enough buyers; features and labels: one matrix per
 * training cutoff; evaluate: the evaluation networks and both baselines judged on the same rows,
 * and each target's best candidate; decide: each winner against the current champion (paired
 * DeLong); production: the winners' networks trained on the latest windows, the winning baselines
 * calibrated on them; register: networks saved, versions planned, and every champion kept from an
 * earlier run planned to score today's people again. Nothing written is visible: the snapshot and
 * networks belong to the run, and versions are only planned (see publish-part.ts). A backtest also
 * judges the winners on what really happened after `asOf`.
 */

/** What every stage reads: the run, its settings and its instants. */
interface RunScope {
  context: AppContext;
  db: Kysely<Database>;
  t: Tensorflow;
  runId: number;
  options: PipelineOptions;
  training: TrainingConfig;
  progress: Progress;
  timer: StageTimer;
  asOf: Date;
  live: boolean;
  horizon: number;
  /** T−H: the evaluation window starts here, and the production networks' latest window */
  evaluationCutoff: Date;
  /** T−2H: the evaluation networks' latest window, out of time */
  calibrationCutoff: Date;
}

/** What the stages decided so far; the plan is made of it. */
interface RunRecord {
  snapshot: ConsentSnapshot;
  design: EvaluationDesign;
  outcomes: Map<string, TargetOutcome>;
  planned: PlannedVersion[];
  rescored: NonNullable<PipelineReport['rescored']>;
  evaluationOrigins: Date[];
  productionOrigins: Date[];
  layout: FeatureLayout | null;
  trainingProfile: FeatureProfile | null;
  scoringFit: BuyTillYouDieFit | null;
}

/** One matrix per training cutoff, with the BG/NBD fitted on what was known then. */
type Matrices = Map<number, { labelled: LabelledMatrix; bgnbd: BuyTillYouDie }>;

interface NetworkPair {
  evaluation: FittedNetwork;
  production?: FittedNetwork;
  evaluationProbabilities: Float32Array;
  evaluationMetrics: Array<BinaryMetrics | null>;
}

/** The evaluate stage's result: the rows every candidate is judged on, and each target's choice. */
interface Evaluation {
  evaluated: { labelled: LabelledMatrix; bgnbd: BuyTillYouDie };
  networks: Map<NetworkKind, NetworkPair>;
  baselines: BaselineEvaluation[];
  choices: Choice[];
}

/** The decide stage's result for one target. */
interface Decision {
  status: 'champion' | 'candidate' | 'rejected';
  reason: string;
  champion: CurrentChampion | null;
  /** whether the winner was compared with the champion on the same rows (pipeline runs, winners above chance) */
  compared: boolean;
  championAuc: number | null;
  difference: PairedAucDifference | null;
  comparison: { version: number; algorithm: string; auc: number | null; difference: PairedAucDifference | null } | null;
}

/** The production stage's result. */
interface Production {
  /** the network kinds some target's winner is */
  kinds: Set<NetworkKind>;
  /** target index → the winning baseline's calibration on the production window */
  calibrations: Map<number, BinnedCalibration>;
  importance: Map<NetworkKind, Array<{ name: string; aucDrop: number[] }>>;
}

export async function trainRun(
  context: AppContext,
  t: Tensorflow,
  runId: number,
  options: PipelineOptions,
  progress: Progress,
  startedAt: Date,
): Promise<TrainingPlan> {
  const asOf = options.asOf ?? startedAt;
  const scope: RunScope = {
    context,
    db: context.database.db,
    t,
    runId,
    options,
    training: { ...DEFAULT_PIPELINE_OPTIONS.training, ...options.training },
    progress,
    timer: stageTimer(progress),
    asOf,
    live: options.asOf === null,
    horizon: options.horizonDays,
    evaluationCutoff: minusDays(asOf, options.horizonDays),
    calibrationCutoff: minusDays(asOf, 2 * options.horizonDays),
  };

  const snapshot = await snapshotStage(scope);
  const { design, targets, candidates, categories, outcomes } = await targetsStage(scope);
  const champions = options.kind === 'pipeline' ? await currentChampions(scope.db) : [];
  const record: RunRecord = {
    snapshot,
    design,
    outcomes,
    planned: [],
    rescored: [],
    evaluationOrigins: [],
    productionOrigins: [],
    layout: null,
    trainingProfile: null,
    scoringFit: null,
  };

  if (targets.length === 0) {
    // nothing to train, but every champion still scores today's people
    await planKeptChampions(scope, record, champions, new Set(), null);
    const first = record.planned[0]?.scorer;
    if (first) {
      record.layout = first.layout;
      record.scoringFit = await fitForScoring(scope, record, first.layout);
    }
    return planOf(scope, record);
  }

  const origins = Math.max(1, Math.min(options.maxOrigins, Math.ceil(scope.training.maxTrainingRows / Math.max(1, snapshot.size))));
  record.productionOrigins = Array.from({ length: origins }, (_, k) => minusDays(scope.evaluationCutoff, k * options.originStepDays));
  record.evaluationOrigins =
    design.kind === 'out-of-time'
      ? Array.from({ length: origins }, (_, k) => minusDays(scope.calibrationCutoff, k * options.originStepDays))
      : record.productionOrigins;
  const layout = featureLayout(targets, categories.allowed, categories.special);
  record.layout = layout;

  const matrices = await featuresStage(scope, record, layout);
  await labelsStage(scope, matrices, targets);
  const evaluation = await evaluateStage(scope, record, matrices, targets);
  const decisions = await decideStage(scope, evaluation, targets, champions, layout);
  const production = await productionStage(scope, record, evaluation, matrices, targets);
  await registerStage(scope, record, { evaluation, decisions, production, matrices, targets, candidates, layout });

  if (options.kind === 'backtest') {
    await backtestStage(scope, record, evaluation, production, matrices, targets);
  } else {
    const replaced = new Set(
      decisions.flatMap((decision) => (decision.status === 'champion' && decision.champion ? [decision.champion.modelId] : [])),
    );
    await planKeptChampions(scope, record, champions, replaced, layout);
    if (record.planned.some((entry) => entry.scoreSetId !== null)) record.scoringFit = await fitForScoring(scope, record, layout);
  }
  matrices.clear();
  return planOf(scope, record);
}

/** snapshot: who may be profiled at the run's instant (the live state, or the ledger as of `asOf`). */
async function snapshotStage(scope: RunScope): Promise<ConsentSnapshot> {
  return scope.timer.timed('consent snapshot', async () => {
    const value = await takeConsentSnapshot(scope.db, scope.runId, scope.asOf, scope.live);
    return { value, rows: value.size };
  });
}

/**
 * targets: the evaluation design (how much history T−2H leaves), then "any purchase", each
 * category and each product with enough buyers and non-buyers in the design's windows.
 */
async function targetsStage(scope: RunScope) {
  const { db, options, runId, horizon, evaluationCutoff, calibrationCutoff } = scope;
  // special categories resolved once into exact names: every SQL stage excludes the same ones
  const categories = await classifyCategories(db, options.specialCategories);
  const design = await scope.timer.timed('evaluation design', async () => ({
    value: await chooseEvaluationDesign(db, runId, evaluationCutoff, calibrationCutoff, options),
    rows: 1,
  }));
  const windows =
    design.kind === 'out-of-time'
      ? [
          { cutoff: evaluationCutoff, horizonDays: horizon },
          { cutoff: calibrationCutoff, horizonDays: horizon },
        ]
      : [{ cutoff: evaluationCutoff, horizonDays: horizon }];
  const candidates = await scope.timer.timed('targets', async () => {
    const value = await selectTargets(db, runId, windows, {
      minPositives: options.minPositives,
      minNegatives: options.minNegatives,
      products: options.products,
      specialCategories: categories.special,
    });
    return { value, rows: value.length };
  });
  const outcomes = new Map<string, TargetOutcome>();
  // a catalogue may hold thousands of products too rarely bought to model: only those asked
  // for, or already in the registry (their champion stays, and a reviewer should see why), are reported
  const modelled = new Set(
    (await db.selectFrom('models').select('target_key').where('target_kind', '=', 'product').execute()).map((row) => row.target_key),
  );
  for (const candidate of candidates.filter((c) => !c.eligible && (c.kind !== 'product' || options.products || modelled.has(c.key)))) {
    outcomes.set(targetId(candidate), notEligible(candidate));
  }
  const targets: Target[] = candidates.filter((candidate) => candidate.eligible);
  return { design, targets, candidates, categories, outcomes };
}

/** features: every training cutoff's matrix once, with its BG/NBD columns fitted on what was known then. */
async function featuresStage(scope: RunScope, record: RunRecord, layout: FeatureLayout): Promise<Matrices> {
  const { db, runId, horizon, training, progress } = scope;
  const matrices: Matrices = new Map();
  const cutoffs = [...new Set([...record.evaluationOrigins, ...record.productionOrigins].map((date) => date.getTime()))].sort(
    (a, b) => b - a,
  );
  // training and evaluation read a sample of people beyond the training cap; only scoring needs everyone
  const samplePermille = Math.min(1000, Math.ceil((1000 * training.maxTrainingRows) / Math.max(1, record.snapshot.size)));
  await scope.timer.timed('features', async () => {
    let rows = 0;
    for (const [index, cutoff] of cutoffs.entries()) {
      const matrix = await computeFeatures(
        db,
        { runId, cutoff: new Date(cutoff), horizonDays: horizon, layout, samplePermille },
        (done, total) => progress.step(`cutoff ${index + 1}/${cutoffs.length + 1}, people`, done, total),
      );
      const bgnbd = fillBuyTillYouDie(matrix, training.seed);
      matrices.set(cutoff, { labelled: { matrix, labels: new Uint8Array(0) }, bgnbd });
      rows += matrix.rows;
    }
    return { value: undefined, rows };
  });
  return matrices;
}

/** labels: for every matrix, who bought each target in the horizon after its cutoff. */
async function labelsStage(scope: RunScope, matrices: Matrices, targets: readonly Target[]): Promise<void> {
  await scope.timer.timed('labels', async () => {
    let rows = 0;
    for (const entry of matrices.values()) {
      entry.labelled.labels = await computeLabels(scope.db, entry.labelled.matrix, targets);
      rows += entry.labelled.matrix.rows;
    }
    return { value: undefined, rows };
  });
}

function at(matrices: Matrices, date: Date): { labelled: LabelledMatrix; bgnbd: BuyTillYouDie } {
  return matrices.get(date.getTime()) as { labelled: LabelledMatrix; bgnbd: BuyTillYouDie };
}

/** Whether the person had a purchase before the matrix's cutoff. */
function hasHistory(row: number, matrix: FeatureMatrix): boolean {
  return (matrix.x[row * matrix.columns + PERSON_FEATURES.indexOf('has_history')] as number) > 0;
}

/**
 * evaluate: the rows every candidate is judged on (people with a history at T−H: all of them out
 * of time, the held-out ones in a split by person), the evaluation networks trained on what they
 * may see, both baselines calibrated on an earlier window or the other people, and each target's
 * best candidate.
 */
async function evaluateStage(scope: RunScope, record: RunRecord, matrices: Matrices, targets: readonly Target[]): Promise<Evaluation> {
  const { t, training, progress, options } = scope;
  const outOfTime = record.design.kind === 'out-of-time';
  // person split: the held-out people are judged, the others train (and calibrate the baselines)
  const heldOut = (contactId: number) => personShare(contactId, training.seed + 2) < (record.design.holdoutShare ?? 0);
  const atEvaluation = at(matrices, scope.evaluationCutoff);
  const evaluated = selectRows(
    atEvaluation.labelled,
    atEvaluation.bgnbd,
    (row, matrix) => hasHistory(row, matrix) && (outOfTime || heldOut(matrix.contactIds[row] as number)),
  );
  const calibration = outOfTime
    ? at(matrices, scope.calibrationCutoff)
    : selectRows(atEvaluation.labelled, atEvaluation.bgnbd, (row, matrix) => !heldOut(matrix.contactIds[row] as number));
  const stack = record.evaluationOrigins.map((date) =>
    outOfTime
      ? at(matrices, date).labelled
      : selectRows(at(matrices, date).labelled, at(matrices, date).bgnbd, (row, matrix) => !heldOut(matrix.contactIds[row] as number))
          .labelled,
  );
  // an MLP needs more rows than a small base has (below them it never beat the logistic network)
  const stackRows = Math.min(
    training.maxTrainingRows,
    stack.reduce((sum, part) => sum + part.matrix.rows, 0),
  );
  const kinds = training.algorithms.filter((kind) => kind !== 'mlp' || stackRows >= training.minRowsForMlp);
  const skipped =
    kinds.length < training.algorithms.length ? `; mlp not trained on ${stackRows} rows, below ${training.minRowsForMlp}` : '';

  const networks = new Map<NetworkKind, NetworkPair>();
  await scope.timer.timed('train (evaluation)', async () => {
    let rows = 0;
    for (const kind of kinds) {
      const network = await fitNetwork(t, kind, stack, targets.length, training, (epoch) =>
        progress.step(`${kind} epoch`, epoch + 1, training.maxEpochs),
      );
      const evaluationProbabilities = await predictMatrix(t, network, evaluated.labelled.matrix);
      networks.set(kind, {
        evaluation: network,
        evaluationProbabilities,
        evaluationMetrics: metricsPerTarget(evaluated.labelled.labels, evaluationProbabilities, targets.length, { curves: true }),
      });
      rows += network.trainingRows;
    }
    return { value: undefined, rows };
  });
  const baselines = await scope.timer.timed('evaluate baselines', async () => {
    const value = evaluateBaselines(calibration.labelled, calibration.bgnbd, evaluated.labelled, evaluated.bgnbd, targets);
    return { value, rows: evaluated.labelled.matrix.rows * targets.length };
  });
  // per target: every candidate on the same rows, the best AUC wins
  const choices = await scope.timer.timed('choose', async () => {
    const value = targets.map((target, index) => {
      const labels = labelColumn(evaluated.labelled.labels, targets.length, index);
      const list: Candidate[] = targetCandidates(index, targets.length, labels, networks, baselines[index] as BaselineEvaluation);
      return chooseCandidate(target, labels, list, options.minimumAuc, skipped);
    });
    return { value, rows: evaluated.labelled.matrix.rows * targets.length };
  });
  return { evaluated, networks, baselines, choices };
}

/**
 * decide: each target's winner against its current champion on the same rows. The champion stays
 * only when it is better beyond the tolerance and the paired (DeLong) interval says so; a winner
 * below the minimum AUC is rejected; a backtest never promotes.
 */
async function decideStage(
  scope: RunScope,
  evaluation: Evaluation,
  targets: readonly Target[],
  champions: readonly CurrentChampion[],
  layout: FeatureLayout,
): Promise<Decision[]> {
  const { options } = scope;
  return scope.timer.timed('decide', async () => {
    const championPredictions = new Map<number, { targets: string[]; probabilities: Float32Array } | null>();
    const value: Decision[] = [];
    for (const [index, target] of targets.entries()) {
      const choice = evaluation.choices[index] as Choice;
      const winner = choice.winner;
      const champion = champions.find((entry) => entry.target.kind === target.kind && entry.target.key === target.key) ?? null;
      let status: Decision['status'] = !winner || choice.atChance ? 'rejected' : 'candidate';
      let reason = choice.reason;
      let comparison: Decision['comparison'] = null;
      let compared = false;
      let championAuc: number | null = null;
      let difference: PairedAucDifference | null = null;
      if (winner && status === 'candidate' && options.kind === 'pipeline') {
        compared = true;
        const labels = labelColumn(evaluation.evaluated.labelled.labels, targets.length, index);
        const championScores = champion
          ? await championScoresOnWindow(
              scope.t,
              scope.context,
              champion,
              target,
              choice,
              evaluation.evaluated.labelled,
              layout,
              championPredictions,
            )
          : null;
        const storedAuc = champion ? ((champion.metrics.evaluation as { rocAuc?: number } | null)?.rocAuc ?? null) : null;
        difference = championScores ? pairedAucDifference(labels, winner.scores, championScores) : null;
        championAuc = difference ? (winner.interval?.auc ?? 0) - difference.difference : storedAuc;
        if (champion) comparison = { version: champion.version, algorithm: champion.algorithm, auc: championAuc, difference };
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
      } else if (winner && status === 'candidate') {
        reason = `${reason}; backtest run, never promoted`;
      }
      value.push({ status, reason, champion, compared, championAuc, difference, comparison });
    }
    return { value, rows: targets.length };
  });
}

/**
 * production: the winning networks trained again on the latest windows (up to T−H), on everyone,
 * as many epochs as early stopping found; a winning baseline calibrated on the window from T−H;
 * the winners' permutation importance on the evaluation rows.
 */
async function productionStage(
  scope: RunScope,
  record: RunRecord,
  evaluation: Evaluation,
  matrices: Matrices,
  targets: readonly Target[],
): Promise<Production> {
  const { t, training, progress } = scope;
  const kinds = new Set(
    evaluation.choices.flatMap((choice) => (choice.winner && isNetwork(choice.winner.algorithm) ? [choice.winner.algorithm] : [])),
  );
  await scope.timer.timed('train (production)', async () => {
    let rows = 0;
    for (const kind of kinds) {
      const pair = evaluation.networks.get(kind) as NetworkPair;
      const stoppedEarly = pair.evaluation.validationLoss.length > 0;
      pair.production = await fitNetwork(
        t,
        kind,
        record.productionOrigins.map((date) => at(matrices, date).labelled),
        targets.length,
        training,
        (epoch) => progress.step(`${kind} epoch`, epoch + 1, training.maxEpochs),
        { epochs: stoppedEarly ? pair.evaluation.epochs : undefined },
      );
      rows += pair.production.trainingRows;
    }
    return { value: undefined, rows };
  });
  const atEvaluation = at(matrices, scope.evaluationCutoff);
  const calibrations = new Map<number, BinnedCalibration>();
  for (const [index, choice] of evaluation.choices.entries()) {
    const algorithm = choice.winner?.algorithm;
    if (algorithm === 'bgnbd' || algorithm === 'rfm') {
      calibrations.set(
        index,
        fitBaselineCalibration(algorithm, atEvaluation.labelled, atEvaluation.bgnbd, targets[index] as Target, index, targets.length),
      );
    }
  }
  for (const date of record.evaluationOrigins) if (date.getTime() !== scope.evaluationCutoff.getTime()) matrices.delete(date.getTime());
  const importance = await scope.timer.timed('importance', async () => {
    const value = new Map<NetworkKind, Array<{ name: string; aucDrop: number[] }>>();
    for (const kind of kinds) {
      value.set(
        kind,
        await groupImportance(t, (evaluation.networks.get(kind) as NetworkPair).evaluation, evaluation.evaluated.labelled, training.seed),
      );
    }
    return { value, rows: 0 };
  });
  return { kinds, calibrations, importance };
}

/**
 * register: the winners' networks saved with the run (with the training population's feature
 * profile, the reference for drift), and one planned version per target with its figures,
 * decision and lineage; a champion gets a score set id now.
 */
async function registerStage(
  scope: RunScope,
  record: RunRecord,
  input: {
    evaluation: Evaluation;
    decisions: Decision[];
    production: Production;
    matrices: Matrices;
    targets: readonly Target[];
    candidates: readonly TargetCandidate[];
    layout: FeatureLayout;
  },
): Promise<void> {
  const { db, runId, horizon, options, training } = scope;
  const { evaluation, decisions, production, targets, layout } = input;
  const { evaluated } = evaluation;
  const candidateOf = new Map(input.candidates.map((candidate) => [targetId(candidate), candidate]));
  const atEvaluation = at(input.matrices, scope.evaluationCutoff);
  await scope.timer.timed('register', async () => {
    const savedNetworks = new Map<string, number>();
    const profile = await featureProfile(evaluated.labelled.matrix, training.seed);
    record.trainingProfile = profile;
    for (const kind of production.kinds) {
      const pair = evaluation.networks.get(kind) as NetworkPair;
      for (const [role, fitted] of [
        ['evaluation', pair.evaluation],
        ['production', pair.production],
      ] as const) {
        if (!fitted) continue;
        const cutoffs = role === 'evaluation' ? record.evaluationOrigins : record.productionOrigins;
        await fitted.model.save(
          saveNetwork(
            db,
            {
              runId,
              role,
              algorithm: kind,
              featureList: layout.names,
              metadata: { ...networkMetadata(fitted, targets, layout, cutoffs, horizon), featureProfile: profile },
            },
            (id) => savedNetworks.set(`${kind}:${role}`, id),
          ),
        );
      }
    }
    if (options.modelsDir) for (const id of savedNetworks.values()) await exportNetwork(db, id, options.modelsDir);

    const code = codeVersion();
    for (const [index, target] of targets.entries()) {
      const choice = evaluation.choices[index] as Choice;
      const decision = decisions[index] as Decision;
      const baseline = evaluation.baselines[index] as BaselineEvaluation;
      const winner = choice.winner;
      const outcome: TargetOutcome = {
        target: targetId(target),
        algorithm: winner?.algorithm ?? null,
        version: null,
        status: winner ? decision.status : 'rejected',
        reason: decision.reason,
        auc: {
          model: winner?.interval?.auc ?? null,
          rfm: baseline.rfm?.rocAuc ?? null,
          bgnbd: baseline.bgnbd?.rocAuc ?? null,
          champion: decision.championAuc,
        },
        candidates: Object.fromEntries(choice.candidates.map((candidate) => [candidate.algorithm, candidate.interval])),
        margin: choice.margin,
      };
      if (decision.compared) outcome.championDifference = decision.difference;
      record.outcomes.set(outcome.target, outcome);
      if (!winner) continue;
      const network = isNetwork(winner.algorithm) ? (evaluation.networks.get(winner.algorithm) as NetworkPair) : null;
      const productionNetworkId = network ? (savedNetworks.get(`${winner.algorithm}:production`) ?? null) : null;
      const scorer: Scorer | null =
        decision.status !== 'champion'
          ? null
          : network
            ? { kind: 'network', networkId: productionNetworkId as number, outputIndex: index, layout }
            : {
                kind: winner.algorithm as BaselineKind,
                target,
                calibration: production.calibrations.get(index) as BinnedCalibration,
                layout,
              };
      const candidate = candidateOf.get(targetId(target));
      record.planned.push({
        target,
        outputIndex: index,
        status: decision.status,
        algorithm: winner.algorithm,
        scoreSetId: decision.status === 'champion' ? await reserveScoreSetId(db) : null,
        scorer,
        version: {
          algorithm: winner.algorithm,
          runId,
          trainedAt: scope.context.clock.now().toISOString(),
          consentSnapshotAt: record.snapshot.at.toISOString(),
          populationSize: record.snapshot.size,
          trainingCutoff: scope.evaluationCutoff.toISOString(),
          horizonDays: horizon,
          featureList: layout.names,
          codeVersion: code,
          trainingDataHash: network
            ? (network.production ?? network.evaluation).trainingDataHash
            : atEvaluation.labelled.matrix.rows > 0
              ? matrixHash(atEvaluation.labelled)
              : '',
          metrics: {
            evaluationDesign: record.design,
            evaluationWindow: { cutoff: day(scope.evaluationCutoff), horizonDays: horizon, rows: evaluated.labelled.matrix.rows },
            // buyers among everyone in the snapshot (not the training sample) in the window from the
            // evaluation cutoff: the most recent window the production version is trained on
            trainingWindow: {
              cutoff: day(scope.evaluationCutoff),
              horizonDays: horizon,
              buyers: candidate?.positives[0] ?? null,
              population: candidate?.population[0] ?? null,
            },
            evaluationTrainingCutoffs: record.evaluationOrigins.map(day),
            productionTrainingCutoffs: record.productionOrigins.map(day),
            trainingRows: network?.production?.trainingRows ?? null,
            epochs: network ? { found: network.evaluation.epochs, validationLoss: network.evaluation.validationLoss } : null,
            evaluation: winner.metrics,
            aucInterval: winner.interval,
            candidates: Object.fromEntries(choice.candidates.map((entry) => [entry.algorithm, entry.interval])),
            margin: choice.margin,
            importance: network
              ? production.importance
                  .get(winner.algorithm as NetworkKind)
                  ?.map((group) => ({ group: group.name, aucDrop: group.aucDrop[index] ?? null }))
                  .sort((a, b) => (b.aucDrop ?? 0) - (a.aucDrop ?? 0))
              : null,
            champion: decision.comparison,
            alternatives: Object.fromEntries(choice.candidates.map((entry) => [entry.algorithm, entry.interval?.auc ?? null])),
            explanationGroups: layout.explanationGroups.map((group) => group.name),
            ...(scorer && scorer.kind !== 'network' ? { scorer: { kind: scorer.kind, calibration: scorer.calibration } } : {}),
            layout: { categories: layout.categories, productIds: layout.productIds, specialCategories: layout.specialCategories },
          },
          baselineMetrics: { rfm: baseline.rfm, bgnbd: baseline.bgnbd, bgnbdParams: evaluated.bgnbd.params },
          decisionReason: decision.reason,
          networkId: productionNetworkId,
          evaluationNetworkId: network ? (savedNetworks.get(`${winner.algorithm}:evaluation`) ?? null) : null,
        },
      });
    }
    return { value: undefined, rows: targets.length };
  });
}

/** Every champion this run does not replace is planned to score today's people again. */
async function planKeptChampions(
  scope: RunScope,
  record: RunRecord,
  champions: readonly CurrentChampion[],
  replaced: ReadonlySet<number>,
  runLayout: FeatureLayout | null,
): Promise<void> {
  for (const champion of champions) {
    if (replaced.has(champion.modelId)) continue;
    const id = targetId(targetOf(champion));
    const entry = await keptChampionEntry(scope.db, champion, runLayout, {
      runId: scope.runId,
      trainedAt: scope.context.clock.now().toISOString(),
      consentSnapshotAt: record.snapshot.at.toISOString(),
      populationSize: record.snapshot.size,
      trainingCutoff: scope.evaluationCutoff.toISOString(),
      horizonDays: scope.horizon,
    });
    if (!entry) {
      const outcome = record.outcomes.get(id) ?? notEligibleOf(id);
      record.outcomes.set(id, {
        ...outcome,
        reason: `${record.outcomes.get(id)?.reason ?? ''}; champion v${champion.version} could not be scored again (its scorer is not stored)`,
      });
      continue;
    }
    record.planned.push(entry);
    record.rescored.push({ target: id, version: champion.version, algorithm: champion.algorithm, scored: null });
  }
}

/** The BG/NBD columns of the scoring matrix come from one fit, on a sample of today's people, shared by every scoring shard. */
async function fitForScoring(scope: RunScope, record: RunRecord, layout: FeatureLayout): Promise<BuyTillYouDieFit> {
  return scope.timer.timed('BG/NBD (scoring)', async () => {
    const sample = await computeFeatures(scope.db, {
      runId: scope.runId,
      cutoff: scope.asOf,
      horizonDays: scope.horizon,
      layout,
      liveConsentAt: scope.context.clock.now(),
      samplePermille: Math.min(1000, Math.ceil((1000 * SCORING_FIT_ROWS) / Math.max(1, record.snapshot.size))),
    });
    return { value: fitBuyTillYouDie(sample, scope.training.seed), rows: sample.rows };
  });
}

/** A backtest judges each target's winner, and both baselines, on what really happened after `asOf`. */
async function backtestStage(
  scope: RunScope,
  record: RunRecord,
  evaluation: Evaluation,
  production: Production,
  matrices: Matrices,
  targets: readonly Target[],
): Promise<void> {
  const { db, t, runId, horizon, training } = scope;
  const truth = await scope.timer.timed('backtest (truth)', async () => {
    const matrix = await computeFeatures(db, { runId, cutoff: scope.asOf, horizonDays: horizon, layout: record.layout as FeatureLayout });
    const bgnbd = fillBuyTillYouDie(matrix, training.seed);
    const labels = await computeLabels(db, matrix, targets);
    const value = activeRowsOnly({ matrix, labels }, bgnbd);
    return { value, rows: value.labelled.matrix.rows };
  });
  await scope.timer.timed('backtest (metrics)', async () => {
    // the production baselines are calibrated on the production window, as in a pipeline run
    const atEvaluation = at(matrices, scope.evaluationCutoff);
    const truthBaselines = evaluateBaselines(atEvaluation.labelled, atEvaluation.bgnbd, truth.labelled, truth.bgnbd, targets);
    const predictions = new Map<NetworkKind, Array<BinaryMetrics | null>>();
    for (const kind of production.kinds) {
      const network = (evaluation.networks.get(kind) as NetworkPair).production as FittedNetwork;
      const probabilities = await predictMatrix(t, network, truth.labelled.matrix);
      predictions.set(kind, metricsPerTarget(truth.labelled.labels, probabilities, targets.length));
    }
    for (const [index, target] of targets.entries()) {
      const outcome = record.outcomes.get(targetId(target));
      const winner = (evaluation.choices[index] as Choice).winner;
      if (!outcome) continue;
      const rfm = truthBaselines[index]?.rfm ?? null;
      const bgnbd = truthBaselines[index]?.bgnbd ?? null;
      outcome.backtest = {
        model: !winner
          ? null
          : isNetwork(winner.algorithm)
            ? (predictions.get(winner.algorithm)?.[index] ?? null)
            : winner.algorithm === 'bgnbd'
              ? bgnbd
              : rfm,
        rfm,
        bgnbd,
      };
    }
    return { value: undefined, rows: truth.labelled.matrix.rows * targets.length };
  });
}

function planOf(scope: RunScope, record: RunRecord): TrainingPlan {
  const { options, asOf, horizon } = scope;
  return {
    runId: scope.runId,
    kind: options.kind,
    asOf: asOf.toISOString(),
    horizonDays: horizon,
    seed: scope.training.seed,
    layout: record.layout,
    versions: record.planned,
    scoringFit: record.scoringFit,
    trainingProfile: record.trainingProfile,
    report: {
      runId: scope.runId,
      kind: options.kind,
      asOf: asOf.toISOString(),
      horizonDays: horizon,
      backend: scope.t.backend,
      population: record.snapshot.size,
      cutoffs: {
        evaluationTraining: record.evaluationOrigins.map(day),
        evaluation: day(scope.evaluationCutoff),
        productionTraining: record.productionOrigins.map(day),
        scoring: day(asOf),
      },
      evaluationDesign: record.design,
      rescored: record.rescored,
      targets: [...record.outcomes.values()],
      stages: scope.timer.stages,
      peakRssMb: Math.round(scope.timer.peakRss() / 2 ** 20),
    },
  };
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

function networkMetadata(
  fitted: FittedNetwork,
  targets: readonly Target[],
  layout: FeatureLayout,
  cutoffs: Date[],
  horizonDays: number,
): Record<string, unknown> {
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
  return createHash('sha256')
    .update(new Uint8Array(x.buffer, x.byteOffset, x.byteLength))
    .update(labelled.labels)
    .digest('hex');
}
