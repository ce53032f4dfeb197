import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { attr, elementTypeCode, OnnxGraph } from '../../platform/onnx-graph';
import { SELECTOR_CONTRACT, SELECTOR_FILE_NAMES, SelectorManifest, selectorManifestSchema } from './selector-manifest';
import { BERT_VOCAB_SIZE, buildBertTokenizerJson } from './wordpiece-tokenizer';

/**
 * The project's own reference selector (DESIGN.md §5), built from code: no Python, no download.
 * It is a seeded, untrained baseline (random weights), not a clinical model; it exists so scoring,
 * its tests and benchmarks run offline against a model that follows the selector contract.
 *
 *   image: pixel_values [N,3,S,S] → AveragePool 4×4 → Conv 3×3/2 (16) → Relu → GlobalAveragePool → [N,16]
 *          (profile "heavy": four full-resolution Conv 3×3 + Relu layers, 32/64/64/64 channels, instead;
 *          about 1.5 GMAC per 128×128 image)
 *   text:  Gather(input_ids) from a [30522, 32] embedding table → mean over the tokens attention_mask
 *          keeps (count clamped to ≥ 1) → [N,32]
 *   head:  Concat → Gemm (32) → Relu → Gemm (1) → score [N,1] (or [N] with outputShape "vector")
 *
 * The same options always give byte-identical files.
 */


export type SelectorInputName = 'pixel_values' | 'input_ids' | 'attention_mask';
export type ReferenceProfile = 'reference' | 'heavy';

export interface ReferenceSelectorOptions {
  /** Seeds every weight (default 7; an integer, used modulo 2^32). */
  seed?: number;
  /** Side of the square image (default 64; 128 for the heavy profile). */
  imageSize?: number;
  /** Max tokens per text, written to the manifest (default 128). */
  maxLength?: number;
  /** "heavy" adds real convolution compute on the image branch, for benchmarks. */
  profile?: ReferenceProfile;
  /** Test fixtures: rename graph inputs, breaking the contract. */
  inputNames?: Partial<Record<SelectorInputName, string>>;
  /** Test fixture: declare pixel_values as rank 3 ([N,3,S*S]), breaking the contract; the graph stays valid. */
  pixelRank?: 3;
  /** "column" (default) outputs [N,1], "vector" outputs [N]. */
  outputShape?: 'vector' | 'column';
  /** Test fixture: rows whose mean normalised pixel is below this score NaN (the graph adds 0 × log(mean − threshold)). */
  nanBelowMeanPixel?: number;
}

export interface SelectorFiles {
  model: Buffer;
  tokenizer: string;
  manifest: SelectorManifest;
}

export interface WrittenSelectorFile {
  name: string;
  path: string;
  bytes: number;
  sha256: string;
}

export const REFERENCE_OUTPUT_NAME = 'score';
const TEXT_DIM = 32;
const HIDDEN_DIM = 32;
export const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

let bertTokenizerJson: string | undefined;

/** The BERT tokenizer.json the reference models ship (built once per process). */
export function referenceTokenizerJson(): string {
  return (bertTokenizerJson ??= buildBertTokenizerJson());
}

export function buildReferenceSelector(options: ReferenceSelectorOptions = {}): SelectorFiles {
  const profile = options.profile ?? 'reference';
  const seed = options.seed ?? 7;
  const imageSize = options.imageSize ?? (profile === 'heavy' ? 128 : 64);
  const maxLength = options.maxLength ?? 128;
  if (!Number.isSafeInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
  if (!Number.isInteger(imageSize) || imageSize < 8 || imageSize > 1024) throw new Error(`imageSize must be an integer from 8 to 1024, got ${imageSize}`);
  if (!Number.isInteger(maxLength) || maxLength < 4 || maxLength > 4096) throw new Error(`maxLength must be an integer from 4 to 4096, got ${maxLength}`);
  const names: Record<SelectorInputName, string> = { pixel_values: 'pixel_values', input_ids: 'input_ids', attention_mask: 'attention_mask', ...options.inputNames };

  const manifest = selectorManifestSchema.parse({
    contract: SELECTOR_CONTRACT,
    description: `${profile === 'heavy' ? 'Heavy reference selector' : 'Reference selector'}: a seeded baseline with random weights (seed ${seed}), built from code; not a clinical model.`,
    // Written out although they are the defaults, so the selector.json a lab reads says how to preprocess.
    image: { size: imageSize, resize: 'cover', mean: CLIP_MEAN, std: CLIP_STD, alpha: 'drop', exifOrientation: 'ignore' },
    text: { maxLength, fields: ['caption', 'question', 'answer'], rounds: 'all', separator: ' ' },
    score: 'logit',
  } satisfies SelectorManifest);

  const random = mulberry32(seed);
  const g = new OnnxGraph(`biomed_vital_${profile}_selector`);

  // Image branch → [N, C].
  const pixelDims = options.pixelRank === 3 ? ['batch', 3, imageSize * imageSize] : ['batch', 3, imageSize, imageSize];
  let image = g.input(names.pixel_values, 'float32', pixelDims);
  if (options.pixelRank === 3) image = g.op('Reshape', [image, g.int64s('image_shape', [0, 3, imageSize, imageSize])]);
  const pixels = image;
  let channels = 3;
  const conv = (name: string, out: number, kernel: number, stride: number) => {
    const weight = g.initializer(`${name}.weight`, heUniform(random, out * channels * kernel * kernel, channels * kernel * kernel), [out, channels, kernel, kernel]);
    const bias = g.initializer(`${name}.bias`, new Float32Array(out), [out]);
    const pad = (kernel - 1) >> 1;
    image = g.op('Relu', [g.op('Conv', [image, weight, bias], { kernel_shape: attr.ints([kernel, kernel]), strides: attr.ints([stride, stride]), pads: attr.ints([pad, pad, pad, pad]) })]);
    channels = out;
  };
  if (profile === 'heavy') {
    conv('image.conv1', 32, 3, 1);
    conv('image.conv2', 64, 3, 1);
    conv('image.conv3', 64, 3, 1);
    conv('image.conv4', 64, 3, 1);
  } else {
    image = g.op('AveragePool', [image], { kernel_shape: attr.ints([4, 4]), strides: attr.ints([4, 4]) });
    conv('image.conv1', 16, 3, 2);
  }
  const imageFeatures = g.op('Flatten', [g.op('GlobalAveragePool', [image])], { axis: attr.int(1) });

  // Text branch: masked mean of token embeddings → [N, TEXT_DIM].
  const inputIds = g.input(names.input_ids, 'int64', ['batch', 'sequence']);
  const attentionMask = g.input(names.attention_mask, 'int64', ['batch', 'sequence']);
  const table = g.initializer('text.embedding', uniform(random, BERT_VOCAB_SIZE * TEXT_DIM, 0.5), [BERT_VOCAB_SIZE, TEXT_DIM]);
  const embedded = g.op('Gather', [table, inputIds], { axis: attr.int(0) });
  const mask = g.op('Cast', [attentionMask], { to: attr.int(elementTypeCode('float32')) });
  const masked = g.op('Mul', [embedded, g.op('Unsqueeze', [mask, g.int64s('axis_last', [2])])]);
  const sequenceAxis = g.int64s('axis_sequence', [1]);
  const summed = g.op('ReduceSum', [masked, sequenceAxis], { keepdims: attr.int(0) });
  const count = g.op('Max', [g.op('ReduceSum', [mask, sequenceAxis], { keepdims: attr.int(1) }), g.floats('one', [1])]);
  const textFeatures = g.op('Div', [summed, count]);

  // Head → [N, 1] (or [N]).
  const joined = g.op('Concat', [imageFeatures, textFeatures], { axis: attr.int(1) });
  const dense = (name: string, inDim: number, outDim: number, input: string, weights: Float32Array, outputName?: string) =>
    g.op('Gemm', [input, g.initializer(`${name}.weight`, weights, [inDim, outDim]), g.initializer(`${name}.bias`, new Float32Array(outDim), [outDim])], {}, outputName);
  const joinedDim = channels + TEXT_DIM;
  const hidden = g.op('Relu', [dense('head.fc1', joinedDim, HIDDEN_DIM, joined, heUniform(random, joinedDim * HIDDEN_DIM, joinedDim))]);
  const vector = options.outputShape === 'vector';
  const faulty = options.nanBelowMeanPixel !== undefined;
  let column = dense('head.fc2', HIDDEN_DIM, 1, hidden, xavierUniform(random, HIDDEN_DIM, HIDDEN_DIM, 1), vector || faulty ? undefined : REFERENCE_OUTPUT_NAME);
  if (faulty) {
    const meanPixel = g.op('ReduceMean', [pixels], { axes: attr.ints([1, 2, 3]), keepdims: attr.int(0) });
    const poison = g.op('Mul', [g.op('Log', [g.op('Sub', [meanPixel, g.floats('nan_threshold', [options.nanBelowMeanPixel!])])]), g.floats('zero', [0])]);
    column = g.op('Add', [column, g.op('Unsqueeze', [poison, g.int64s('axis_poison', [1])])], {}, vector ? undefined : REFERENCE_OUTPUT_NAME);
  }
  if (vector) g.op('Squeeze', [column, g.int64s('axis_column', [1])], {}, REFERENCE_OUTPUT_NAME);
  g.output(REFERENCE_OUTPUT_NAME, 'float32', vector ? ['batch'] : ['batch', 1]);

  const model = g.encode({
    producerName: 'biomed-vital-api',
    producerVersion: 'reference-selector/1',
    docString: manifest.description,
    metadata: { profile, seed: String(seed), image_size: String(imageSize), max_length: String(maxLength) },
  });
  bertTokenizerJson ??= buildBertTokenizerJson();
  return { model, tokenizer: bertTokenizerJson, manifest };
}

/** Writes model.onnx, tokenizer.json and selector.json into `dir` (created if needed); each file is replaced whole. */
export async function writeSelectorFolder(dir: string, files: SelectorFiles): Promise<WrittenSelectorFile[]> {
  await fs.mkdir(dir, { recursive: true });
  const contents: [string, Buffer][] = [
    [SELECTOR_FILE_NAMES.model, files.model],
    [SELECTOR_FILE_NAMES.tokenizer, Buffer.from(files.tokenizer, 'utf8')],
    [SELECTOR_FILE_NAMES.manifest, Buffer.from(`${JSON.stringify(files.manifest, null, 2)}\n`, 'utf8')],
  ];
  const written: WrittenSelectorFile[] = [];
  for (const [name, bytes] of contents) {
    const target = path.join(dir, name);
    const temporary = `${target}.${process.pid}.tmp`;
    await fs.writeFile(temporary, bytes);
    await fs.rename(temporary, target);
    written.push({ name, path: target, bytes: bytes.length, sha256: crypto.createHash('sha256').update(bytes).digest('hex') });
  }
  return written;
}

/** Held locally: under jest's vm sandbox every global lookup (`Math`) in a hot loop is slow. */
const imul = Math.imul;

/** mulberry32: a tiny, fast 32-bit PRNG; uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = imul(t ^ (t >>> 15), t | 1);
    t ^= t + imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function uniform(random: () => number, count: number, limit: number): Float32Array {
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = (random() * 2 - 1) * limit;
  return values;
}

/** He (Kaiming) uniform, for weights followed by Relu. */
export function heUniform(random: () => number, count: number, fanIn: number): Float32Array {
  return uniform(random, count, Math.sqrt(6 / fanIn));
}

function xavierUniform(random: () => number, count: number, fanIn: number, fanOut: number): Float32Array {
  return uniform(random, count, Math.sqrt(6 / (fanIn + fanOut)));
}
