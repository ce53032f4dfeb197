import { describeInputs, describeOutputs, OnnxOptions, OnnxRuntime, ExecutionProvider, ort, SESSION_MISSING, TensorSignature } from './onnx';

/**
 * The ONNX Runtime side of a session thread (see ThreadedSession in onnx.ts): these functions run
 * inside a compute thread, which keeps its sessions by id between calls.
 */

const sessions = new Map<string, ort.InferenceSession>();
/**
 * ONNX Runtime refuses tensors over a SharedArrayBuffer ("Invalid argument"), so shared pixels are
 * copied into this thread's own buffer (reused while the batch size stays the same).
 */
let ownPixels: Float32Array | null = null;

export interface LoadedInThread {
  provider: ExecutionProvider;
  inputs: TensorSignature[];
  outputs: TensorSignature[];
}

/** One batch of selector inputs, row-major; `pixels` may live in a SharedArrayBuffer (no copy to the thread). */
export interface SelectorFeeds {
  rows: number;
  imageSize: number;
  maxLength: number;
  pixels: Float32Array;
  inputIds: BigInt64Array;
  attentionMask: BigInt64Array;
}

export interface SelectorOutput {
  scores: Float32Array;
  dims: readonly number[];
}

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
  const session = sessionById(id);
  const { rows, imageSize, maxLength } = feeds;
  const outputName = session.outputNames[0];
  const result = await session.run(
    {
      pixel_values: new ort.Tensor('float32', ownedPixels(feeds.pixels), [rows, 3, imageSize, imageSize]),
      input_ids: new ort.Tensor('int64', feeds.inputIds, [rows, maxLength]),
      attention_mask: new ort.Tensor('int64', feeds.attentionMask, [rows, maxLength]),
    },
    [outputName],
  );
  const output = result[outputName];
  // A copy of just the scores: the output's data may be a view on a larger buffer, all of which a clone would send.
  return { scores: Float32Array.from(output.data as Float32Array), dims: [...output.dims] };
}

export async function releaseSession(id: string): Promise<void> {
  const session = sessions.get(id);
  sessions.delete(id);
  await session?.release();
}

function ownedPixels(pixels: Float32Array): Float32Array {
  if (!(pixels.buffer instanceof SharedArrayBuffer)) return pixels;
  if (ownPixels?.length !== pixels.length) ownPixels = new Float32Array(pixels.length);
  ownPixels.set(pixels);
  return ownPixels;
}

function sessionById(id: string): ort.InferenceSession {
  const session = sessions.get(id);
  if (!session) throw new Error(`${SESSION_MISSING} ${id} in this thread`);
  return session;
}
