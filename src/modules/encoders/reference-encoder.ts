import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { attr, elementTypeCode, OnnxGraph } from '../../platform/onnx-graph';
import { CLIP_MEAN, CLIP_STD, heUniform, mulberry32, referenceTokenizerJson, uniform } from '../selectors/reference-selector';
import { BERT_VOCAB_SIZE } from '../selectors/wordpiece-tokenizer';
import { ENCODER_CONTRACT, ENCODER_FILE_NAMES, ENCODER_OUTPUTS, EncoderManifest, encoderManifestSchema } from './encoder-manifest';

/**
 * The project's own reference encoder (DESIGN.md §5), built from code like the reference selector
 * and with the same two branches, minus the head: a seeded baseline with random weights, so that
 * training, evaluation and their tests run offline. Not a clinical model.
 *
 *   image: pixel_values [N,3,S,S] → AveragePool 4×4 → Conv 3×3/2 (C) → Relu → GlobalAveragePool → image_embeds [N,C]
 *   text:  Gather(input_ids) from a [30522, Dt] table → mean over the tokens attention_mask keeps → text_embeds [N,Dt]
 *
 * The same options always give byte-identical files.
 */
export interface ReferenceEncoderOptions {
  /** Seeds every weight (default 11; an integer, used modulo 2^32). */
  seed?: number;
  /** Side of the square image (default 64). */
  imageSize?: number;
  /** Max tokens per text (default 128). */
  maxLength?: number;
  /** Di, conv channels of the image branch (default 16). */
  imageDim?: number;
  /** Dt, width of the token embedding table (default 32). */
  textDim?: number;
  /** Test fixture: name the text output differently, breaking the contract. */
  textOutputName?: string;
  /** Test fixture: declare a text width in the manifest other than the model's. */
  manifestTextDim?: number;
}

export interface EncoderFiles {
  model: Buffer;
  tokenizer: string;
  manifest: EncoderManifest;
}

export function buildReferenceEncoder(options: ReferenceEncoderOptions = {}): EncoderFiles {
  const seed = options.seed ?? 11;
  const imageSize = options.imageSize ?? 64;
  const maxLength = options.maxLength ?? 128;
  const imageDim = options.imageDim ?? 16;
  const textDim = options.textDim ?? 32;
  if (!Number.isSafeInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
  for (const [name, value, min, max] of [['imageSize', imageSize, 8, 1024], ['maxLength', maxLength, 4, 4096], ['imageDim', imageDim, 1, 4096], ['textDim', textDim, 1, 4096]] as const) {
    if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
  const manifest = encoderManifestSchema.parse({
    contract: ENCODER_CONTRACT,
    description: `Reference encoder: a seeded baseline with random weights (seed ${seed}), built from code; not a clinical model.`,
    image: { size: imageSize, resize: 'cover', mean: CLIP_MEAN, std: CLIP_STD, alpha: 'drop', exifOrientation: 'ignore' },
    text: { maxLength, fields: ['caption', 'question', 'answer'], rounds: 'all', separator: ' ' },
    embeddings: { imageDim, textDim: options.manifestTextDim ?? textDim },
  } satisfies EncoderManifest);

  const random = mulberry32(seed);
  const g = new OnnxGraph('biomed_vital_reference_encoder');
  const pixels = g.input('pixel_values', 'float32', ['batch', 3, imageSize, imageSize]);
  const pooled = g.op('AveragePool', [pixels], { kernel_shape: attr.ints([4, 4]), strides: attr.ints([4, 4]) });
  const weight = g.initializer('image.conv1.weight', heUniform(random, imageDim * 3 * 9, 3 * 9), [imageDim, 3, 3, 3]);
  const bias = g.initializer('image.conv1.bias', new Float32Array(imageDim), [imageDim]);
  const conv = g.op('Relu', [g.op('Conv', [pooled, weight, bias], { kernel_shape: attr.ints([3, 3]), strides: attr.ints([2, 2]), pads: attr.ints([1, 1, 1, 1]) })]);
  g.op('Flatten', [g.op('GlobalAveragePool', [conv])], { axis: attr.int(1) }, ENCODER_OUTPUTS.image);

  const inputIds = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const attentionMask = g.input('attention_mask', 'int64', ['batch', 'sequence']);
  const table = g.initializer('text.embedding', uniform(random, BERT_VOCAB_SIZE * textDim, 0.5), [BERT_VOCAB_SIZE, textDim]);
  const embedded = g.op('Gather', [table, inputIds], { axis: attr.int(0) });
  const mask = g.op('Cast', [attentionMask], { to: attr.int(elementTypeCode('float32')) });
  const masked = g.op('Mul', [embedded, g.op('Unsqueeze', [mask, g.int64s('axis_last', [2])])]);
  const sequenceAxis = g.int64s('axis_sequence', [1]);
  const summed = g.op('ReduceSum', [masked, sequenceAxis], { keepdims: attr.int(0) });
  const count = g.op('Max', [g.op('ReduceSum', [mask, sequenceAxis], { keepdims: attr.int(1) }), g.floats('one', [1])]);
  const textName = options.textOutputName ?? ENCODER_OUTPUTS.text;
  g.op('Div', [summed, count], {}, textName);

  g.output(ENCODER_OUTPUTS.image, 'float32', ['batch', imageDim]);
  g.output(textName, 'float32', ['batch', textDim]);
  const model = g.encode({
    producerName: 'biomed-vital-api',
    producerVersion: 'reference-encoder/1',
    docString: manifest.description,
    metadata: { seed: String(seed), image_size: String(imageSize), max_length: String(maxLength) },
  });
  return { model, tokenizer: referenceTokenizerJson(), manifest };
}

/** Writes model.onnx, tokenizer.json and encoder.json into `dir` (created if needed); each file is replaced whole. */
export async function writeEncoderFolder(dir: string, files: EncoderFiles): Promise<{ name: string; path: string; bytes: number; sha256: string }[]> {
  await fs.mkdir(dir, { recursive: true });
  const contents: [string, Buffer][] = [
    [ENCODER_FILE_NAMES.model, files.model],
    [ENCODER_FILE_NAMES.tokenizer, Buffer.from(files.tokenizer, 'utf8')],
    [ENCODER_FILE_NAMES.manifest, Buffer.from(`${JSON.stringify(files.manifest, null, 2)}\n`, 'utf8')],
  ];
  const written = [];
  for (const [name, bytes] of contents) {
    const target = path.join(dir, name);
    const temporary = `${target}.${process.pid}.tmp`;
    await fs.writeFile(temporary, bytes);
    await fs.rename(temporary, target);
    written.push({ name, path: target, bytes: bytes.length, sha256: crypto.createHash('sha256').update(bytes).digest('hex') });
  }
  return written;
}
