import type * as TF from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { rocAuc, strided } from '../../models/metrics.ts';
import {
  explainByGroups,
  NO_GROUP,
  predictProbabilities,
  relativeLogLoss,
  type TrainedNetwork,
  type TrainingSet,
  type TrainOptions,
  trainNetwork,
} from '../../models/propensity-network.ts';
import { mulberry32 } from '../../models/random.ts';
import { loadTensorflow, type Tensorflow } from '../../models/tensorflow.ts';

const FEATURES = 8;
const TARGETS = 3;
// target t is driven by group t only; group 3 is noise
const GROUPS = [
  { name: 'recency', columns: [0, 1] },
  { name: 'frequency', columns: [2, 3] },
  { name: 'monetary', columns: [4, 5] },
  { name: 'noise', columns: [6, 7] },
];
const INTERCEPTS = [-4, -3.5, -3];
const SLOPE = 1.5;

function plantedSet(rows: number, seed: number): TrainingSet {
  const random = mulberry32(seed);
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const x = new Float32Array(rows * FEATURES);
  const y = new Uint8Array(rows * TARGETS);
  for (let r = 0; r < rows; r++) {
    for (let f = 0; f < FEATURES; f++) x[r * FEATURES + f] = gaussian();
    for (let t = 0; t < TARGETS; t++) {
      const z = INTERCEPTS[t]! + SLOPE * (x[r * FEATURES + 2 * t]! + x[r * FEATURES + 2 * t + 1]!);
      y[r * TARGETS + t] = random() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
    }
  }
  return { rows, features: FEATURES, x, targets: TARGETS, y };
}

const column = (y: Uint8Array, t: number) => Uint8Array.from(strided(Float32Array.from(y), TARGETS, t));
function mean(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]!;
  return sum / values.length;
}

const options = (overrides: Partial<TrainOptions> = {}): TrainOptions => ({
  kind: 'logistic',
  epochs: 20,
  batchSize: 256,
  learningRate: 0.02,
  l2: 1e-4,
  positiveWeights: new Float32Array(TARGETS).fill(20),
  seed: 7,
  ...overrides,
});

describe('propensity networks', () => {
  let t: Tensorflow;
  const train = plantedSet(5000, 1);
  const test = plantedSet(5000, 2);
  let logistic: TrainedNetwork;

  beforeAll(async () => {
    t = await loadTensorflow();
    logistic = await trainNetwork(t, train, options());
  });

  it('learns the planted signal of every target, out of sample', async () => {
    const mlp = await trainNetwork(t, train, options({ kind: 'mlp', hiddenUnits: 16, epochs: 15 }));
    try {
      for (const network of [logistic, mlp]) {
        const p = await predictProbabilities(t, network, test.x, test.rows);
        for (let target = 0; target < TARGETS; target++) {
          expect(rocAuc(column(test.y, target), strided(p, TARGETS, target))).toBeGreaterThan(0.8);
        }
      }
    } finally {
      mlp.model.dispose();
    }
  });

  it('brings the mean probability back to the base rate despite positive weights of 20', async () => {
    const p = await predictProbabilities(t, logistic, test.x, test.rows);
    for (let target = 0; target < TARGETS; target++) {
      const observed = mean(column(test.y, target));
      const predicted = mean(strided(p, TARGETS, target));
      // uncorrected, a weight of 20 would put the mean several times above the base rate
      expect(Math.abs(predicted - observed)).toBeLessThan(0.25 * observed);
    }
  });

  it('trains reproducibly from the seed and predicts the same in any chunking', async () => {
    const again = await trainNetwork(t, train, options());
    try {
      const first = await predictProbabilities(t, logistic, test.x, test.rows);
      expect(await predictProbabilities(t, again, test.x, test.rows)).toEqual(first);
      expect(await predictProbabilities(t, logistic, test.x, test.rows, { batchRows: 777 })).toEqual(first);
    } finally {
      again.model.dispose();
    }
  });

  it('round-trips through a save handler and predicts identically after load', async () => {
    const { tf } = t;
    let saved: TF.io.ModelArtifacts | undefined;
    await logistic.model.save(
      tf.io.withSaveHandler(async (artifacts) => {
        saved = artifacts;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    // a fresh copy of the artifacts, as a file or database would give back
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(structuredClone(saved!)));
    try {
      const network = { model: loaded, logPositiveWeights: logistic.logPositiveWeights };
      expect(await predictProbabilities(t, network, test.x, test.rows)).toEqual(await predictProbabilities(t, logistic, test.x, test.rows));
    } finally {
      loaded.dispose();
    }
  });

  it('explains each target by its planted group', async () => {
    const top = 2;
    const { codes, contributions } = await explainByGroups(t, logistic, test.x, test.rows, GROUPS, { top, batchRows: 1500 });
    expect(codes).toHaveLength(test.rows * TARGETS * top);
    for (let target = 0; target < TARGETS; target++) {
      let pushedUp = 0;
      let planted = 0;
      for (let r = 0; r < test.rows; r++) {
        if (test.x[r * FEATURES + 2 * target]! + test.x[r * FEATURES + 2 * target + 1]! < 0.5) continue;
        pushedUp++;
        const cell = (r * TARGETS + target) * top;
        if (codes[cell] === target) planted++;
      }
      expect(planted / pushedUp).toBeGreaterThan(0.95);
    }
    for (let i = 0; i < codes.length; i++) {
      if (codes[i] === NO_GROUP) expect(contributions[i]).toBe(0);
      else expect(contributions[i]).toBeGreaterThan(0);
      if (i % top > 0) expect(contributions[i]!).toBeLessThanOrEqual(contributions[i - 1]!);
    }
  });

  it('rejects inputs whose length does not match rows × features', async () => {
    await expect(trainNetwork(t, { ...train, rows: train.rows + 1 }, options())).rejects.toThrow(
      /x has length 40000 but rows × features is 5001 × 8/,
    );
    await expect(predictProbabilities(t, logistic, test.x.subarray(1), test.rows)).rejects.toThrow(/x has length 39999/);
    await expect(explainByGroups(t, logistic, test.x, test.rows - 1, GROUPS)).rejects.toThrow(/x has length 40000/);
    await expect(trainNetwork(t, { ...train, y: train.y.subarray(1) }, options())).rejects.toThrow(/y has length/);
    await expect(trainNetwork(t, train, options({ positiveWeights: new Float32Array(2).fill(5) }))).rejects.toThrow(
      /positiveWeights has length 2 but there are 3 targets/,
    );
    await expect(explainByGroups(t, logistic, test.x, test.rows, [{ name: 'bad', columns: [8] }])).rejects.toThrow(
      /column 8, outside \[0, 8\)/,
    );
  });
});

describe('early stopping on held-out rows', () => {
  it('measures the log loss relative to each target’s base rate: 1 for the base rate itself, below 1 when it ranks, targets weighed alike', () => {
    // two targets: the first with a 25% base rate, the second with 50%
    const y = Uint8Array.from([1, 1, 0, 0, 0, 1, 0, 0]);
    const baseRates = Float32Array.from([0.25, 0.5, 0.25, 0.5, 0.25, 0.5, 0.25, 0.5]);
    expect(relativeLogLoss(y, baseRates, 2)).toBeCloseTo(1, 6);
    const informed = Float32Array.from([0.9, 0.5, 0.1, 0.5, 0.1, 0.5, 0.1, 0.5]);
    expect(relativeLogLoss(y, informed, 2)).toBeLessThan(1);
    expect(relativeLogLoss(y, informed, 2)).toBeGreaterThan(0.5);
  });

  it('stops once the held-out log loss stops improving by 0.1%, keeps its best epoch, and runs every epoch without it', async () => {
    const t = await loadTensorflow({ prefer: 'auto' });
    const train = plantedSet(2000, 21);
    const held = plantedSet(1000, 22);
    const stopped = await trainNetwork(
      t,
      train,
      options({ epochs: 40, validation: { x: held.x, y: held.y, rows: held.rows, patience: 2, minEpochs: 2, minImprovement: 0.001 } }),
    );
    const full = await trainNetwork(t, train, options({ epochs: 6 }));
    try {
      expect(stopped.validationLoss.length).toBeLessThan(40);
      // stopped after `patience` epochs without improvement on its best one
      expect(stopped.validationLoss.length - stopped.epochs).toBe(2);
      // the kept epoch is the last that improved by 0.1%: later epochs gained less than that
      const kept = stopped.validationLoss[stopped.epochs - 1] as number;
      for (const [epoch, loss] of stopped.validationLoss.entries()) {
        if (epoch < stopped.epochs - 1) expect(loss).toBeGreaterThan(kept);
        else expect(loss).toBeGreaterThan(kept * (1 - 0.001));
      }
      expect(full).toMatchObject({ epochs: 6, validationLoss: [] });
    } finally {
      stopped.model.dispose();
      full.model.dispose();
    }
  });
});
