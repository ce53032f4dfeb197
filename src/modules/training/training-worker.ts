import path from 'node:path';
import { isMainThread, parentPort, threadId, Worker, workerData } from 'node:worker_threads';
import { EngineOptions, EpochMetrics, PreferencePairs, trainHead, TrainingConfig, TrainingHooks, TrainingResult } from './head-trainer';

/**
 * Runs `trainHead` on a worker thread of its own, so the JS half of each step (batch gathering, Adam
 * over ~1M parameters) never holds the event loop. A stopgap until the shared worker-thread compute
 * pool exists; the trainer itself is plain data in, plain data out, so the pool can call it as is.
 *
 * The pairs are copied to the worker (structured clone); the trained tensors come back transferred.
 * Epoch metrics are posted as they happen; aborting the signal terminates the worker.
 */

interface WorkerInput {
  pairs: PreferencePairs;
  config: TrainingConfig;
  options: EngineOptions;
}

type WorkerMessage = { type: 'epoch'; metrics: EpochMetrics } | { type: 'done'; result: TrainingResult; threadId: number };

export interface WorkerTrainingResult extends TrainingResult {
  /** The worker thread that trained (never the caller's). */
  threadId: number;
}

export function trainHeadInWorker(pairs: PreferencePairs, config: TrainingConfig, options: EngineOptions = {}, hooks: TrainingHooks = {}): Promise<WorkerTrainingResult> {
  return new Promise((resolve, reject) => {
    hooks.signal?.throwIfAborted();
    const worker = new Worker(bootstrapSource(), { eval: true, workerData: { pairs, config, options } satisfies WorkerInput });
    let settled = false;
    const settle = (finish: () => void) => {
      if (settled) return;
      settled = true;
      hooks.signal?.removeEventListener('abort', onAbort);
      finish();
    };
    const onAbort = () => settle(() => (void worker.terminate(), reject(hooks.signal!.reason)));
    hooks.signal?.addEventListener('abort', onAbort, { once: true });
    // Epoch callbacks run in order, and the result waits for the last of them.
    let callbacks = Promise.resolve();
    let done = false;
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'epoch') {
        callbacks = callbacks.then(() => hooks.onEpoch?.(message.metrics));
        callbacks.catch((error) => settle(() => (void worker.terminate(), reject(error))));
      } else {
        done = true;
        callbacks.then(() => settle(() => resolve({ ...message.result, threadId: message.threadId })), () => undefined);
      }
    });
    worker.on('error', (error) => settle(() => reject(error)));
    worker.on('exit', (code) => {
      if (!done) settle(() => reject(new Error(`training worker exited with code ${code} before finishing`)));
    });
  });
}

/**
 * The worker's entry: under ts-node or jest (this file is .ts) it registers ts-node first, as the
 * worker does not inherit the parent's loader; compiled, it requires the .js file directly.
 */
function bootstrapSource(): string {
  const self = JSON.stringify(__filename);
  const register = path.extname(__filename) === '.ts' ? `require('ts-node').register({ transpileOnly: true, projectSearchDir: ${JSON.stringify(__dirname)} });` : '';
  return `${register} require(${self}).serveTrainingWorker();`;
}

/** Worker side: trains once from workerData and posts epochs and the result. */
export async function serveTrainingWorker(): Promise<void> {
  if (isMainThread || !parentPort) throw new Error('serveTrainingWorker runs only inside a worker thread');
  const port = parentPort;
  const { pairs, config, options } = workerData as WorkerInput;
  const result = await trainHead(pairs, config, options, { onEpoch: (metrics) => port.postMessage({ type: 'epoch', metrics } satisfies WorkerMessage) });
  const transfer = result.parameters.tensors.map((t) => t.buffer as ArrayBuffer);
  port.postMessage({ type: 'done', result, threadId } satisfies WorkerMessage, transfer);
}
