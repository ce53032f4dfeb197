import crypto from 'node:crypto';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { logger } from './logging';
import { ComputePool } from './compute-pool';
import type { LoadedInThread, SelectorFeeds, SelectorOutput } from './onnx-thread';

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
   */
  async loadInThread(model: Uint8Array): Promise<ThreadedSession> {
    // One thread per session: a batch is never split, and each session's thread keeps one copy of it.
    const thread = new ComputePool({ threads: 1, keepThreads: true });
    const id = crypto.randomUUID();
    try {
      const loaded = await thread.call<LoadedInThread>(ONNX_THREAD_MODULE, 'loadSession', [id, model, { ...this.options, quietFallback: true }]);
      if (loaded.provider !== this.options.executionProvider && !this.warnedFallback) {
        this.warnedFallback = true;
        logger.warn('CUDA execution provider unavailable; falling back to CPU');
      }
      return new ThreadedSession(thread, id, loaded);
    } catch (error) {
      await thread.destroy();
      throw error;
    }
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

/** Keeps one session per key (a selector model version) for the life of the process. */
export class SessionCache {
  private readonly sessions = new Map<string, Promise<LoadedSession>>();

  constructor(private readonly runtime: OnnxRuntime) {}

  get(key: string, loadModel: () => Promise<Uint8Array>): Promise<LoadedSession> {
    let entry = this.sessions.get(key);
    if (!entry) {
      entry = loadModel().then((bytes) => this.runtime.load(bytes));
      // A failed load is not cached: the next caller tries again.
      entry.catch(() => this.sessions.delete(key));
      this.sessions.set(key, entry);
    }
    return entry;
  }

  async close(): Promise<void> {
    const entries = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(entries.map((e) => e.then((s) => s.session.release()).catch(() => undefined)));
  }
}

const ONNX_THREAD_MODULE = path.join(__dirname, 'onnx-thread');

/** An ONNX session loaded in its own compute thread (OnnxRuntime.loadInThread). */
export class ThreadedSession {
  readonly provider: ExecutionProvider;
  readonly inputs: TensorSignature[];
  readonly outputs: TensorSignature[];

  constructor(
    private readonly thread: ComputePool,
    private readonly id: string,
    loaded: LoadedInThread,
  ) {
    this.provider = loaded.provider;
    this.inputs = loaded.inputs;
    this.outputs = loaded.outputs;
  }

  /**
   * Runs one batch of selector inputs in the session's thread. The token buffers are transferred
   * (unusable here afterwards); pixels in a SharedArrayBuffer are shared, any others copied.
   */
  runSelector(feeds: SelectorFeeds): Promise<SelectorOutput> {
    return this.thread.call<SelectorOutput>(ONNX_THREAD_MODULE, 'runSelector', [this.id, feeds], [feeds.inputIds.buffer as ArrayBuffer, feeds.attentionMask.buffer as ArrayBuffer]);
  }

  /** Releases the session and ends its thread. */
  async release(): Promise<void> {
    try {
      await this.thread.call(ONNX_THREAD_MODULE, 'releaseSession', [this.id]);
    } finally {
      await this.thread.destroy();
    }
  }
}

/** Keeps one threaded session per key (a selector model version) for the life of the process. */
export class ThreadedSessionCache {
  private readonly sessions = new Map<string, Promise<ThreadedSession>>();

  constructor(private readonly runtime: OnnxRuntime) {}

  get(key: string, loadModel: () => Promise<Uint8Array>): Promise<ThreadedSession> {
    let entry = this.sessions.get(key);
    if (!entry) {
      entry = loadModel().then((bytes) => this.runtime.loadInThread(bytes));
      // A failed load is not cached: the next caller tries again.
      entry.catch(() => this.sessions.delete(key));
      this.sessions.set(key, entry);
    }
    return entry;
  }

  async close(): Promise<void> {
    const entries = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(entries.map((e) => e.then((s) => s.release()).catch(() => undefined)));
  }
}

export { ort };
