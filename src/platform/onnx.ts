import * as ort from 'onnxruntime-node';
import { logger } from './logging';

export type ExecutionProvider = 'cpu' | 'cuda';

export interface OnnxOptions {
  executionProvider: ExecutionProvider;
  intraOpThreads: number;
  interOpThreads: number;
  cudaDeviceId: number;
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
        if (!this.warnedFallback) logger.warn('CUDA execution provider unavailable; falling back to CPU', { error: (error as Error).message?.split('\n')[0] });
        this.warnedFallback = true;
      }
    }
    return { session: await ort.InferenceSession.create(model, this.sessionOptions('cpu')), provider: 'cpu' };
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

export { ort };
