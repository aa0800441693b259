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
import { sampleIndices } from '../models/random.ts';
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
}

interface TrainingRows {
  x: Float32Array;
  y: Uint8Array;
  rows: number;
  standardisation: Standardisation;
  hash: string;
  positives: number[];
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
  const chosen = sampleIndices(Array.from({ length: total }, (_, i) => i), maxRows, seed);
  const rows = chosen.length;
  const x = new Float32Array(rows * columns);
  const y = new Uint8Array(rows * targets);
  let part = 0;
  chosen.forEach((global, i) => {
    while (part + 1 < stack.length && global >= (offsets[part + 1] as number)) part++;
    const source = stack[part] as LabelledMatrix;
    const row = global - (offsets[part] as number);
    x.set(source.matrix.x.subarray(row * columns, (row + 1) * columns), i * columns);
    y.set(source.labels.subarray(row * targets, (row + 1) * targets), i * targets);
  });
  const hash = createHash('sha256').update(new Uint8Array(x.buffer, x.byteOffset, x.byteLength)).update(y).digest('hex');
  const standardisation = fitStandardisation(x, rows, columns);
  standardiseRows(x, 0, rows, columns, standardisation, x);
  const positives = new Array<number>(targets).fill(0);
  for (let i = 0; i < y.length; i++) if (y[i]) positives[i % targets]!++;
  return { x, y, rows, standardisation, hash, positives };
}

export async function fitNetwork(
  t: Tensorflow,
  kind: NetworkKind,
  stack: readonly LabelledMatrix[],
  targets: number,
  config: TrainingConfig,
  onEpoch?: (epoch: number, loss: number) => void,
): Promise<FittedNetwork> {
  const data = trainingRows(stack, targets, config.maxTrainingRows, config.seed);
  const columns = stack[0]?.matrix.columns ?? 0;
  // rare positives: weight them up to balance, capped; predictions undo it (prior correction)
  const positiveWeights = Float32Array.from(data.positives, (positives) =>
    Math.min(config.maxPositiveWeight, Math.max(1, (data.rows - positives) / Math.max(1, positives))),
  );
  const trained: TrainedNetwork = await trainNetwork(
    t,
    { rows: data.rows, features: columns, x: data.x, targets, y: data.y },
    {
      kind,
      ...trainingSchedule(data.rows, config),
      learningRate: config.learningRate,
      l2: config.l2,
      hiddenUnits: config.hiddenUnits,
      positiveWeights,
      seed: config.seed,
      onEpoch,
    },
  );
  return {
    kind,
    model: trained.model,
    logPositiveWeights: trained.logPositiveWeights,
    standardisation: data.standardisation,
    trainingRows: data.rows,
    trainingDataHash: data.hash,
    positives: data.positives,
  };
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
