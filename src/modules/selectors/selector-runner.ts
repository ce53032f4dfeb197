import type { TensorSignature, ThreadedSession } from '../../platform/onnx';
import type { TextTokenizer } from '../../platform/tokenizer';
import { SELECTOR_INPUTS, SelectorManifest } from './selector-manifest';

/** One row to score: the preprocessed image and the candidate's text. */
export interface SelectorRow {
  pixels: Float32Array;
  text: string;
}

export interface RunnerTimings {
  tokenizeMs: number;
  inferMs: number;
}

/**
 * Checks a loaded model against the selector contract (DESIGN.md §5) and the manifest; returns
 * what is wrong, empty when the model fits.
 */
export function contractProblems(inputs: TensorSignature[], outputs: TensorSignature[], manifest: SelectorManifest): string[] {
  const problems: string[] = [];
  const byName = new Map(inputs.map((i) => [i.name, i]));
  for (const [name, expected] of Object.entries(SELECTOR_INPUTS)) {
    const input = byName.get(name);
    if (!input) {
      problems.push(`missing input \`${name}\` (the model has ${inputs.map((i) => `\`${i.name}\``).join(', ') || 'none'})`);
      continue;
    }
    if (input.type !== expected.type) problems.push(`input \`${name}\` is ${input.type ?? 'not a tensor'}, expected ${expected.type}`);
    if (!input.dims || input.dims.length !== expected.rank) problems.push(`input \`${name}\` has rank ${input.dims?.length ?? '?'}, expected ${expected.rank}`);
  }
  for (const extra of inputs.filter((i) => !(i.name in SELECTOR_INPUTS))) problems.push(`unexpected input \`${extra.name}\``);

  const pixels = byName.get('pixel_values')?.dims;
  if (pixels?.length === 4) {
    const [, channels, height, width] = pixels;
    if (typeof channels === 'number' && channels !== 3) problems.push(`input \`pixel_values\` has ${channels} channels, expected 3`);
    for (const [label, dim] of [['height', height], ['width', width]] as const) {
      if (typeof dim === 'number' && dim !== manifest.image.size) problems.push(`input \`pixel_values\` ${label} is ${dim}, the manifest says ${manifest.image.size}`);
    }
  }
  for (const name of ['input_ids', 'attention_mask']) {
    const length = byName.get(name)?.dims?.[1];
    if (typeof length === 'number' && length !== manifest.text.maxLength) problems.push(`input \`${name}\` length is ${length}, the manifest's maxLength is ${manifest.text.maxLength}`);
  }

  const output = outputs[0];
  if (!output) problems.push('the model has no output');
  else {
    if (output.type !== 'float32') problems.push(`output \`${output.name}\` is ${output.type ?? 'not a tensor'}, expected float32`);
    const dims = output.dims ?? [];
    const oneScorePerRow = dims.length === 1 || (dims.length === 2 && (dims[1] === 1 || typeof dims[1] === 'string'));
    if (!oneScorePerRow) problems.push(`output \`${output.name}\` has shape [${dims.join(', ')}], expected [N] or [N, 1]`);
  }
  return problems;
}

/** Largest batch pixel buffer kept for the next batch. */
const SPARE_PIXELS_MAX_BYTES = 64 * 1024 * 1024;

/** A loaded selector: turns rows into one score per row with ONNX Runtime, in the session's own thread. */
export class SelectorRunner {
  /**
   * The last batch's pixel buffer, free for the next batch of the same size: a fresh one costs
   * zeroing and page faults over megabytes each batch. It travels to the session's thread and back
   * (transferred, not copied). Taken while in use, so concurrent batches (two runs with one selector)
   * never share one.
   */
  private sparePixels: Float32Array | null = null;

  constructor(
    readonly session: ThreadedSession,
    readonly tokenizer: TextTokenizer,
    readonly manifest: SelectorManifest,
  ) {}

  /** Scores in row order; a row's score may be NaN or infinite, which callers must treat as a failure. */
  async score(rows: SelectorRow[], timings?: RunnerTimings): Promise<Float32Array> {
    if (rows.length === 0) return new Float32Array(0);
    const n = rows.length;
    const { size } = this.manifest.image;
    const maxLength = this.manifest.text.maxLength;

    let started = performance.now();
    const { inputIds, attentionMask } = this.tokenizer.encodeBatch(
      rows.map((r) => r.text),
      maxLength,
    );
    const plane = 3 * size * size;
    const spare = this.sparePixels;
    const pixels = spare?.length === n * plane ? spare : new Float32Array(n * plane);
    if (pixels === spare) this.sparePixels = null;
    // Every element is written: row i fills [i * plane, (i + 1) * plane).
    rows.forEach((row, i) => pixels.set(row.pixels, i * plane));
    if (timings) timings.tokenizeMs += performance.now() - started;

    started = performance.now();
    const output = await this.session.runSelector({ rows: n, imageSize: size, maxLength, pixels, inputIds, attentionMask });
    if (output.feeds.pixels.byteLength <= SPARE_PIXELS_MAX_BYTES) this.sparePixels = output.feeds.pixels;
    if (timings) timings.inferMs += performance.now() - started;
    const { scores, dims } = output;
    if (scores.length !== n) throw new Error(`The selector returned ${scores.length} scores for ${n} rows (shape [${dims.join(', ')}])`);
    return scores;
  }
}
