import path from 'node:path';
import { isMainThread, parentPort, threadId, Worker, workerData } from 'node:worker_threads';
import { EngineOptions, EpochMetrics, PreferencePairs, trainHead, TrainerState, TrainingConfig, TrainingHooks, TrainingResult } from './head-trainer';

/**
 * Runs `trainHead` on a worker thread of its own, so the JS half of each step (batch gathering, Adam
 * over ~1M parameters) never holds the event loop. A stopgap until the shared worker-thread compute
 * pool exists; the trainer itself is plain data in, plain data out, so the pool can call it as is.
 *
 * The pairs are copied to the worker (structured clone); the trained tensors and each epoch's
 * snapshot come back transferred. The worker can be started ahead of its work (PendingTrainingWorker).
 * Epoch metrics are posted as they happen. Cancelling is cooperative: the worker is asked to stop
 * and does so between steps, releasing its ONNX Runtime session; the promise settles once it has.
 * Never `worker.terminate()` a worker while its `session.run` is in flight: onnxruntime-node 1.30
 * then throws a Napi::Error during teardown and the whole process aborts (seen here; terminating a
 * worker whose sessions are idle and released is fine).
 */

/**
 * A training worker started ahead of its work: its thread loads the trainer's modules (and, under
 * ts-node, transpiles them: seconds on a busy machine) while the caller still loads the training
 * data, so that time no longer adds to the run. Hand it to trainHeadInWorker once, or `discard` it.
 */
export class PendingTrainingWorker {
  private used = false;
  private exited = false;
  private readonly worker = new Worker(bootstrapSource(), { eval: true });

  constructor() {
    // A worker that died before being given work (a failed module load) is replaced when taken.
    this.worker.on('error', () => undefined);
    this.worker.once('exit', () => (this.exited = true));
  }

  /** Hands the thread over (once). */
  take(): Worker {
    if (this.used) throw new Error('this training worker was already used');
    this.used = true;
    return this.exited ? new Worker(bootstrapSource(), { eval: true }) : this.worker;
  }

  /** Stops a worker that was never used (idle: it has no ONNX session, so terminating is safe). */
  async discard(): Promise<void> {
    if (this.used) return;
    this.used = true;
    await this.worker.terminate();
  }
}

interface WorkerInput {
  pairs: PreferencePairs;
  config: TrainingConfig;
  options: EngineOptions;
  resume?: TrainerState;
  validation?: PreferencePairs;
  checkpoints?: boolean;
}

type WorkerMessage =
  | { type: 'epoch'; metrics: EpochMetrics; state?: TrainerState }
  | { type: 'done'; result: TrainingResult; threadId: number }
  | { type: 'failed'; name: string; message: string };

type ParentMessage = { type: 'cancel' } | { type: 'start'; input: WorkerInput };

export interface WorkerTrainingResult extends TrainingResult {
  /** The worker thread that trained (never the caller's). */
  threadId: number;
}

export function trainHeadInWorker(pairs: PreferencePairs, config: TrainingConfig, options: EngineOptions = {}, hooks: TrainingHooks = {}, pending?: PendingTrainingWorker): Promise<WorkerTrainingResult> {
  return new Promise((resolve, reject) => {
    if (hooks.signal?.aborted) {
      void pending?.discard();
      hooks.signal.throwIfAborted();
    }
    const input: WorkerInput = { pairs, config, options, resume: hooks.resume, validation: hooks.validation, checkpoints: hooks.checkpoints };
    const worker = (pending ?? new PendingTrainingWorker()).take();
    // The input is cloned into the worker's queue (the caller keeps its pairs); the worker starts on it once loaded.
    worker.postMessage({ type: 'start', input } satisfies ParentMessage);
    // Why the caller stopped the run (abort, or a failing epoch callback); reported once the worker has stopped.
    let stopReason: { error: unknown } | undefined;
    let outcome: { ok: true; value: WorkerTrainingResult } | { ok: false; error: unknown } | undefined;
    const stop = (error: unknown) => {
      if (stopReason) return;
      stopReason = { error };
      worker.postMessage({ type: 'cancel' } satisfies ParentMessage);
    };
    const onAbort = () => stop(hooks.signal!.reason);
    hooks.signal?.addEventListener('abort', onAbort, { once: true });
    // Epoch callbacks run in order, and the result waits for the last of them.
    let callbacks = Promise.resolve();
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'epoch') {
        callbacks = callbacks.then(() => hooks.onEpoch?.(message.metrics, message.state)).catch(stop);
      } else if (message.type === 'done') {
        outcome = { ok: true, value: { ...message.result, threadId: message.threadId } };
      } else {
        const error = Object.assign(new Error(message.message), { name: message.name });
        outcome = { ok: false, error };
      }
    });
    worker.on('error', (error) => (outcome ??= { ok: false, error }));
    worker.on('exit', (code) => {
      hooks.signal?.removeEventListener('abort', onAbort);
      void callbacks.then(() => {
        if (stopReason) reject(stopReason.error);
        else if (!outcome) reject(new Error(`training worker exited with code ${code} before finishing`));
        else if (outcome.ok) resolve(outcome.value);
        else reject(outcome.error);
      });
    });
  });
}

/**
 * The worker's entry: under ts-node or jest (this file is .ts) it registers ts-node first, as the
 * worker does not inherit the parent's loader; compiled, it requires the .js file directly.
 */
function bootstrapSource(): string {
  const self = JSON.stringify(__filename);
  // Not ts-node's swc mode, though it transpiles about twice as fast: @swc/core's native addon loaded
  // in a worker thread segfaults the process (seen here in bench:training; swc-project/swc#2276).
  const register = path.extname(__filename) === '.ts' ? `require('ts-node').register({ transpileOnly: true, projectSearchDir: ${JSON.stringify(__dirname)} });` : '';
  return `${register} require(${self}).serveTrainingWorker();`;
}

/** Worker side: trains once from workerData (or the first 'start' message) and posts epochs and the result, or why it stopped. */
export async function serveTrainingWorker(): Promise<void> {
  if (isMainThread || !parentPort) throw new Error('serveTrainingWorker runs only inside a worker thread');
  const port = parentPort;
  const controller = new AbortController();
  let started: (input: WorkerInput) => void;
  const start = new Promise<WorkerInput>((resolve) => (started = resolve));
  const onMessage = (message: ParentMessage) => {
    if (message.type === 'cancel') controller.abort(new Error('training cancelled'));
    else if (message.type === 'start') started(message.input);
  };
  port.on('message', onMessage);
  try {
    const { pairs, config, options, resume, validation, checkpoints } = (workerData as WorkerInput | undefined) ?? (await start);
    const onEpoch = (metrics: EpochMetrics, state?: TrainerState) => {
      // The snapshot is a fresh copy: its buffers can move to the parent instead of being cloned.
      const transfer = state ? [...state.parameters.tensors, ...state.adam.firstMoments, ...state.adam.secondMoments].map((t) => t.buffer as ArrayBuffer) : [];
      port.postMessage({ type: 'epoch', metrics, state } satisfies WorkerMessage, transfer);
    };
    const result = await trainHead(pairs, config, options, { signal: controller.signal, resume, validation, checkpoints, onEpoch });
    const transfer = result.parameters.tensors.map((t) => t.buffer as ArrayBuffer);
    port.postMessage({ type: 'done', result, threadId } satisfies WorkerMessage, transfer);
  } catch (error) {
    const { name, message } = error instanceof Error ? error : new Error(String(error));
    port.postMessage({ type: 'failed', name, message } satisfies WorkerMessage);
  } finally {
    // The listener keeps the port, and so the thread, alive: remove it and the worker exits.
    port.off('message', onMessage);
  }
}
