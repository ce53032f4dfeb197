import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Transferable } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { ComputeCall } from './compute-worker';

/**
 * Worker threads for CPU-heavy steps (ONNX inference, clustering, training), so that the event loop
 * that serves the api, the subscriptions and the job heartbeats is never held by compute
 * (DESIGN.md: compute that takes more than a few milliseconds runs off the event loop).
 *
 * A task names a module and one of its exported functions, which the thread requires and calls:
 * the code that runs in a thread is ordinary project code, kept next to the domain it belongs to.
 * Arguments and results are structured-cloned; pass buffers in `transferList` (or in a
 * SharedArrayBuffer) to avoid copying large ones.
 */
export class ComputePool {
  private readonly pool: Piscina;
  private destroyed = false;

  /**
   * `threads`: most threads at once. `keepThreads`: keep them all alive while the pool lives (for
   * state held in a thread, such as a loaded ONNX session); otherwise an idle thread exits after
   * IDLE_THREAD_MS. Idle threads never keep the process alive (piscina unrefs them).
   */
  constructor(options: { threads: number; keepThreads?: boolean }) {
    const entry = workerEntry();
    this.pool = new Piscina({
      filename: entry.filename,
      // Only when needed: some of the parent's flags (an inspector port, say) are refused in a worker.
      ...(entry.execArgv.length ? { execArgv: entry.execArgv } : {}),
      minThreads: options.keepThreads ? options.threads : 0,
      maxThreads: options.threads,
      idleTimeout: options.keepThreads ? Infinity : IDLE_THREAD_MS,
      // A task runs alone in its thread: two batches interleaved in one thread would only share its core.
      concurrentTasksPerWorker: 1,
    });
  }

  /** Calls `fn` exported by `module` (a path without extension: `.ts` from sources, `.js` from dist) in a thread. */
  call<T>(module: string, fn: string, args: unknown[], transferList?: readonly Transferable[]): Promise<T> {
    // piscina would start new threads for a task sent after destroy.
    if (this.destroyed) return Promise.reject(new Error('The compute pool is closed'));
    const task: ComputeCall = { module, fn, args };
    return this.pool.run(task, { transferList: transferList as Transferable[] | undefined }) as Promise<T>;
  }

  /** Ends every thread; tasks still queued or running reject. */
  async destroy(): Promise<void> {
    this.destroyed = true;
    await this.pool.destroy();
  }
}

/** An idle thread of the shared pool exits after this long; the next task starts one again. */
const IDLE_THREAD_MS = 30_000;

/**
 * The thread entry: the compiled `.js` beside this file when running from dist/; otherwise the `.ts`
 * source, which a worker thread (a fresh module system, outside ts-node's or jest's hooks) loads
 * through ts-node's transpile-only register.
 */
function workerEntry(): { filename: string; execArgv: string[] } {
  const compiled = path.join(__dirname, 'compute-worker.js');
  if (fs.existsSync(compiled)) return { filename: compiled, execArgv: [] };
  return { filename: path.join(__dirname, 'compute-worker.ts'), execArgv: ['--require', require.resolve('ts-node/register/transpile-only')] };
}

/** COMPUTE_THREADS 0: half the CPUs, at least one. */
export function computeThreadCount(configured: number): number {
  return configured > 0 ? configured : Math.max(1, Math.floor(os.availableParallelism() / 2));
}

let sharedThreads = computeThreadCount(0);
let shared: ComputePool | null = null;

/**
 * The process's pool for stateless compute (clustering, training steps): one per process, like
 * libuv's thread pool, so every module shares the same bounded set of threads.
 */
export function computePool(): ComputePool {
  return (shared ??= new ComputePool({ threads: sharedThreads }));
}

/** Sets the shared pool's size (COMPUTE_THREADS) before its first use. */
export function configureComputePool(threads: number): void {
  sharedThreads = computeThreadCount(threads);
}

/** Ends the shared pool's threads (shutdown); a later task starts a new pool. */
export async function closeComputePool(): Promise<void> {
  const closing = shared;
  shared = null;
  await closing?.destroy();
}
