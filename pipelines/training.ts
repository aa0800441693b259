import { createHash } from 'node:crypto';
import type * as TF from '@tensorflow/tfjs';
import {
  explainByGroups,
  type GroupExplanations,
  type NetworkKind,
  predictProbabilities,
  type TrainedNetwork,
  trainNetwork,
} from '../models/propensity-network.ts';
import { personShare, sampleIndices } from '../models/random.ts';
import { fitStandardisation, type Standardisation, standardiseRows } from '../models/standardisation.ts';
import type { Tensorflow } from '../models/tensorflow.ts';
import type { FeatureMatrix } from './features.ts';

/** A feature matrix at one cutoff with what really happened in its horizon. */
export interface LabelledMatrix {
  matrix: FeatureMatrix;
  labels: Uint8Array;
}

export interface TrainingConfig {
  algorithms: NetworkKind[];
  /** at least this many epochs; small training sets get more, up to maxEpochs (see trainingSchedule) */
  epochs: number;
  maxEpochs: number;
  /** the largest batch; small training sets use smaller batches */
  batchSize: number;
  /** rows a network sees in training at least (epochs x rows) */
  minSamples: number;
  learningRate: number;
  l2: number;
  hiddenUnits: number;
  /** rows sampled from the stacked cutoffs; beyond this, more rows buy little AUC (see README) */
  maxTrainingRows: number;
  maxPositiveWeight: number;
  seed: number;
  /**
   * early stopping of the MLP: share of the training people (all their rows) held out to measure
   * its loss after each epoch (0 = the fixed schedule). The logistic network always runs its
   * schedule: its L2-regularised loss has one optimum, and stopping it on held-out people ended it
   * at epoch 5 of 32 on Online Retail, 0.026 AUC short on "any purchase" (measured)
   */
  validationShare: number;
  /** the MLP is a candidate only on training sets of at least this many rows (below, it never beat the logistic network) */
  minRowsForMlp: number;
  /** epochs without improvement of the validation loss before training stops */
  patience: number;
  /** a validation loss lower by less than this share of the best one is no improvement */
  minImprovement: number;
}

/** A trained network with what inference needs to reproduce its input. */
export interface FittedNetwork {
  kind: NetworkKind;
  model: TF.LayersModel;
  logPositiveWeights: Float32Array;
  standardisation: Standardisation;
  trainingRows: number;
  trainingDataHash: string;
  positives: number[];
  /** epochs trained: found by early stopping, or given */
  epochs: number;
  /** validation loss per epoch (early stopping only) */
  validationLoss: number[];
}

interface TrainingRows {
  x: Float32Array;
  y: Uint8Array;
  rows: number;
  standardisation: Standardisation;
  hash: string;
  positives: number[];
  contactIds: Float64Array;
}

/**
 * Stacks several cutoffs (rolling origins) into one training set, samples rows beyond the
 * cap, standardises in place, and hashes exactly what the network sees (lineage).
 */
function trainingRows(stack: readonly LabelledMatrix[], targets: number, maxRows: number, seed: number): TrainingRows {
  const columns = stack[0]?.matrix.columns ?? 0;
  const offsets: number[] = [];
  let total = 0;
  for (const part of stack) {
    offsets.push(total);
    total += part.matrix.rows;
  }
  const chosen = sampleIndices(
    Array.from({ length: total }, (_, i) => i),
    maxRows,
    seed,
  );
  const rows = chosen.length;
  const x = new Float32Array(rows * columns);
  const y = new Uint8Array(rows * targets);
  const contactIds = new Float64Array(rows);
  let part = 0;
  chosen.forEach((global, i) => {
    while (part + 1 < stack.length && global >= (offsets[part + 1] as number)) part++;
    const source = stack[part] as LabelledMatrix;
    const row = global - (offsets[part] as number);
    contactIds[i] = source.matrix.contactIds[row] as number;
    x.set(source.matrix.x.subarray(row * columns, (row + 1) * columns), i * columns);
    y.set(source.labels.subarray(row * targets, (row + 1) * targets), i * targets);
  });
  const hash = createHash('sha256')
    .update(new Uint8Array(x.buffer, x.byteOffset, x.byteLength))
    .update(y)
    .digest('hex');
  const standardisation = fitStandardisation(x, rows, columns);
  standardiseRows(x, 0, rows, columns, standardisation, x);
  const positives = new Array<number>(targets).fill(0);
  for (let i = 0; i < y.length; i++) if (y[i]) positives[i % targets]!++;
  return { x, y, rows, standardisation, hash, positives, contactIds };
}

/**
 * Trains one network on stacked cutoffs. An MLP without `epochs` stops early: a seeded share of
 * the people (all their rows, at every cutoff) is held out, and training stops once their loss
 * stops improving (at most the schedule's epochs); the epochs found are returned, so that the
 * production network, trained on everyone, can run as many. With `epochs`, or for the logistic
 * network, the schedule's epochs on every row.
 */
export async function fitNetwork(
  t: Tensorflow,
  kind: NetworkKind,
  stack: readonly LabelledMatrix[],
  targets: number,
  config: TrainingConfig,
  onEpoch?: (epoch: number, loss: number) => void,
  options: { epochs?: number } = {},
): Promise<FittedNetwork> {
  const data = trainingRows(stack, targets, config.maxTrainingRows, config.seed);
  const columns = stack[0]?.matrix.columns ?? 0;
  // rare positives: weight them up to balance, capped; predictions undo it (prior correction)
  const positiveWeights = Float32Array.from(data.positives, (positives) =>
    Math.min(config.maxPositiveWeight, Math.max(1, (data.rows - positives) / Math.max(1, positives))),
  );
  const schedule = trainingSchedule(data.rows, config);
  let set = { rows: data.rows, features: columns, x: data.x, targets, y: data.y };
  let validation: { x: Float32Array; y: Uint8Array; rows: number; patience: number; minEpochs: number; minImprovement: number } | undefined;
  if (options.epochs === undefined && config.validationShare > 0 && kind === 'mlp') {
    const held = (row: number) => personShare(data.contactIds[row] as number, config.seed + 1) < config.validationShare;
    const split = splitRows(data.x, data.y, data.rows, columns, targets, held);
    if (split.inside.rows > 0 && split.outside.rows > 0) {
      set = { rows: split.outside.rows, features: columns, x: split.outside.x, targets, y: split.outside.y };
      validation = {
        ...split.inside,
        patience: config.patience,
        minEpochs: Math.min(config.epochs, schedule.epochs),
        minImprovement: config.minImprovement,
      };
    }
  }
  const trained: TrainedNetwork = await trainNetwork(t, set, {
    kind,
    epochs: options.epochs ?? schedule.epochs,
    batchSize: schedule.batchSize,
    learningRate: config.learningRate,
    l2: config.l2,
    hiddenUnits: config.hiddenUnits,
    positiveWeights,
    seed: config.seed,
    onEpoch,
    validation,
  });
  return {
    kind,
    model: trained.model,
    logPositiveWeights: trained.logPositiveWeights,
    standardisation: data.standardisation,
    trainingRows: set.rows,
    trainingDataHash: data.hash,
    positives: data.positives,
    epochs: trained.epochs,
    validationLoss: trained.validationLoss,
  };
}

/** Rows for which `inside` holds, and the others, as two matrices. */
function splitRows(x: Float32Array, y: Uint8Array, rows: number, columns: number, targets: number, inside: (row: number) => boolean) {
  const chosen: number[] = [];
  const others: number[] = [];
  for (let row = 0; row < rows; row++) (inside(row) ? chosen : others).push(row);
  const take = (list: number[]) => {
    const xs = new Float32Array(list.length * columns);
    const ys = new Uint8Array(list.length * targets);
    list.forEach((row, i) => {
      xs.set(x.subarray(row * columns, (row + 1) * columns), i * columns);
      ys.set(y.subarray(row * targets, (row + 1) * targets), i * targets);
    });
    return { x: xs, y: ys, rows: list.length };
  };
  return { inside: take(chosen), outside: take(others) };
}

/**
 * Small training sets need small batches and more epochs to get enough optimiser steps (a
 * 10k-row set at batch 1024 and 12 epochs gets ~100 Adam steps: under-trained, measured);
 * large ones need neither.
 */
export function trainingSchedule(rows: number, config: TrainingConfig): { epochs: number; batchSize: number } {
  const batchSize = Math.min(config.batchSize, Math.max(128, 2 ** Math.round(Math.log2(Math.max(1, rows) / 100))));
  const epochs = Math.min(config.maxEpochs, Math.max(config.epochs, Math.ceil(config.minSamples / Math.max(1, rows))));
  return { epochs, batchSize };
}

const CHUNK_ROWS = 65_536;

export interface InferenceNetwork {
  model: TF.LayersModel;
  logPositiveWeights: Float32Array;
  standardisation: Standardisation;
}

/** rows x outputs probabilities for a raw feature matrix, standardised chunk by chunk. */
export async function predictMatrix(t: Tensorflow, network: InferenceNetwork, matrix: FeatureMatrix): Promise<Float32Array> {
  const outputs = network.logPositiveWeights.length;
  const result = new Float32Array(matrix.rows * outputs);
  const buffer = new Float32Array(Math.min(CHUNK_ROWS, matrix.rows) * matrix.columns);
  for (let start = 0; start < matrix.rows; start += CHUNK_ROWS) {
    const end = Math.min(matrix.rows, start + CHUNK_ROWS);
    const input = standardiseRows(matrix.x, start, end, matrix.columns, network.standardisation, buffer);
    const chunk = await predictProbabilities(t, network, input.subarray(0, (end - start) * matrix.columns), end - start);
    result.set(chunk, start * outputs);
  }
  return result;
}

/** Per-person reasons for a raw feature matrix, chunk by chunk; `onChunk` receives each chunk's explanations. */
export async function explainMatrix(
  t: Tensorflow,
  network: InferenceNetwork,
  matrix: FeatureMatrix,
  onChunk: (start: number, end: number, explanations: GroupExplanations) => void,
): Promise<void> {
  const buffer = new Float32Array(Math.min(CHUNK_ROWS, matrix.rows) * matrix.columns);
  for (let start = 0; start < matrix.rows; start += CHUNK_ROWS) {
    const end = Math.min(matrix.rows, start + CHUNK_ROWS);
    const input = standardiseRows(matrix.x, start, end, matrix.columns, network.standardisation, buffer);
    const explanations = await explainByGroups(
      t,
      network,
      input.subarray(0, (end - start) * matrix.columns),
      end - start,
      matrix.layout.explanationGroups,
    );
    onChunk(start, end, explanations);
  }
}
