import { ort } from '../../platform/onnx';
import { Adam, AdamState } from './adam';
import {
  buildHeadInferenceGraph,
  buildTrainingStepGraph,
  checkParameters,
  gradientName,
  HeadParameters,
  HeadShape,
  headParameterSpecs,
  INFERENCE_INPUT,
  INFERENCE_OUTPUT,
  PairwiseLoss,
  TRAINING_INPUTS,
  TRAINING_OUTPUTS,
  validateLoss,
} from './head-graph';
import { permutation, seededRandom } from './random';

/**
 * Trains a selector head on preference pairs with ONNX Runtime: each step runs the training-step
 * graph (forward, loss and hand-written backward, see head-graph.ts) and then Adam in JS. Inputs and
 * outputs are plain data (typed arrays and plain objects) so the whole thing runs as well inside a
 * worker thread (training-worker.ts) as in the calling thread.
 *
 * Reproducibility: the same pairs, config and seed give the same weights and metrics. Initial
 * weights come from seededRandom('head-init', seed), each epoch's order from
 * seededRandom('head-shuffle:<epoch>', seed); ONNX Runtime runs with a fixed thread count.
 */

/** Preference pairs over joined embeddings: row i of `chosen` was preferred to row i of `rejected`. */
export interface PreferencePairs {
  /** D, the width of a row (image embedding width + text embedding width). */
  dim: number;
  /** [n·D], row-major. */
  chosen: Float32Array;
  /** [n·D], row-major. */
  rejected: Float32Array;
  /** [n], each > 0 (clinician pairs w, model pairs 1); all 1 when omitted. */
  weights?: Float32Array;
}

export interface TrainingConfig {
  /** Hidden layer widths, e.g. [512, 512, 512]. */
  hidden: readonly number[];
  loss: PairwiseLoss;
  epochs: number;
  /** Pairs per step; the last batch of an epoch may be smaller. */
  batchSize: number;
  learningRate: number;
  /** Decoupled (AdamW) weight decay; default 0. */
  weightDecay?: number;
  seed: number;
}

export interface EngineOptions {
  /** ONNX Runtime intra-op threads (default 1). Keep it fixed across runs that must reproduce. */
  intraOpThreads?: number;
}

export interface TrainingHooks {
  /** Called after each epoch (awaited), e.g. to record progress; with the trainer's state when `checkpoints` is set. */
  onEpoch?: (metrics: EpochMetrics, state?: TrainerState) => void | Promise<void>;
  /** Checked between steps; an aborted signal stops training with its reason. */
  signal?: AbortSignal;
  /** Continue from this state (a checkpoint) instead of the seeded initial weights. */
  resume?: TrainerState;
  /** Held-out pairs: each epoch's metrics then carry `validationAlignment`. */
  validation?: PreferencePairs;
  /** Hand a copy of the state (weights, Adam moments, epochs) to each onEpoch, to checkpoint it. */
  checkpoints?: boolean;
}

/**
 * Everything training needs to continue exactly where it was: weights, Adam state and the epochs
 * done (their count is the next epoch's shuffle seed). Plain data: it crosses worker threads and is
 * stored as a checkpoint (training-checkpoint.ts).
 */
export interface TrainerState {
  parameters: HeadParameters;
  adam: AdamState;
  epochs: EpochMetrics[];
}

export interface EpochMetrics {
  /** 1-based. */
  epoch: number;
  /** Weighted mean of the per-pair loss over the epoch's steps (Σ w·ℓ / Σ w). */
  meanLoss: number;
  /** Fraction of the epoch's pairs whose chosen side scored higher, at the time of their step (ties count ½). */
  alignment: number;
  steps: number;
  /** Alignment on the held-out pairs after the epoch (unweighted, ties ½), when validation pairs were given. */
  validationAlignment?: number;
}

export interface TrainingResult {
  parameters: HeadParameters;
  epochs: EpochMetrics[];
  steps: number;
}

export interface PairBatch {
  /** [count·D] */
  chosen: Float32Array;
  /** [count·D] */
  rejected: Float32Array;
  /** [count] */
  weights: Float32Array;
}

export interface StepOutput {
  loss: number;
  chosenScores: Float32Array;
  rejectedScores: Float32Array;
  margins: Float32Array;
  /** d loss / d parameter, in `headParameterSpecs` order. */
  gradients: Float32Array[];
}

const SCORE_BATCH = 1024;

/**
 * Initial weights as torch.nn.Linear's default: weight and bias ~ U(−1/√fan_in, 1/√fan_in)
 * (kaiming_uniform_ with a = √5 reduces to that bound), drawn from seededRandom('head-init', seed)
 * tensor by tensor, row-major.
 */
export function initialHeadParameters(shape: HeadShape, seed: number): HeadParameters {
  const random = seededRandom('head-init', seed);
  const specs = headParameterSpecs(shape);
  const tensors = specs.map((spec, i) => {
    // Weights are [out, in] and the bias follows its weight: both use that layer's fan-in.
    const fanIn = specs[i - (i % 2)].dims[1];
    const bound = 1 / Math.sqrt(fanIn);
    const data = new Float32Array(spec.dims.reduce((a, b) => a * b, 1));
    for (let k = 0; k < data.length; k++) data[k] = (2 * random() - 1) * bound;
    return data;
  });
  return { shape: { inputDim: shape.inputDim, hidden: [...shape.hidden] }, tensors };
}

function sessionOptions(options: EngineOptions): ort.InferenceSession.SessionOptions {
  const threads = options.intraOpThreads ?? 1;
  if (!Number.isSafeInteger(threads) || threads < 1) throw new RangeError(`intraOpThreads must be a positive integer, got ${threads}`);
  return {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    // Spinning threads burn cores the rest of the service needs between steps.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
}

/** One loaded training-step graph: forward, loss and gradients for a batch at given parameters. */
export class TrainingStepSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    readonly shape: HeadShape,
  ) {}

  static async create(shape: HeadShape, loss: PairwiseLoss, options: EngineOptions = {}): Promise<TrainingStepSession> {
    const session = await ort.InferenceSession.create(buildTrainingStepGraph(shape, loss), sessionOptions(options));
    return new TrainingStepSession(session, { inputDim: shape.inputDim, hidden: [...shape.hidden] });
  }

  async run(parameters: HeadParameters, batch: PairBatch): Promise<StepOutput> {
    const specs = headParameterSpecs(this.shape);
    checkParameters(parameters, specs);
    const count = batch.weights.length;
    const dim = this.shape.inputDim;
    if (batch.chosen.length !== count * dim || batch.rejected.length !== count * dim) throw new RangeError(`a batch of ${count} pairs needs ${count * dim} values per side`);
    const feeds: Record<string, ort.Tensor> = {
      [TRAINING_INPUTS.chosen]: new ort.Tensor('float32', batch.chosen, [count, dim]),
      [TRAINING_INPUTS.rejected]: new ort.Tensor('float32', batch.rejected, [count, dim]),
      [TRAINING_INPUTS.weights]: new ort.Tensor('float32', batch.weights, [count]),
    };
    specs.forEach((spec, i) => (feeds[spec.name] = new ort.Tensor('float32', parameters.tensors[i], spec.dims)));
    const out = await this.session.run(feeds);
    const floats = (name: string) => out[name].data as Float32Array;
    return {
      loss: floats(TRAINING_OUTPUTS.loss)[0],
      chosenScores: floats(TRAINING_OUTPUTS.chosenScores),
      rejectedScores: floats(TRAINING_OUTPUTS.rejectedScores),
      margins: floats(TRAINING_OUTPUTS.margins),
      gradients: specs.map((spec) => floats(gradientName(spec.name))),
    };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/**
 * A training run in progress: seeded initial weights, Adam state and a loaded step session; each
 * `runEpoch` makes one seeded-shuffled pass over the pairs. `trainHead` drives it to the end; a
 * caller that checkpoints or measures between epochs can drive it itself. Call `release` when done.
 */
export class HeadTrainer {
  private readonly epochs: EpochMetrics[] = [];

  private constructor(
    private readonly pairs: PreferencePairs,
    private readonly weights: Float32Array,
    private readonly config: TrainingConfig,
    private readonly parameters: HeadParameters,
    private readonly adam: Adam,
    private readonly session: TrainingStepSession,
  ) {}

  static async create(pairs: PreferencePairs, config: TrainingConfig, options: EngineOptions = {}, resume?: TrainerState): Promise<HeadTrainer> {
    const count = validatePairs(pairs);
    validateTrainingConfig(config);
    const shape: HeadShape = { inputDim: pairs.dim, hidden: [...config.hidden] };
    const parameters = initialHeadParameters(shape, config.seed);
    const adam = new Adam(
      parameters.tensors.map((t) => t.length),
      { learningRate: config.learningRate, weightDecay: config.weightDecay ?? 0 },
    );
    if (resume) {
      checkParameters(resume.parameters, headParameterSpecs(shape));
      resume.parameters.tensors.forEach((t, k) => parameters.tensors[k].set(t));
      adam.restore(resume.adam);
    }
    const session = await TrainingStepSession.create(shape, config.loss, options);
    const trainer = new HeadTrainer(pairs, pairs.weights ?? new Float32Array(count).fill(1), config, parameters, adam, session);
    if (resume) trainer.epochs.push(...resume.epochs.map((e) => ({ ...e })));
    return trainer;
  }

  /** A copy of the state to checkpoint: continuing from it gives exactly what continuing here gives. */
  snapshot(): TrainerState {
    return { parameters: { shape: { ...this.parameters.shape, hidden: [...this.parameters.shape.hidden] }, tensors: this.parameters.tensors.map((t) => t.slice()) }, adam: this.adam.snapshot(), epochs: this.epochs.map((e) => ({ ...e })) };
  }

  /** Records the held-out alignment on the latest epoch's metrics. */
  setValidationAlignment(alignment: number): void {
    this.epochs[this.epochs.length - 1].validationAlignment = alignment;
  }

  get epochsDone(): number {
    return this.epochs.length;
  }

  async runEpoch(signal?: AbortSignal): Promise<EpochMetrics> {
    const { pairs, weights, config, parameters } = this;
    const count = weights.length;
    const epoch = this.epochs.length + 1;
    const order = permutation(count, seededRandom(`head-shuffle:${epoch}`, config.seed));
    let weightedLoss = 0;
    let weightTotal = 0;
    let aligned = 0;
    let steps = 0;
    for (let start = 0; start < count; start += config.batchSize) {
      signal?.throwIfAborted();
      const batch = gatherBatch(pairs, weights, order.subarray(start, Math.min(start + config.batchSize, count)));
      const step = await this.session.run(parameters, batch);
      if (!Number.isFinite(step.loss)) throw new Error(`training diverged: loss ${step.loss} at epoch ${epoch}, step ${steps + 1}`);
      this.adam.step(parameters.tensors, step.gradients);
      const batchWeight = sum(batch.weights);
      weightedLoss += step.loss * batchWeight;
      weightTotal += batchWeight;
      aligned += alignedCount(step.margins);
      steps++;
    }
    const metrics: EpochMetrics = { epoch, meanLoss: weightedLoss / weightTotal, alignment: aligned / count, steps };
    this.epochs.push(metrics);
    return metrics;
  }

  /** The weights and metrics so far (the live tensors: copy them to keep training afterwards). */
  result(): TrainingResult {
    return { parameters: this.parameters, epochs: [...this.epochs], steps: this.adam.steps };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** Trains a head from seeded initial weights for `config.epochs`; see the module comment for what makes it reproducible. */
export async function trainHead(pairs: PreferencePairs, config: TrainingConfig, options: EngineOptions = {}, hooks: TrainingHooks = {}): Promise<TrainingResult> {
  const trainer = await HeadTrainer.create(pairs, config, options, hooks.resume);
  try {
    while (trainer.epochsDone < config.epochs) {
      const metrics = await trainer.runEpoch(hooks.signal);
      if (hooks.validation) {
        metrics.validationAlignment = (await evaluatePairs(trainer.result().parameters, hooks.validation, options)).alignment;
        trainer.setValidationAlignment(metrics.validationAlignment);
      }
      await hooks.onEpoch?.({ ...metrics }, hooks.checkpoints ? trainer.snapshot() : undefined);
    }
    return trainer.result();
  } finally {
    await trainer.release();
  }
}

/** Copies the pairs `rows` into fresh contiguous batch tensors. */
export function gatherBatch(pairs: PreferencePairs, weights: Float32Array, rows: ArrayLike<number>): PairBatch {
  const dim = pairs.dim;
  const chosen = new Float32Array(rows.length * dim);
  const rejected = new Float32Array(rows.length * dim);
  const batchWeights = new Float32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    chosen.set(pairs.chosen.subarray(row * dim, (row + 1) * dim), i * dim);
    rejected.set(pairs.rejected.subarray(row * dim, (row + 1) * dim), i * dim);
    batchWeights[i] = weights[row];
  }
  return { chosen, rejected, weights: batchWeights };
}

/** Scores rows of joined embeddings with the head's inference graph (the one an export embeds). */
export class HeadScorer {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly dim: number,
  ) {}

  static async create(parameters: HeadParameters, options: EngineOptions = {}): Promise<HeadScorer> {
    const session = await ort.InferenceSession.create(buildHeadInferenceGraph(parameters), sessionOptions(options));
    return new HeadScorer(session, parameters.shape.inputDim);
  }

  /** `embeds` is [rows·D] row-major; returns [rows] scores. */
  async score(embeds: Float32Array): Promise<Float32Array> {
    if (embeds.length % this.dim !== 0) throw new RangeError(`embeddings of width ${this.dim} need a multiple of ${this.dim} values, got ${embeds.length}`);
    const rows = embeds.length / this.dim;
    const scores = new Float32Array(rows);
    for (let start = 0; start < rows; start += SCORE_BATCH) {
      const end = Math.min(start + SCORE_BATCH, rows);
      const input = new ort.Tensor('float32', embeds.slice(start * this.dim, end * this.dim), [end - start, this.dim]);
      const out = await this.session.run({ [INFERENCE_INPUT]: input });
      scores.set(out[INFERENCE_OUTPUT].data as Float32Array, start);
    }
    return scores;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

export interface PairEvaluation {
  /** Fraction of pairs whose chosen side scores higher (ties count ½). */
  alignment: number;
  chosenScores: Float32Array;
  rejectedScores: Float32Array;
}

/** Alignment of a trained head on (held-out) pairs, unweighted. */
export async function evaluatePairs(parameters: HeadParameters, pairs: PreferencePairs, options: EngineOptions = {}): Promise<PairEvaluation> {
  const count = validatePairs(pairs);
  if (pairs.dim !== parameters.shape.inputDim) throw new RangeError(`pairs have width ${pairs.dim}, the head takes ${parameters.shape.inputDim}`);
  const scorer = await HeadScorer.create(parameters, options);
  try {
    const chosenScores = await scorer.score(pairs.chosen);
    const rejectedScores = await scorer.score(pairs.rejected);
    const margins = chosenScores.map((s, i) => s - rejectedScores[i]);
    return { alignment: alignedCount(margins) / count, chosenScores, rejectedScores };
  } finally {
    await scorer.release();
  }
}

function alignedCount(margins: ArrayLike<number>): number {
  let aligned = 0;
  for (let i = 0; i < margins.length; i++) aligned += margins[i] > 0 ? 1 : margins[i] === 0 ? 0.5 : 0;
  return aligned;
}

function sum(values: Float32Array): number {
  let total = 0;
  for (let i = 0; i < values.length; i++) total += values[i];
  return total;
}

/** Checks pairs are well-formed and finite; returns how many there are. */
export function validatePairs(pairs: PreferencePairs): number {
  if (!Number.isSafeInteger(pairs.dim) || pairs.dim < 1) throw new RangeError(`pair width must be a positive integer, got ${pairs.dim}`);
  const count = pairs.chosen.length / pairs.dim;
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`chosen embeddings must hold n ≥ 1 rows of ${pairs.dim} values, got ${pairs.chosen.length} values`);
  if (pairs.rejected.length !== pairs.chosen.length) throw new RangeError(`rejected embeddings hold ${pairs.rejected.length} values, chosen ${pairs.chosen.length}`);
  if (!allFinite(pairs.chosen) || !allFinite(pairs.rejected)) throw new RangeError('embeddings must be finite numbers');
  if (pairs.weights) {
    if (pairs.weights.length !== count) throw new RangeError(`${count} pairs need ${count} weights, got ${pairs.weights.length}`);
    for (const w of pairs.weights) if (!(Number.isFinite(w) && w > 0)) throw new RangeError(`pair weights must be finite numbers > 0, got ${w}`);
  }
  return count;
}

export function validateTrainingConfig(config: TrainingConfig): void {
  validateLoss(config.loss);
  if (!Number.isSafeInteger(config.epochs) || config.epochs < 1) throw new RangeError(`epochs must be a positive integer, got ${config.epochs}`);
  if (!Number.isSafeInteger(config.batchSize) || config.batchSize < 1) throw new RangeError(`batch size must be a positive integer, got ${config.batchSize}`);
  if (!(Number.isFinite(config.learningRate) && config.learningRate > 0)) throw new RangeError(`learning rate must be a finite number > 0, got ${config.learningRate}`);
  if (!Number.isSafeInteger(config.seed)) throw new RangeError(`seed must be a safe integer, got ${config.seed}`);
}

function allFinite(values: Float32Array): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return false;
  return true;
}
