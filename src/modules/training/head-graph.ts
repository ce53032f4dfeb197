import { attr, elementTypeCode, OnnxGraph } from '../../platform/onnx-graph';

/**
 * ONNX graphs for a selector head: an MLP over joined (image, text) embeddings, D → hidden… → 1,
 * ReLU between layers. Parameters use torch.nn.Linear's layout (weight [out, in], bias [out]) so a
 * head trained here and one trained with PyTorch are interchangeable, and forward is
 * Gemm(x, W, b, transB=1).
 *
 * Two graphs:
 * - the training step (`buildTrainingStepGraph`): every parameter is a graph INPUT, so the Adam step
 *   in JS can change them between runs; outputs are the loss, the scores, the margins and the
 *   gradient of the loss wrt every parameter, computed by backward nodes written out below (ONNX
 *   Runtime's training build is not what onnxruntime-node ships);
 * - inference (`buildHeadInferenceGraph`, or `appendHeadForward` inside a bigger graph such as the
 *   encoder + head export): the trained weights as initializers, `embeds` [N, D] → `score` [N].
 */

export interface HeadShape {
  /** D: the joined embedding width (image dim + text dim). */
  inputDim: number;
  /** Widths of the hidden layers, e.g. [512, 512, 512] for the paper's head. */
  hidden: readonly number[];
}

export type PairwiseLoss =
  /** Bradley-Terry: w · softplus(−(s_chosen − s_rejected)). */
  | { kind: 'logistic' }
  /** w · max(0, margin − (s_chosen − s_rejected)). */
  | { kind: 'hinge'; margin: number };

export interface ParameterSpec {
  name: string;
  dims: number[];
}

/** A head's trained weights, in `headParameterSpecs` order. Plain data: it crosses worker threads. */
export interface HeadParameters {
  shape: HeadShape;
  tensors: Float32Array[];
}

export const TRAINING_OUTPUTS = {
  loss: 'loss',
  chosenScores: 'chosen_scores',
  rejectedScores: 'rejected_scores',
  margins: 'margins',
} as const;

export const TRAINING_INPUTS = { chosen: 'chosen', rejected: 'rejected', weights: 'weights' } as const;
export const INFERENCE_INPUT = 'embeds';
export const INFERENCE_OUTPUT = 'score';
const BATCH = 'batch';

export function gradientName(parameter: string): string {
  return `${parameter}.grad`;
}

export function validateHeadShape(shape: HeadShape): void {
  const widths = [shape.inputDim, ...shape.hidden];
  for (const width of widths) {
    if (!Number.isSafeInteger(width) || width < 1) throw new RangeError(`head layer widths must be positive integers, got [${widths.join(', ')}]`);
  }
}

/** The parameters of a head, layer by layer: layers.<i>.weight [out, in], then layers.<i>.bias [out]. */
export function headParameterSpecs(shape: HeadShape): ParameterSpec[] {
  validateHeadShape(shape);
  const widths = [shape.inputDim, ...shape.hidden, 1];
  const specs: ParameterSpec[] = [];
  for (let layer = 0; layer + 1 < widths.length; layer++) {
    specs.push({ name: `layers.${layer}.weight`, dims: [widths[layer + 1], widths[layer]] });
    specs.push({ name: `layers.${layer}.bias`, dims: [widths[layer + 1]] });
  }
  return specs;
}

export function layerCount(shape: HeadShape): number {
  return shape.hidden.length + 1;
}

/** Forward through the head from `input` [rows, D]; returns the pre-activation of every layer. */
function forwardLayers(graph: OnnxGraph, input: string, weights: readonly string[], biases: readonly string[], prefix: string): { preActivations: string[]; activations: string[] } {
  const preActivations: string[] = [];
  const activations: string[] = [input];
  for (let layer = 0; layer < weights.length; layer++) {
    const z = graph.op('Gemm', [activations[layer], weights[layer], biases[layer]], { transB: attr.int(1) }, `${prefix}z${layer}`);
    preActivations.push(z);
    if (layer + 1 < weights.length) activations.push(graph.op('Relu', [z], {}, `${prefix}a${layer + 1}`));
  }
  return { preActivations, activations };
}

/**
 * Adds the head's forward to `graph`, reading `input` [N, D], with `parameters` as initializers
 * (named `<prefix>layers.<i>.weight`…); returns the name of the [N] score it computes.
 */
export function appendHeadForward(graph: OnnxGraph, input: string, parameters: HeadParameters, prefix = 'head.'): string {
  const specs = headParameterSpecs(parameters.shape);
  checkParameters(parameters, specs);
  const names = specs.map((spec, i) => graph.initializer(`${prefix}${spec.name}`, parameters.tensors[i], spec.dims));
  const weights = names.filter((_, i) => i % 2 === 0);
  const biases = names.filter((_, i) => i % 2 === 1);
  const { preActivations } = forwardLayers(graph, input, weights, biases, prefix);
  const axes = graph.int64s(`${prefix}score_axes`, [1]);
  return graph.op('Squeeze', [preActivations[preActivations.length - 1], axes], {}, `${prefix}score`);
}

/**
 * Adds the head over an encoder's outputs: Concat(image_embeds [N, Di], text_embeds [N, Dt]) along
 * the features, image first (the order `joinEmbeddings` uses for training rows), then the head.
 * Returns the [N] score. This is how an export joins a trained head to its encoder.
 */
export function appendSelectorHead(graph: OnnxGraph, imageEmbeds: string, textEmbeds: string, parameters: HeadParameters, prefix = 'head.'): string {
  const joined = graph.op('Concat', [imageEmbeds, textEmbeds], { axis: attr.int(1) }, `${prefix}embeds`);
  return appendHeadForward(graph, joined, parameters, prefix);
}

/** Rows of joined embeddings, [N, Di + Dt]: each image row followed by its text row. */
export function joinEmbeddings(imageEmbeds: Float32Array, imageDim: number, textEmbeds: Float32Array, textDim: number): Float32Array {
  const rows = imageEmbeds.length / imageDim;
  if (!Number.isInteger(rows) || textEmbeds.length !== rows * textDim) throw new RangeError(`image embeddings [${imageEmbeds.length}/${imageDim}] and text embeddings [${textEmbeds.length}/${textDim}] must have the same number of rows`);
  const width = imageDim + textDim;
  const joined = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) {
    joined.set(imageEmbeds.subarray(r * imageDim, (r + 1) * imageDim), r * width);
    joined.set(textEmbeds.subarray(r * textDim, (r + 1) * textDim), r * width + imageDim);
  }
  return joined;
}

/** An inference-only model of the trained head: `embeds` float32 [N, D] → `score` float32 [N]. */
export function buildHeadInferenceGraph(parameters: HeadParameters, metadata: Record<string, string> = {}): Buffer {
  const graph = new OnnxGraph('selector_head');
  const embeds = graph.input(INFERENCE_INPUT, 'float32', [BATCH, parameters.shape.inputDim]);
  const score = appendHeadForward(graph, embeds, parameters);
  graph.op('Identity', [score], {}, INFERENCE_OUTPUT);
  graph.output(INFERENCE_OUTPUT, 'float32', [BATCH]);
  return graph.encode({ producerName: 'biomed-vital-api', docString: 'Selector head (MLP over joined image and text embeddings)', metadata });
}

/**
 * The training step: inputs `chosen` and `rejected` [B, D], `weights` [B] and every parameter;
 * outputs `loss` (Σ w·ℓ / Σ w, a scalar), `chosen_scores`, `rejected_scores`, `margins` [B]
 * and `<parameter>.grad` for each parameter, d loss / d parameter.
 *
 * Chosen and rejected rows go through the layers as one [2B, D] batch, so each layer is one GEMM
 * forward and two backward.
 */
export function buildTrainingStepGraph(shape: HeadShape, loss: PairwiseLoss): Buffer {
  validateLoss(loss);
  const specs = headParameterSpecs(shape);
  const graph = new OnnxGraph('selector_head_training_step');
  const chosen = graph.input(TRAINING_INPUTS.chosen, 'float32', [BATCH, shape.inputDim]);
  const rejected = graph.input(TRAINING_INPUTS.rejected, 'float32', [BATCH, shape.inputDim]);
  const weights = graph.input(TRAINING_INPUTS.weights, 'float32', [BATCH]);
  const parameterNames = specs.map((spec) => graph.input(spec.name, 'float32', spec.dims));
  const layerWeights = parameterNames.filter((_, i) => i % 2 === 0);
  const layerBiases = parameterNames.filter((_, i) => i % 2 === 1);

  const axis0 = graph.int64s('axis0', [0]);
  const axis1 = graph.int64s('axis1', [1]);
  const zero = graph.floats('zero', [0], []);

  // Forward over both sides at once.
  const rows = graph.op('Concat', [chosen, rejected], { axis: attr.int(0) }, 'rows');
  const { preActivations, activations } = forwardLayers(graph, rows, layerWeights, layerBiases, '');
  const scores = graph.op('Squeeze', [preActivations[preActivations.length - 1], axis1], {}, 'scores');
  const [chosenScores, rejectedScores] = graph.node('Split', [scores], [TRAINING_OUTPUTS.chosenScores, TRAINING_OUTPUTS.rejectedScores], { axis: attr.int(0) });
  const margins = graph.op('Sub', [chosenScores, rejectedScores], {}, TRAINING_OUTPUTS.margins);

  // Loss per pair and d(per-pair loss)/d margin, both before weighting.
  let perPair: string;
  let slope: string;
  if (loss.kind === 'logistic') {
    const negated = graph.op('Neg', [margins]);
    perPair = graph.op('Softplus', [negated], {}, 'pair_loss');
    // d softplus(−m)/dm = −sigmoid(−m)
    slope = graph.op('Neg', [graph.op('Sigmoid', [negated])], {}, 'pair_slope');
  } else {
    const shortfall = graph.op('Sub', [graph.floats('hinge_margin', [loss.margin], []), margins]);
    perPair = graph.op('Relu', [shortfall], {}, 'pair_loss');
    // d max(0, margin − m)/dm = −1 where the pair is inside the margin, else 0 (0 at the kink, as torch).
    const active = graph.op('Cast', [graph.op('Greater', [shortfall, zero])], { to: attr.int(elementTypeCode('float32')) });
    slope = graph.op('Neg', [active], {}, 'pair_slope');
  }
  const weightSum = graph.op('ReduceSum', [weights], { keepdims: attr.int(0) }, 'weight_sum');
  const weightedLoss = graph.op('ReduceSum', [graph.op('Mul', [weights, perPair])], { keepdims: attr.int(0) });
  graph.op('Div', [weightedLoss, weightSum], {}, TRAINING_OUTPUTS.loss);

  // Backward: d loss / d margin = w · slope / Σw; d margin / d s_chosen = 1, / d s_rejected = −1.
  const marginGrad = graph.op('Div', [graph.op('Mul', [weights, slope]), weightSum], {}, 'margin_grad');
  const scoreGrad = graph.op('Concat', [marginGrad, graph.op('Neg', [marginGrad])], { axis: attr.int(0) }, 'score_grad');
  let outputGrad = graph.op('Unsqueeze', [scoreGrad, axis1], {}, `z${layerWeights.length - 1}.grad`);
  const gradients: string[] = new Array(specs.length);
  for (let layer = layerWeights.length - 1; layer >= 0; layer--) {
    // z = a·Wᵀ + b  ⇒  dW = dzᵀ·a, db = Σ_rows dz, da = dz·W
    gradients[2 * layer] = graph.op('Gemm', [outputGrad, activations[layer]], { transA: attr.int(1) }, gradientName(layerWeights[layer]));
    gradients[2 * layer + 1] = graph.op('ReduceSum', [outputGrad, axis0], { keepdims: attr.int(0) }, gradientName(layerBiases[layer]));
    if (layer === 0) break;
    const activationGrad = graph.op('MatMul', [outputGrad, layerWeights[layer]], {}, `a${layer}.grad`);
    // ReLU passes the gradient where its input was positive.
    const open = graph.op('Greater', [preActivations[layer - 1], zero]);
    outputGrad = graph.op('Where', [open, activationGrad, zero], {}, `z${layer - 1}.grad`);
  }

  graph.output(TRAINING_OUTPUTS.loss, 'float32', []);
  graph.output(chosenScores, 'float32', [BATCH]);
  graph.output(rejectedScores, 'float32', [BATCH]);
  graph.output(margins, 'float32', [BATCH]);
  specs.forEach((spec, i) => graph.output(gradients[i], 'float32', spec.dims));
  return graph.encode({ producerName: 'biomed-vital-api', docString: `Selector head training step (${loss.kind} pairwise loss)` });
}

export function validateLoss(loss: PairwiseLoss): void {
  if (loss.kind === 'hinge' && !(Number.isFinite(loss.margin) && loss.margin >= 0)) throw new RangeError(`hinge margin must be a finite number ≥ 0, got ${loss.margin}`);
  if (loss.kind !== 'logistic' && loss.kind !== 'hinge') throw new RangeError(`unknown pairwise loss ${(loss as { kind: string }).kind}`);
}

export function checkParameters(parameters: HeadParameters, specs: ParameterSpec[] = headParameterSpecs(parameters.shape)): void {
  if (parameters.tensors.length !== specs.length) throw new RangeError(`head has ${specs.length} parameter tensors, got ${parameters.tensors.length}`);
  specs.forEach((spec, i) => {
    const expected = spec.dims.reduce((a, b) => a * b, 1);
    if (parameters.tensors[i].length !== expected) throw new RangeError(`${spec.name} needs ${expected} values ([${spec.dims.join(', ')}]), got ${parameters.tensors[i].length}`);
  });
}
