import type * as TF from '@tensorflow/tfjs';
import { mulberry32, shuffledRows } from './random.ts';
import type { Tensorflow } from './tensorflow.ts';

type Tf = typeof TF;

export type NetworkKind = 'logistic' | 'mlp';

export interface TrainingSet {
  rows: number;
  features: number;
  /** rows × features, row-major, standardised (0 = the training mean) */
  x: Float32Array;
  targets: number;
  /** rows × targets, row-major, 0/1 */
  y: Uint8Array;
}

export interface NetworkOptions {
  l2: number;
  /** mlp only, default 64 */
  hiddenUnits?: number;
  seed: number;
}

export interface TrainOptions extends NetworkOptions {
  kind: NetworkKind;
  epochs: number;
  batchSize: number;
  learningRate: number;
  /** per target: the weight of a positive row in the loss (e.g. min(negatives / positives, 50)) */
  positiveWeights: Float32Array;
  onEpoch?: (epoch: number, loss: number) => void;
  /**
   * Early stopping: after each epoch the loss on these rows (other people than the training
   * rows) is measured; training stops after `patience` epochs without an improvement of at
   * least `minImprovement` (relative) and the network keeps the weights of its best epoch. Without it, exactly `epochs` epochs run.
   */
  validation?: { x: Float32Array; y: Uint8Array; rows: number; patience: number; minEpochs: number; minImprovement: number };
}

export interface TrainedNetwork {
  /** inference only: its optimiser and loss are released after training */
  model: TF.LayersModel;
  kind: NetworkKind;
  /** ln(positiveWeights), subtracted from the logits at prediction */
  logPositiveWeights: Float32Array;
  /** epochs whose weights the network keeps (the best epoch under early stopping) */
  epochs: number;
  /** per epoch, the validation loss (early stopping only) */
  validationLoss: number[];
}

export interface PredictionNetwork {
  model: TF.LayersModel;
  logPositiveWeights: Float32Array;
}

export interface GroupExplanations {
  /** rows × targets × top, row-major: index into groups, strongest first; 255 = none */
  codes: Uint8Array;
  /** same shape: base logit − logit with the group's columns at 0; 0 where the code is 255 */
  contributions: Float32Array;
}

export const NO_GROUP = 255;
const DEFAULT_HIDDEN_UNITS = 64;
const DEFAULT_BATCH_ROWS = 65_536;
const DEFAULT_TOP = 3;

/** Final layer has a linear activation: the network outputs one logit per target. */
export function buildNetwork(tf: Tf, kind: NetworkKind, features: number, targets: number, options: NetworkOptions): TF.LayersModel {
  checkCount(features, 'features');
  checkCount(targets, 'targets');
  checkNetworkOptions(kind, options);
  const regularizer = () => (options.l2 > 0 ? tf.regularizers.l2({ l2: options.l2 }) : undefined);
  const model = tf.sequential();
  if (kind === 'mlp') {
    model.add(
      tf.layers.dense({
        inputShape: [features],
        units: options.hiddenUnits ?? DEFAULT_HIDDEN_UNITS,
        activation: 'relu',
        kernelInitializer: tf.initializers.glorotUniform({ seed: options.seed }),
        kernelRegularizer: regularizer(),
      }),
    );
    model.add(
      tf.layers.dense({
        units: targets,
        kernelInitializer: tf.initializers.glorotUniform({ seed: options.seed + 1 }),
        kernelRegularizer: regularizer(),
      }),
    );
  } else {
    model.add(
      tf.layers.dense({
        inputShape: [features],
        units: targets,
        kernelInitializer: tf.initializers.glorotUniform({ seed: options.seed }),
        kernelRegularizer: regularizer(),
      }),
    );
  }
  return model;
}

/**
 * Trains one network for all targets. Positives are rare, so the loss weights target t's positives by
 * w_t: mean over rows and targets of w_t·y·softplus(−z) + (1−y)·softplus(z), the stable form of the
 * weighted cross-entropy on logits z. Weighting multiplies the odds the network learns by w_t, so
 * predictProbabilities returns sigmoid(z − ln w_t): the prior correction of King & Zeng (2001), exact
 * for the intercept of a logistic model.
 *
 * Rows are shuffled every epoch from `seed` (fit would use Math.random), so training is reproducible.
 * Batches are copied from the typed arrays rather than fit's gather from one big tensor: on wasm,
 * fit's per-batch gather (and slice, which copies the whole tensor) took over half of each step.
 */
export async function trainNetwork(t: Tensorflow, set: TrainingSet, options: TrainOptions): Promise<TrainedNetwork> {
  const { tf } = t;
  const { rows, features, targets } = set;
  checkCount(rows, 'rows');
  checkMatrix(set.x, rows, features, 'x');
  checkCount(targets, 'targets');
  checkLabels(set.y, rows, targets);
  checkNetworkOptions(options.kind, options);
  checkCount(options.epochs, 'epochs');
  checkCount(options.batchSize, 'batchSize');
  if (!(options.learningRate > 0 && Number.isFinite(options.learningRate))) {
    throw new Error(`learningRate must be a positive number, got ${options.learningRate}`);
  }
  const weights = options.positiveWeights;
  if (weights.length !== targets) {
    throw new Error(`positiveWeights has length ${weights.length} but there are ${targets} targets`);
  }
  weights.forEach((w, i) => {
    if (!(w > 0 && Number.isFinite(w))) throw new Error(`positiveWeights[${i}] is ${w}; expected a positive number`);
  });

  const model = buildNetwork(tf, options.kind, features, targets, options);
  const disposables: TF.Tensor[] = [];
  const validationLoss: number[] = [];
  let keptEpochs = options.epochs;
  const optimizer = tf.train.adam(options.learningRate);
  try {
    startAtBaseRates(tf, model, set, weights);
    const w = tf.tensor2d(weights, [1, targets]);
    const wMinusOne = tf.tidy(() => w.sub(1));
    disposables.push(w, wMinusOne);
    // softplus(−z) = softplus(z) − z, so the loss is softplus(z)·(1 + y·(w−1)) − w·y·z
    const loss = (y: TF.Tensor, z: TF.Tensor): TF.Tensor =>
      tf.tidy(() => tf.mean(tf.sub(tf.mul(tf.softplus(z), tf.add(tf.mul(y, wMinusOne), 1)), tf.mul(tf.mul(y, w), z))));
    // one Adam step on the weighted loss plus the kernels' L2 terms: the same arithmetic as
    // compile + trainOnBatch (measured: identical weights), without its per-batch bookkeeping and
    // without reading the loss back every batch (twice as fast on the small batches of small bases)
    const variables = model.trainableWeights.map((weight) => weight.read() as TF.Variable);
    const kernels = model.layers.map((layer) => (layer.trainableWeights[0] as TF.LayerVariable).read());
    const step = (xs: TF.Tensor, ys: TF.Tensor): TF.Scalar =>
      optimizer.minimize(
        () =>
          tf.tidy(() => {
            let total = loss(ys, model.apply(xs, { training: true }) as TF.Tensor) as TF.Scalar;
            if (options.l2 > 0) for (const kernel of kernels) total = total.add(tf.sum(tf.square(kernel)).mul(options.l2));
            return total;
          }),
        true,
        variables,
      ) as TF.Scalar;

    const random = mulberry32(options.seed);
    const batchSize = Math.min(options.batchSize, rows);
    const logPositiveWeights = Float32Array.from(weights, Math.log);
    const validation = options.validation;
    let best: { loss: number; epoch: number; weights: TF.Tensor[] } | null = null;
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      const order = shuffledRows(rows, random);
      let lossSum: TF.Scalar = tf.scalar(0);
      for (let start = 0; start < rows; start += batchSize) {
        const batch = gatherBatch(set, order, start, Math.min(batchSize, rows - start));
        const xs = tf.tensor2d(batch.x, [batch.rows, features]);
        const ys = tf.tensor2d(batch.y, [batch.rows, targets]);
        try {
          const cost = step(xs, ys);
          const sum = tf.tidy(() => lossSum.add(cost.mul(batch.rows)) as TF.Scalar);
          cost.dispose();
          lossSum.dispose();
          lossSum = sum;
        } finally {
          xs.dispose();
          ys.dispose();
        }
      }
      const epochLoss = ((await lossSum.data())[0] as number) / rows;
      lossSum.dispose();
      if (!Number.isFinite(epochLoss)) {
        throw new Error(`training diverged at epoch ${epoch + 1} (loss ${epochLoss}); lower learningRate`);
      }
      options.onEpoch?.(epoch, epochLoss);
      if (!validation) continue;
      const probabilities = await predictProbabilities(t, { model, logPositiveWeights }, validation.x, validation.rows);
      // the log loss of the calibrated probabilities, relative to each target's base rate: smooth
      // where the AUC of a few hundred held-out buyers jumps from epoch to epoch (stopping on it
      // ended Online Retail's logistic networks at epoch 1-2, far from their optimum)
      const loss = relativeLogLoss(validation.y, probabilities, targets);
      validationLoss.push(loss);
      if (!best || loss < best.loss * (1 - validation.minImprovement)) {
        for (const tensor of best?.weights ?? []) tensor.dispose();
        best = { loss, epoch: epoch + 1, weights: model.getWeights().map((weight) => weight.clone()) };
      } else if (epoch + 1 >= validation.minEpochs && epoch + 1 - best.epoch >= validation.patience) {
        break;
      }
    }
    if (best) {
      model.setWeights(best.weights);
      for (const tensor of best.weights) tensor.dispose();
      keptEpochs = best.epoch;
    }
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    for (const tensor of disposables) tensor.dispose();
    optimizer.dispose();
  }
  return { model, kind: options.kind, logPositiveWeights: Float32Array.from(weights, Math.log), epochs: keptEpochs, validationLoss };
}

/**
 * Mean over targets (with both classes present) of the log loss divided by the log loss of the
 * target's base rate (1 − McFadden's R²): every target weighs the same, rare or common.
 */
export function relativeLogLoss(y: Uint8Array, probabilities: Float32Array, targets: number): number {
  const rows = y.length / targets;
  let sum = 0;
  let counted = 0;
  for (let t = 0; t < targets; t++) {
    let positives = 0;
    let loss = 0;
    for (let row = 0; row < rows; row++) {
      const label = y[row * targets + t] as number;
      const p = Math.min(1 - 1e-7, Math.max(1e-7, probabilities[row * targets + t] as number));
      positives += label;
      loss -= label ? Math.log(p) : Math.log(1 - p);
    }
    if (positives === 0 || positives === rows) continue;
    const rate = positives / rows;
    const baseLoss = -rows * (rate * Math.log(rate) + (1 - rate) * Math.log(1 - rate));
    sum += loss / baseLoss;
    counted++;
  }
  return counted > 0 ? sum / counted : 0;
}

/** rows × targets calibrated probabilities, computed by chunks of batchRows rows. */
export async function predictProbabilities(
  t: Tensorflow,
  network: PredictionNetwork,
  x: Float32Array,
  rows: number,
  options: { batchRows?: number } = {},
): Promise<Float32Array> {
  const { tf } = t;
  const { features, targets } = shapeOf(network.model);
  checkRows(rows);
  checkMatrix(x, rows, features, 'x');
  if (network.logPositiveWeights.length !== targets) {
    throw new Error(`logPositiveWeights has length ${network.logPositiveWeights.length} but the model has ${targets} outputs`);
  }
  const batchRows = options.batchRows ?? DEFAULT_BATCH_ROWS;
  checkCount(batchRows, 'batchRows');
  const probabilities = new Float32Array(rows * targets);
  const logW = tf.tensor2d(network.logPositiveWeights, [1, targets]);
  try {
    for (let start = 0; start < rows; start += batchRows) {
      const end = Math.min(start + batchRows, rows);
      const p = tf.tidy(() => {
        const xs = tf.tensor2d(x.subarray(start * features, end * features), [end - start, features]);
        return tf.sigmoid(tf.sub(logits(network.model, xs), logW));
      });
      try {
        probabilities.set(p.dataSync(), start * targets);
      } finally {
        p.dispose();
      }
    }
  } finally {
    logW.dispose();
  }
  return probabilities;
}

/**
 * Reason codes by occlusion: a group's contribution to target t is the base logit minus the logit
 * with the group's columns set to 0 (the standardised mean). Keeps, per row and target, the `top`
 * groups that push the score up (contribution > 0), strongest first; remaining slots get code 255.
 */
export async function explainByGroups(
  t: Tensorflow,
  network: PredictionNetwork,
  x: Float32Array,
  rows: number,
  groups: { name: string; columns: number[] }[],
  options: { batchRows?: number; top?: number } = {},
): Promise<GroupExplanations> {
  const { tf } = t;
  const { features, targets } = shapeOf(network.model);
  checkRows(rows);
  checkMatrix(x, rows, features, 'x');
  const top = options.top ?? DEFAULT_TOP;
  checkCount(top, 'top');
  const batchRows = options.batchRows ?? DEFAULT_BATCH_ROWS;
  checkCount(batchRows, 'batchRows');
  if (groups.length === 0) throw new Error('no groups to explain by');
  if (groups.length >= NO_GROUP) throw new Error(`at most ${NO_GROUP - 1} groups, got ${groups.length}`);
  for (const group of groups) {
    if (group.columns.length === 0) throw new Error(`group ${group.name} has no columns`);
    for (const c of group.columns) {
      if (!Number.isInteger(c) || c < 0 || c >= features) {
        throw new Error(`group ${group.name} has column ${c}, outside [0, ${features})`);
      }
    }
  }

  const codes = new Uint8Array(rows * targets * top).fill(NO_GROUP);
  const contributions = new Float32Array(rows * targets * top);
  const masks = groups.map((group) => {
    const mask = new Float32Array(features).fill(1);
    for (const c of group.columns) mask[c] = 0;
    return tf.tensor2d(mask, [1, features]);
  });
  try {
    for (let start = 0; start < rows; start += batchRows) {
      const end = Math.min(start + batchRows, rows);
      const xs = tf.tensor2d(x.subarray(start * features, end * features), [end - start, features]);
      const base = tf.tidy(() => logits(network.model, xs));
      try {
        for (const [g, mask] of masks.entries()) {
          const delta = tf.tidy(() => tf.sub(base, logits(network.model, tf.mul(xs, mask))));
          let values: Float32Array;
          try {
            values = delta.dataSync() as Float32Array;
          } finally {
            delta.dispose();
          }
          keepStrongest(values, start * targets * top, top, g, codes, contributions);
        }
      } finally {
        xs.dispose();
        base.dispose();
      }
    }
  } finally {
    for (const mask of masks) mask.dispose();
  }
  return { codes, contributions };
}

/** Inserts group g into each cell's descending top list; slots start at contribution 0, so only positives enter. */
function keepStrongest(values: Float32Array, offset: number, top: number, g: number, codes: Uint8Array, contributions: Float32Array): void {
  for (let i = 0; i < values.length; i++) {
    const value = values[i]!;
    const cell = offset + i * top;
    if (!(value > contributions[cell + top - 1]!)) continue;
    let k = top - 1;
    while (k > 0 && value > contributions[cell + k - 1]!) {
      contributions[cell + k] = contributions[cell + k - 1]!;
      codes[cell + k] = codes[cell + k - 1]!;
      k--;
    }
    contributions[cell + k] = value;
    codes[cell + k] = g;
  }
}

/** Rows order[start .. start + rows) of the set, as one training batch. */
function gatherBatch(
  set: TrainingSet,
  order: Uint32Array,
  start: number,
  rows: number,
): { rows: number; x: Float32Array; y: Float32Array } {
  const { features, targets } = set;
  const x = new Float32Array(rows * features);
  const y = new Float32Array(rows * targets);
  for (let i = 0; i < rows; i++) {
    const row = order[start + i]!;
    for (let f = 0; f < features; f++) x[i * features + f] = set.x[row * features + f]!;
    for (let t = 0; t < targets; t++) y[i * targets + t] = set.y[row * targets + t]!;
  }
  return { rows, x, y };
}

function logits(model: TF.LayersModel, xs: TF.Tensor2D): TF.Tensor {
  // predict's default batchSize of 32 would split a chunk into thousands of tiny matmuls
  return model.predict(xs, { batchSize: xs.shape[0] }) as TF.Tensor;
}

/** Sets the output biases to the weighted log-odds of each target, so training starts calibrated. */
function startAtBaseRates(tf: Tf, model: TF.LayersModel, set: TrainingSet, weights: Float32Array): void {
  const positives = new Float64Array(set.targets);
  for (let i = 0; i < set.y.length; i++) positives[i % set.targets]! += set.y[i]!;
  const bias = new Float32Array(set.targets);
  for (let t = 0; t < set.targets; t++) {
    // +0.5: a target without positives (or negatives) still gets a finite bias
    bias[t] = Math.log(weights[t]!) + Math.log((positives[t]! + 0.5) / (set.rows - positives[t]! + 0.5));
  }
  const output = model.layers[model.layers.length - 1]!;
  const [kernel] = output.getWeights();
  const biasTensor = tf.tensor1d(bias);
  try {
    output.setWeights([kernel!, biasTensor]);
  } finally {
    biasTensor.dispose();
  }
}

function shapeOf(model: TF.LayersModel): { features: number; targets: number } {
  const input = model.inputs.length === 1 ? model.inputs[0]!.shape : undefined;
  const output = model.outputs.length === 1 ? model.outputs[0]!.shape : undefined;
  const features = input?.length === 2 ? input[1] : undefined;
  const targets = output?.length === 2 ? output[1] : undefined;
  if (typeof features !== 'number' || typeof targets !== 'number') {
    throw new Error('expected a model with one [rows, features] input and one [rows, targets] output');
  }
  return { features, targets };
}

function checkNetworkOptions(kind: NetworkKind, options: NetworkOptions): void {
  if (kind !== 'logistic' && kind !== 'mlp') throw new Error(`unknown network kind '${String(kind)}'`);
  if (!(options.l2 >= 0 && Number.isFinite(options.l2))) throw new Error(`l2 must be a number ≥ 0, got ${options.l2}`);
  if (options.hiddenUnits !== undefined) checkCount(options.hiddenUnits, 'hiddenUnits');
  if (!Number.isInteger(options.seed)) throw new Error(`seed must be an integer, got ${options.seed}`);
}

function checkCount(value: number, name: string): void {
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, got ${value}`);
}

function checkRows(rows: number): void {
  if (!Number.isInteger(rows) || rows < 0) throw new Error(`rows must be an integer ≥ 0, got ${rows}`);
}

function checkMatrix(x: Float32Array, rows: number, columns: number, name: string): void {
  checkCount(columns, 'features');
  if (!(x instanceof Float32Array)) throw new Error(`${name} must be a Float32Array`);
  if (x.length !== rows * columns) {
    throw new Error(`${name} has length ${x.length} but rows × features is ${rows} × ${columns} = ${rows * columns}`);
  }
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i]!)) {
      throw new Error(`${name} is ${x[i]} at row ${Math.floor(i / columns)}, column ${i % columns}; expected finite values`);
    }
  }
}

function checkLabels(y: Uint8Array, rows: number, targets: number): void {
  if (!(y instanceof Uint8Array)) throw new Error('y must be a Uint8Array');
  if (y.length !== rows * targets) {
    throw new Error(`y has length ${y.length} but rows × targets is ${rows} × ${targets} = ${rows * targets}`);
  }
  for (let i = 0; i < y.length; i++) {
    if (y[i]! > 1) throw new Error(`y is ${y[i]} at row ${Math.floor(i / targets)}, target ${i % targets}; labels must be 0 or 1`);
  }
}
