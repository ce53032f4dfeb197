import { move, transferableSymbol, valueSymbol } from 'piscina';
import { describeInputs, describeOutputs, OnnxOptions, OnnxRuntime, ExecutionProvider, ort, TensorSignature } from './onnx';

/**
 * The ONNX Runtime side of a session thread (see ThreadedSession in onnx.ts): these functions run
 * inside a compute thread, which keeps its sessions by id between calls.
 */

const sessions = new Map<string, ort.InferenceSession>();

export interface LoadedInThread {
  provider: ExecutionProvider;
  inputs: TensorSignature[];
  outputs: TensorSignature[];
}

/**
 * One batch of selector inputs, row-major. Their buffers are transferred to the thread and back
 * with the result (ONNX Runtime refuses tensors over a SharedArrayBuffer), so nothing is copied.
 */
export interface SelectorFeeds {
  rows: number;
  imageSize: number;
  maxLength: number;
  pixels: Float32Array;
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
}

/** The scores and the output's shape, or `missing` when this thread does not hold the session; with the inputs handed back. */
export type SelectorOutput = ({ missing: false; scores: Float32Array; dims: readonly number[] } | { missing: true }) & { feeds: SelectorFeeds };

export async function loadSession(id: string, model: Uint8Array, options: OnnxOptions): Promise<LoadedInThread> {
  const loaded = await new OnnxRuntime(options).load(model);
  // Two batches that both found the session missing load it twice; the first copy stays.
  const kept = sessions.get(id);
  if (kept) await loaded.session.release();
  else sessions.set(id, loaded.session);
  const session = kept ?? loaded.session;
  return { provider: loaded.provider, inputs: describeInputs(session), outputs: describeOutputs(session) };
}

/** Runs the selector contract's three inputs and returns the first output. */
export async function runSelector(id: string, feeds: SelectorFeeds): Promise<SelectorOutput> {
  const session = sessions.get(id);
  if (!session) return handedBack({ missing: true, feeds });
  const { rows, imageSize, maxLength } = feeds;
  const outputName = session.outputNames[0];
  const result = await session.run(
    {
      pixel_values: new ort.Tensor('float32', feeds.pixels, [rows, 3, imageSize, imageSize]),
      input_ids: new ort.Tensor('int64', feeds.inputIds, [rows, maxLength]),
      attention_mask: new ort.Tensor('int64', feeds.attentionMask, [rows, maxLength]),
    },
    [outputName],
  );
  const output = result[outputName];
  // A copy of just the scores: the output's data may be a view on a larger buffer, all of which a clone would send.
  return handedBack({ missing: false, scores: Float32Array.from(output.data as Float32Array), dims: [...output.dims], feeds });
}

/** Named float outputs of a run over the selector contract's three inputs (encoders: image and text embeddings). */
export type NamedOutputs = { missing: false; outputs: Record<string, { data: Float32Array; dims: number[] }> } | { missing: true };

/**
 * Runs the three contract inputs and returns the named outputs, copied. Inputs are cloned, not
 * transferred: an encoder's batches are small and run once per image or text (embeddings are stored).
 */
export async function runNamedOutputs(id: string, feeds: SelectorFeeds, outputNames: string[]): Promise<NamedOutputs> {
  const session = sessions.get(id);
  if (!session) return { missing: true };
  const { rows, imageSize, maxLength } = feeds;
  const result = await session.run(
    {
      pixel_values: new ort.Tensor('float32', feeds.pixels, [rows, 3, imageSize, imageSize]),
      input_ids: new ort.Tensor('int64', feeds.inputIds, [rows, maxLength]),
      attention_mask: new ort.Tensor('int64', feeds.attentionMask, [rows, maxLength]),
    },
    outputNames,
  );
  const outputs: Record<string, { data: Float32Array; dims: number[] }> = {};
  for (const name of outputNames) outputs[name] = { data: Float32Array.from(result[name].data as Float32Array), dims: [...result[name].dims] };
  return { missing: false, outputs };
}

export async function releaseSession(id: string): Promise<void> {
  const session = sessions.get(id);
  sessions.delete(id);
  await session?.release();
}

/** The result, with the input buffers transferred back to the caller for its next batch. */
function handedBack(output: SelectorOutput): SelectorOutput {
  const { pixels, inputIds, attentionMask } = output.feeds;
  const transferable = { [transferableSymbol]: [pixels.buffer, inputIds.buffer, attentionMask.buffer], [valueSymbol]: output };
  return move(transferable as never) as unknown as SelectorOutput;
}
