import type { TensorSignature, ThreadedSession } from '../../platform/onnx';
import type { TextTokenizer } from '../../platform/tokenizer';
import { contractProblems } from '../selectors/selector-runner';
import { ENCODER_OUTPUTS, EncoderManifest, selectorManifestOf } from './encoder-manifest';

/** One row to embed: preprocessed pixels and a text. */
export interface EncoderRow {
  pixels: Float32Array;
  text: string;
}

/** Embeddings of a batch, row-major: [n·Di] and [n·Dt]. */
export interface BatchEmbeddings {
  image: Float32Array;
  text: Float32Array;
}

/**
 * Checks a loaded model against the encoder contract: the selector's inputs (checked by the
 * selector's own check, so the two contracts cannot drift apart) and two float32 outputs
 * `image_embeds` [N, Di] and `text_embeds` [N, Dt] whose fixed widths match the manifest.
 */
export function encoderContractProblems(inputs: TensorSignature[], outputs: TensorSignature[], manifest: EncoderManifest): string[] {
  const inputProblems = contractProblems(inputs, [{ name: 'score', type: 'float32', dims: ['batch'] }], selectorManifestOf(manifest));
  const problems = [...inputProblems];
  const byName = new Map(outputs.map((o) => [o.name, o]));
  for (const [which, name] of Object.entries(ENCODER_OUTPUTS) as ['image' | 'text', string][]) {
    const output = byName.get(name);
    if (!output) {
      problems.push(`missing output \`${name}\` (the model has ${outputs.map((o) => `\`${o.name}\``).join(', ') || 'none'})`);
      continue;
    }
    if (output.type !== 'float32') problems.push(`output \`${name}\` is ${output.type ?? 'not a tensor'}, expected float32`);
    const dims = output.dims ?? [];
    if (dims.length !== 2) problems.push(`output \`${name}\` has rank ${dims.length}, expected 2 ([N, D])`);
    const width = dims[1];
    const expected = which === 'image' ? manifest.embeddings.imageDim : manifest.embeddings.textDim;
    if (typeof width === 'number' && width !== expected) problems.push(`output \`${name}\` has width ${width}, the manifest says ${expected}`);
  }
  return problems;
}

/** A loaded encoder: turns rows into image and text embeddings with ONNX Runtime, in the session's own thread. */
export class EncoderRunner {
  constructor(
    readonly session: ThreadedSession,
    readonly tokenizer: TextTokenizer,
    readonly manifest: EncoderManifest,
  ) {}

  async embed(rows: EncoderRow[]): Promise<BatchEmbeddings> {
    const n = rows.length;
    const { imageDim, textDim } = this.manifest.embeddings;
    if (n === 0) return { image: new Float32Array(0), text: new Float32Array(0) };
    const size = this.manifest.image.size;
    const maxLength = this.manifest.text.maxLength;
    const { inputIds, attentionMask } = this.tokenizer.encodeBatch(
      rows.map((r) => r.text),
      maxLength,
    );
    const plane = 3 * size * size;
    const pixels = new Float32Array(n * plane);
    rows.forEach((row, i) => pixels.set(row.pixels, i * plane));
    const outputs = await this.session.runOutputs({ rows: n, imageSize: size, maxLength, pixels, inputIds, attentionMask }, [ENCODER_OUTPUTS.image, ENCODER_OUTPUTS.text]);
    const image = outputs[ENCODER_OUTPUTS.image];
    const text = outputs[ENCODER_OUTPUTS.text];
    if (image.data.length !== n * imageDim) throw new Error(`The encoder returned image_embeds of shape [${image.dims.join(', ')}] for ${n} rows, expected [${n}, ${imageDim}]`);
    if (text.data.length !== n * textDim) throw new Error(`The encoder returned text_embeds of shape [${text.dims.join(', ')}] for ${n} rows, expected [${n}, ${textDim}]`);
    return { image: image.data, text: text.data };
  }
}
