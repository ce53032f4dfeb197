import crypto from 'node:crypto';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { logger } from './logging';
import { ComputePool } from './compute-pool';
import type { LoadedInThread, NamedOutputs, SelectorFeeds, SelectorOutput } from './onnx-thread';

/** A batch's scores and output shape, with its input buffers handed back. */
export type SelectorScores = Extract<SelectorOutput, { missing: false }>;

export type ExecutionProvider = 'cpu' | 'cuda';

export interface OnnxOptions {
  executionProvider: ExecutionProvider;
  intraOpThreads: number;
  interOpThreads: number;
  cudaDeviceId: number;
  /** Leave the CPU fallback's warning to the caller (a session thread's owner warns once per process). */
  quietFallback?: boolean;
}

export interface LoadedSession {
  session: ort.InferenceSession;
  /** The provider the session really runs on (CUDA falls back to CPU). */
  provider: ExecutionProvider;
}

/** The input or output of a loaded model as ONNX Runtime reports it; dims are numbers or symbolic names. */
export interface TensorSignature {
  name: string;
  type: string | null;
  dims: (number | string)[] | null;
}

export function describeInputs(session: ort.InferenceSession): TensorSignature[] {
  return session.inputMetadata.map(signatureOf);
}

export function describeOutputs(session: ort.InferenceSession): TensorSignature[] {
  return session.outputMetadata.map(signatureOf);
}

function signatureOf(meta: ort.InferenceSession.ValueMetadata): TensorSignature {
  if (!meta.isTensor) return { name: meta.name, type: null, dims: null };
  return { name: meta.name, type: meta.type, dims: [...meta.shape] };
}

/**
 * Creates ONNX Runtime sessions with the configured execution provider and threads. CUDA is used
 * when asked for and available; otherwise the session falls back to CPU with a warning, once per
 * process, so a GPU-less worker still scores.
 */
export class OnnxRuntime {
  private warnedFallback = false;

  constructor(private readonly options: OnnxOptions) {}

  async load(model: Uint8Array): Promise<LoadedSession> {
    if (this.options.executionProvider === 'cuda') {
      try {
        return { session: await ort.InferenceSession.create(model, this.sessionOptions('cuda')), provider: 'cuda' };
      } catch (error) {
        if (!this.warnedFallback && !this.options.quietFallback) logger.warn('CUDA execution provider unavailable; falling back to CPU', { error: (error as Error).message?.split('\n')[0] });
        this.warnedFallback = true;
      }
    }
    return { session: await ort.InferenceSession.create(model, this.sessionOptions('cpu')), provider: 'cpu' };
  }

  /**
   * A session in a thread of its own, so inference never holds the event loop: the model is sent
   * once, the session stays loaded there, and each run sends only its inputs. The thread creates the
   * session with these same options (CUDA fallback included), so scores are those of `load`.
   * `model` may be a reader, called again if the thread dies and the session must be loaded anew.
   */
  async loadInThread(model: Uint8Array | (() => Promise<Uint8Array>)): Promise<ThreadedSession> {
    const readModel = typeof model === 'function' ? model : async () => model;
    // One thread per session: a batch is never split, and each session's thread keeps one copy of it.
    const thread = new ComputePool({ threads: 1, keepThreads: true });
    const options = { ...this.options, quietFallback: true };
    const session = new ThreadedSession(thread, async (id) => thread.call<LoadedInThread>(ONNX_THREAD_MODULE, 'loadSession', [id, await readModel(), options]));
    try {
      await session.load();
    } catch (error) {
      await thread.destroy();
      throw error;
    }
    if (session.provider !== this.options.executionProvider && !this.warnedFallback) {
      this.warnedFallback = true;
      logger.warn('CUDA execution provider unavailable; falling back to CPU');
    }
    return session;
  }

  private sessionOptions(provider: ExecutionProvider): ort.InferenceSession.SessionOptions {
    const executionProviders: ort.InferenceSession.ExecutionProviderConfig[] =
      provider === 'cuda' ? [{ name: 'cuda', deviceId: this.options.cudaDeviceId } as ort.InferenceSession.ExecutionProviderConfig] : ['cpu'];
    return {
      executionProviders,
      graphOptimizationLevel: 'all',
      // Spinning threads burn the cores that image decoding and Postgres need between batches.
      extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
      ...(this.options.intraOpThreads > 0 ? { intraOpNumThreads: this.options.intraOpThreads } : {}),
      ...(this.options.interOpThreads > 0 ? { interOpNumThreads: this.options.interOpThreads } : {}),
    };
  }
}

/**
 * One value per key, loaded once and shared by concurrent callers. A failed load is not cached (the
 * next caller tries again); `close` releases every loaded value.
 */
class LoadOnceCache<T> {
  private readonly entries = new Map<string, Promise<T>>();

  constructor(private readonly release: (value: T) => Promise<unknown>) {}

  get(key: string, load: () => Promise<T>): Promise<T> {
    let entry = this.entries.get(key);
    if (!entry) {
      entry = load();
      entry.catch(() => this.entries.delete(key));
      this.entries.set(key, entry);
    }
    return entry;
  }

  async close(): Promise<void> {
    const entries = [...this.entries.values()];
    this.entries.clear();
    await Promise.all(entries.map((e) => e.then((value) => this.release(value)).catch(() => undefined)));
  }
}

/** Keeps one main-thread session per key for the life of the process. */
export class SessionCache {
  private readonly cache = new LoadOnceCache<LoadedSession>((loaded) => loaded.session.release());

  constructor(private readonly runtime: OnnxRuntime) {}

  get(key: string, loadModel: () => Promise<Uint8Array>): Promise<LoadedSession> {
    return this.cache.get(key, () => loadModel().then((bytes) => this.runtime.load(bytes)));
  }

  close(): Promise<void> {
    return this.cache.close();
  }
}

const ONNX_THREAD_MODULE = path.join(__dirname, 'onnx-thread');

/** An ONNX session loaded in its own compute thread (OnnxRuntime.loadInThread). */
export class ThreadedSession {
  provider: ExecutionProvider = 'cpu';
  inputs: TensorSignature[] = [];
  outputs: TensorSignature[] = [];
  private readonly id = crypto.randomUUID();
  private reloading: Promise<void> | null = null;

  constructor(
    private readonly thread: ComputePool,
    private readonly loadIn: (id: string) => Promise<LoadedInThread>,
  ) {}

  /** Loads (or loads again) the session in the thread. */
  async load(): Promise<void> {
    const loaded = await this.loadIn(this.id);
    this.provider = loaded.provider;
    this.inputs = loaded.inputs;
    this.outputs = loaded.outputs;
  }

  /**
   * Runs one batch of selector inputs in the session's thread. The feeds' buffers are transferred
   * there and handed back in the result's `feeds` (unusable here meanwhile; lost if the run fails).
   * A thread that died (a native crash ends only its thread; piscina starts another) has lost the
   * session: it is loaded again and the batch sent again, once, instead of the selector failing for
   * the life of the process.
   */
  async runSelector(feeds: SelectorFeeds): Promise<SelectorScores> {
    const output = await this.run(feeds);
    if (!output.missing) return output;
    this.reloading ??= this.load().finally(() => (this.reloading = null));
    await this.reloading;
    const again = await this.run(output.feeds);
    if (again.missing) throw new Error('The ONNX session thread lost the session again right after loading it');
    return again;
  }

  /**
   * Runs one batch of the contract's three inputs and returns the named outputs (an encoder's
   * `image_embeds` and `text_embeds`); reloads a session its thread lost, once, as runSelector does.
   */
  async runOutputs(feeds: SelectorFeeds, outputNames: string[]): Promise<Record<string, { data: Float32Array; dims: number[] }>> {
    const run = () => this.thread.call<NamedOutputs>(ONNX_THREAD_MODULE, 'runNamedOutputs', [this.id, feeds, outputNames]);
    let output = await run();
    if (output.missing) {
      this.reloading ??= this.load().finally(() => (this.reloading = null));
      await this.reloading;
      output = await run();
      if (output.missing) throw new Error('The ONNX session thread lost the session again right after loading it');
    }
    return output.outputs;
  }

  /** Releases the session and ends its thread. */
  async release(): Promise<void> {
    try {
      await this.thread.call(ONNX_THREAD_MODULE, 'releaseSession', [this.id]);
    } finally {
      await this.thread.destroy();
    }
  }

  private run(feeds: SelectorFeeds): Promise<SelectorOutput> {
    return this.thread.call<SelectorOutput>(ONNX_THREAD_MODULE, 'runSelector', [this.id, feeds], [feeds.pixels.buffer, feeds.inputIds.buffer, feeds.attentionMask.buffer] as ArrayBuffer[]);
  }
}

/** Keeps one threaded session per key (a selector model version) for the life of the process. */
export class ThreadedSessionCache {
  private readonly cache = new LoadOnceCache<ThreadedSession>((session) => session.release());

  constructor(private readonly runtime: OnnxRuntime) {}

  get(key: string, loadModel: () => Promise<Uint8Array>): Promise<ThreadedSession> {
    return this.cache.get(key, () => this.runtime.loadInThread(loadModel));
  }

  close(): Promise<void> {
    return this.cache.close();
  }
}

export { ort };
