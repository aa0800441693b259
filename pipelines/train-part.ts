import { type BinaryMetrics, labelColumn, rocAuc, strided } from '../models/metrics.ts';
import type { NetworkKind } from '../models/propensity-network.ts';
import { standardisationFromJson, standardisationToJson } from '../models/standardisation.ts';
import type { Tensorflow } from '../models/tensorflow.ts';
import type { AppContext } from '../src/context.ts';
import type { Database } from '../src/db/database.ts';
import { codeVersion } from '../src/registry/code-version.ts';
import { exportNetwork, loadNetwork, saveNetwork } from '../src/registry/model-store.ts';
import { type Champion, championOf, modelIdOf, type NewVersion } from '../src/registry/registry.repository.ts';
import { type BuyTillYouDie, type BuyTillYouDieFit, fillBuyTillYouDie, fitBuyTillYouDie } from './buy-till-you-die.ts';
import { takeConsentSnapshot } from './consent-snapshot.ts';
import { type FeatureProfile, featureProfile } from './feature-profile.ts';
import { computeFeatures, type FeatureLayout, featureLayout } from './features.ts';
import { activeRowsOnly, type BaselineEvaluation, evaluateBaselines, groupImportance, metricsPerTarget } from './evaluation.ts';
import { computeLabels } from './labels.ts';
import { type Progress, stageTimer } from './progress.ts';
import type { PipelineOptions, PipelineReport, TargetOutcome } from './run-pipeline.ts';
import { classifyCategories, selectTargets, type Target, type TargetCandidate, targetId } from './targets.ts';
import { type FittedNetwork, fitNetwork, type InferenceNetwork, type LabelledMatrix, predictMatrix } from './training.ts';
import { type Kysely, sql } from 'kysely';

const DAY_MS = 86_400_000;
/** people sampled at the scoring instant to fit the BG/NBD every scoring shard uses */
const SCORING_FIT_ROWS = 60_000;

/** A model version decided by training, written (and promoted) only when the run publishes. */
export interface PlannedVersion {
  target: Target;
  outputIndex: number;
  status: 'champion' | 'candidate' | 'rejected';
  networkKind: NetworkKind;
  /** reserved for a champion of a pipeline run: its scores carry this id before the set exists */
  scoreSetId: number | null;
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

function day(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function minusDays(date: Date, days: number): Date {
  return new Date(date.getTime() - days * DAY_MS);
}

/**
 * The training part of a run, stage by stage: consent snapshot → targets → features → labels →
 * train (evaluation networks one horizon back) → evaluate against the baselines → train the
 * production networks → register the networks → decide each target's version. Nothing it
 * writes is visible: the snapshot and networks belong to the run, and versions are only
 * planned (see publish-part.ts). A backtest also judges the production networks on what
 * really happened after `asOf`.
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
    const candidates = await timed('targets', async () => {
      const value = await selectTargets(db, run, [{ cutoff: evaluationCutoff, horizonDays: horizon }, { cutoff: calibrationCutoff, horizonDays: horizon }], {
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
      seed: options.training.seed,
      layout: planLayout,
      versions: planned,
      scoringFit,
      trainingProfile,
      report: report(),
    });
    let evaluationOrigins: Date[] = [];
    let productionOrigins: Date[] = [];
    if (targets.length === 0) return plan();

    const origins = Math.max(1, Math.min(options.maxOrigins, Math.ceil(options.training.maxTrainingRows / Math.max(1, snapshot.size))));
    evaluationOrigins = Array.from({ length: origins }, (_, k) => minusDays(calibrationCutoff, k * options.originStepDays));
    productionOrigins = Array.from({ length: origins }, (_, k) => minusDays(evaluationCutoff, k * options.originStepDays));

    const layout = featureLayout(targets, categories.allowed, categories.special);
    planLayout = layout;

    // every cutoff's matrix once; BG/NBD is fitted at each cutoff on what was known then
    const matrices = new Map<number, { labelled: LabelledMatrix; bgnbd: BuyTillYouDie }>();
    const trainingCutoffs = [...new Set([...evaluationOrigins, ...productionOrigins].map((date) => date.getTime()))].sort((a, b) => b - a);
    // training and evaluation read a sample of people beyond the training cap; only scoring needs everyone
    const samplePermille = Math.min(1000, Math.ceil((1000 * options.training.maxTrainingRows) / Math.max(1, snapshot.size)));
    await timed('features', async () => {
      let rows = 0;
      for (const [index, cutoff] of trainingCutoffs.entries()) {
        const matrix = await computeFeatures(db, { runId: run, cutoff: new Date(cutoff), horizonDays: horizon, layout, samplePermille }, (done, total) =>
          progress.step(`cutoff ${index + 1}/${trainingCutoffs.length + 1}, people`, done, total),
        );
        const bgnbd = fillBuyTillYouDie(matrix, options.training.seed);
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
    const evaluationStack = evaluationOrigins.map((date) => at(date).labelled);
    const evaluated = at(evaluationCutoff);
    const calibration = at(calibrationCutoff);

    const networks = new Map<NetworkKind, NetworkPair>();
    await timed('train (evaluation)', async () => {
      let rows = 0;
      for (const kind of options.training.algorithms) {
        const evaluation = await fitNetwork(t, kind, evaluationStack, targets.length, options.training, (epoch) =>
          progress.step(`${kind} epoch`, epoch + 1, options.training.maxEpochs),
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

    // per target: the best network on the evaluation window, kept only if it beats both baselines
    const chosen = targets.map((target, index) => chooseNetwork(target, index, networks, baselines[index] as BaselineEvaluation, options.minimumAuc));
    const neededKinds = new Set(chosen.flatMap((choice) => (choice.kind && choice.beatsBaselines ? [choice.kind] : [])));
    await timed('train (production)', async () => {
      let rows = 0;
      for (const kind of neededKinds) {
        const pair = networks.get(kind) as NetworkPair;
        pair.production = await fitNetwork(t, kind, productionOrigins.map((date) => at(date).labelled), targets.length, options.training, (epoch) =>
          progress.step(`${kind} epoch`, epoch + 1, options.training.maxEpochs),
        );
        rows += pair.production.trainingRows;
      }
      return { value: undefined, rows };
    });
    for (const date of evaluationOrigins) if (date.getTime() !== evaluationCutoff.getTime()) matrices.delete(date.getTime());

    const importance = await timed('importance', async () => {
      const value = new Map<NetworkKind, Array<{ name: string; aucDrop: number[] }>>();
      for (const kind of neededKinds) {
        value.set(kind, await groupImportance(t, (networks.get(kind) as NetworkPair).evaluation, evaluated.labelled, options.training.seed));
      }
      return { value, rows: 0 };
    });

    // the population at the last training cutoff, for drift checks by later runs and reviewers
    const savedNetworks = await timed('register', async () => {
      const ids = new Map<string, number>();
      const profile = await featureProfile(evaluated.labelled.matrix, options.training.seed);
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

    await timed('decide', async () => {
      const code = codeVersion();
      const championPredictions = new Map<number, { targets: string[]; probabilities: Float32Array } | null>();
      for (const [index, target] of targets.entries()) {
        const choice = chosen[index] as Choice;
        const baseline = baselines[index] as BaselineEvaluation;
        const outcome: TargetOutcome = {
          target: targetId(target),
          algorithm: choice.kind,
          version: null,
          status: 'rejected',
          reason: choice.reason,
          auc: { model: choice.auc, rfm: baseline.rfm?.rocAuc ?? null, bgnbd: baseline.bgnbd?.rocAuc ?? null, champion: null },
        };
        outcomes.set(outcome.target, outcome);
        if (!choice.kind) continue;
        const pair = networks.get(choice.kind) as NetworkPair;
        let status: 'champion' | 'candidate' | 'rejected' = choice.beatsBaselines ? 'candidate' : 'rejected';
        let reason = choice.reason;
        const modelId = await modelIdOf(db, target);
        const champion = modelId === null ? null : await championOf(db, modelId);
        if (status === 'candidate' && options.kind === 'pipeline') {
          const championAuc = champion ? await championAucOnWindow(t, context, champion, target, index, targets.length, evaluated.labelled, layout, championPredictions) : null;
          outcome.auc.champion = championAuc;
          if (championAuc === null || (choice.auc as number) >= championAuc - options.promotionTolerance) {
            status = 'champion';
            reason = champion
              ? `${reason}; not worse than champion v${champion.version} (AUC ${fmt(championAuc)}) beyond ${options.promotionTolerance}`
              : `${reason}; first model for this target`;
          } else {
            reason = `${reason}; champion v${champion?.version} stays: its AUC ${fmt(championAuc)} on this window is higher by more than ${options.promotionTolerance}`;
          }
        } else if (status === 'candidate') {
          reason = `${reason}; backtest run, never promoted`;
        }
        const evaluationMetrics = pair.evaluationMetrics[index] ?? null;
        const groups = importance.get(choice.kind);
        planned.push({
          target,
          outputIndex: index,
          status,
          networkKind: choice.kind,
          scoreSetId: status === 'champion' ? await reserveScoreSetId(db) : null,
          version: {
            algorithm: choice.kind,
            runId: run,
            trainedAt: context.clock.now().toISOString(),
            consentSnapshotAt: snapshot.at.toISOString(),
            populationSize: snapshot.size,
            trainingCutoff: evaluationCutoff.toISOString(),
            horizonDays: horizon,
            featureList: layout.names,
            codeVersion: code,
            trainingDataHash: (pair.production ?? pair.evaluation).trainingDataHash,
            metrics: {
              evaluationWindow: { cutoff: day(evaluationCutoff), horizonDays: horizon, rows: evaluated.labelled.matrix.rows },
              // buyers among everyone in the snapshot (not the training sample) in the window from the
              // evaluation cutoff: the most recent window the production network is trained on
              trainingWindow: {
                cutoff: day(evaluationCutoff),
                horizonDays: horizon,
                buyers: candidateOf.get(targetId(target))?.positives[0] ?? null,
                population: candidateOf.get(targetId(target))?.population[0] ?? null,
              },
              evaluationTrainingCutoffs: evaluationOrigins.map(day),
              productionTrainingCutoffs: productionOrigins.map(day),
              trainingRows: pair.production?.trainingRows ?? null,
              evaluation: pair.evaluationMetrics[index] ?? null,
              importance: importance
                .get(choice.kind)
                ?.map((group) => ({ group: group.name, aucDrop: group.aucDrop[index] ?? null }))
                .sort((a, b) => (b.aucDrop ?? 0) - (a.aucDrop ?? 0)),
              champion: champion ? { version: champion.version, auc: outcome.auc.champion } : null,
              alternatives: Object.fromEntries([...networks].map(([kind, other]) => [kind, other.evaluationMetrics[index]?.rocAuc ?? null])),
            },
            baselineMetrics: { rfm: baseline.rfm, bgnbd: baseline.bgnbd, bgnbdParams: evaluated.bgnbd.params },
            decisionReason: reason,
            networkId: savedNetworks.get(`${choice.kind}:production`) ?? null,
            evaluationNetworkId: savedNetworks.get(`${choice.kind}:evaluation`) ?? null,
          },
        });
        outcome.status = status;
        outcome.reason = reason;
      }
      return { value: undefined, rows: targets.length };
    });

    if (options.kind === 'backtest') {
      await backtestStage();
    } else if (planned.some((entry) => entry.scoreSetId !== null)) {
      // the BG/NBD columns of the scoring matrix come from one fit shared by every scoring shard
      scoringFit = await timed('BG/NBD (scoring)', async () => {
        const sample = await computeFeatures(db, {
          runId: run,
          cutoff: asOf,
          horizonDays: horizon,
          layout,
          liveConsentAt: context.clock.now(),
          samplePermille: Math.min(1000, Math.ceil((1000 * SCORING_FIT_ROWS) / Math.max(1, snapshot.size))),
        });
        return { value: fitBuyTillYouDie(sample, options.training.seed), rows: sample.rows };
      });
    }
    matrices.clear();
    return plan();

    async function backtestStage(): Promise<void> {
      const truth = await timed('backtest (truth)', async () => {
        const matrix = await computeFeatures(db, { runId: run, cutoff: asOf, horizonDays: horizon, layout });
        const bgnbd = fillBuyTillYouDie(matrix, options.training.seed);
        const labels = await computeLabels(db, matrix, targets);
        const value = activeRowsOnly({ matrix, labels }, bgnbd);
        return { value, rows: value.labelled.matrix.rows };
      });
      await timed('backtest (metrics)', async () => {
        const truthBaselines = evaluateBaselines(evaluated.labelled, evaluated.bgnbd, truth.labelled, truth.bgnbd, targets);
        const predictions = new Map<NetworkKind, Array<BinaryMetrics | null>>();
        for (const kind of neededKinds) {
          const production = (networks.get(kind) as NetworkPair).production as FittedNetwork;
          const probabilities = await predictMatrix(t, production, truth.labelled.matrix);
          predictions.set(kind, metricsPerTarget(truth.labelled.labels, probabilities, targets.length));
        }
        for (const [index, target] of targets.entries()) {
          const outcome = outcomes.get(targetId(target));
          const choice = chosen[index] as Choice;
          if (!outcome) continue;
          outcome.backtest = {
            model: choice.kind && neededKinds.has(choice.kind) ? (predictions.get(choice.kind)?.[index] ?? null) : null,
            rfm: truthBaselines[index]?.rfm ?? null,
            bgnbd: truthBaselines[index]?.bgnbd ?? null,
          };
        }
        return { value: undefined, rows: truth.labelled.matrix.rows * targets.length };
      });
    }
  }
}

interface Choice {
  kind: NetworkKind | null;
  auc: number | null;
  beatsBaselines: boolean;
  reason: string;
}

function fmt(value: number | null | undefined): string {
  return value === null || value === undefined || Number.isNaN(value) ? 'n/a' : value.toFixed(3);
}

function chooseNetwork(target: Target, index: number, networks: Map<NetworkKind, NetworkPair>, baseline: BaselineEvaluation, minimumAuc: number): Choice {
  let best: { kind: NetworkKind; auc: number } | null = null;
  for (const [kind, pair] of networks) {
    const auc = pair.evaluationMetrics[index]?.rocAuc;
    if (auc !== undefined && !Number.isNaN(auc) && (!best || auc > best.auc)) best = { kind, auc };
  }
  if (!best) return { kind: null, auc: null, beatsBaselines: false, reason: `no evaluation possible for ${targetId(target)}: one class only in the window` };
  const rfm = baseline.rfm?.rocAuc ?? Number.NaN;
  const bgnbd = baseline.bgnbd?.rocAuc ?? Number.NaN;
  const figures = `${best.kind} AUC ${fmt(best.auc)} vs RFM ${fmt(rfm)}, BG/NBD ${fmt(bgnbd)}`;
  if (best.auc < minimumAuc) {
    return { ...best, beatsBaselines: false, reason: `AUC below ${minimumAuc}, too close to chance: ${figures}` };
  }
  const beats = best.auc > rfm && best.auc > bgnbd;
  return { ...best, beatsBaselines: beats, reason: beats ? `beats both baselines: ${figures}` : `does not beat the baselines: ${figures}` };
}

function notEligible(candidate: TargetCandidate): TargetOutcome {
  return {
    target: targetId(candidate),
    algorithm: null,
    version: null,
    status: 'not eligible',
    reason: candidate.reason ?? 'not eligible',
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
  };
}

/**
 * The champion judged on this run's evaluation window by its own evaluation network (trained
 * one horizon before its run, so it never saw this window). When its features differ from
 * this run's, the AUC it was registered with is used instead. A network serves many targets:
 * each one is loaded and run once per run (`predictions` caches its probabilities).
 */
async function championAucOnWindow(
  t: Tensorflow,
  context: AppContext,
  champion: Champion,
  target: Target,
  targetIndex: number,
  targetCount: number,
  evaluated: LabelledMatrix,
  layout: FeatureLayout,
  predictions: Map<number, { targets: string[]; probabilities: Float32Array } | null>,
): Promise<number | null> {
  const stored = (champion.metrics.evaluation as { rocAuc?: number } | null)?.rocAuc ?? null;
  const networkId = champion.evaluationNetworkId;
  if (!networkId) return stored;
  if (!predictions.has(networkId)) predictions.set(networkId, await predictWithStoredNetwork(t, context, networkId, evaluated, layout));
  const cached = predictions.get(networkId);
  const output = cached ? cached.targets.indexOf(targetId(target)) : -1;
  if (!cached || output < 0) return stored;
  const labels = labelColumn(evaluated.labels, targetCount, targetIndex);
  return rocAuc(labels, strided(cached.probabilities, cached.targets.length, output));
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
