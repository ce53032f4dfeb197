import { setMaxListeners } from 'node:events';
import type { JobHelpers } from 'graphile-worker';
import { logger } from '../../platform/logging';
import { sleep } from '../../platform/retry';
import { Run, RunKind, RunStatus } from './run.entity';
import { isTerminal, RunsService } from './runs.service';

/** What a kind of run does; items it already finished must be skipped, so a resumed run completes exactly once. */
export interface RunHandler {
  execute(run: Run, control: RunControl): Promise<void>;
}

/** Handed to a handler: a signal that aborts on cancel or shutdown, and a progress hook. */
export class RunControl {
  private readonly controller = new AbortController();
  cancelled = false;

  constructor(
    readonly runId: string,
    private readonly runs: RunsService,
  ) {
    // Every in-flight request of the run listens on this one signal.
    setMaxListeners(0, this.controller.signal);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  progressed(): void {
    this.runs.progressed(this.runId);
  }

  abort(reason: 'cancelled' | 'shutdown'): void {
    if (reason === 'cancelled') this.cancelled = true;
    this.controller.abort(reason);
  }
}

const CANCEL_POLL_MS = 300;

/**
 * The worker's side of a run: takes the job, marks the run running, lets the handler work while
 * watching for cancellation and shutdown, and records the final state. A crash leaves the job
 * locked; liveness (platform/jobs) unlocks it and the next attempt resumes the run.
 */
export class RunExecutor {
  constructor(
    private readonly runs: RunsService,
    private readonly handlers: Partial<Record<RunKind, RunHandler>>,
  ) {}

  async handleJob(payload: unknown, helpers: JobHelpers): Promise<void> {
    const runId = (payload as { runId?: string })?.runId;
    const run = runId ? await this.runs.findForWorker(runId) : null;
    if (!run) return;
    // Ended by an attempt that stopped before its listeners heard of it: tell them now.
    if (isTerminal(run.status)) return this.runs.announceFinished(run.id);
    if (run.cancelRequestedAt) return this.runs.finish(run.id, RunStatus.CANCELLED);
    const handler = this.handlers[run.kind];
    if (!handler) return this.runs.finish(run.id, RunStatus.FAILED, `No worker handles ${run.kind} runs`);

    await this.runs.markRunning(run.id);
    const control = new RunControl(run.id, this.runs);
    const onShutdown = () => control.abort('shutdown');
    helpers.abortSignal?.addEventListener('abort', onShutdown);
    const watching = this.watchCancel(control);
    try {
      await handler.execute(run, control);
    } catch (error) {
      if (!control.signal.aborted) return this.failedAttempt(run, helpers, error);
    } finally {
      helpers.abortSignal?.removeEventListener('abort', onShutdown);
      if (!control.signal.aborted) control.abort('shutdown');
      await watching;
    }
    if (control.cancelled) return this.runs.finish(run.id, RunStatus.CANCELLED);
    if (helpers.abortSignal?.aborted) throw new Error('worker shutting down; the run resumes on the next attempt');
    await this.runs.finishCompleted(run.id);
  }

  private async watchCancel(control: RunControl): Promise<void> {
    while (!control.signal.aborted) {
      await sleep(CANCEL_POLL_MS, control.signal);
      if (control.signal.aborted) return;
      if (await this.runs.cancelRequested(control.runId).catch(() => false)) control.abort('cancelled');
    }
  }

  /** The handler itself broke (not an item): let the queue retry, and fail the run on the last attempt. */
  private async failedAttempt(run: Run, helpers: JobHelpers, error: unknown): Promise<never> {
    const message = error instanceof Error ? error.message : String(error);
    logger.error('run attempt failed', { runId: run.id, kind: run.kind, attempt: helpers.job.attempts, error: message });
    if (helpers.job.attempts >= helpers.job.max_attempts) await this.runs.finish(run.id, RunStatus.FAILED, message);
    else await this.runs.recordError(run.id, `${message} (attempt ${helpers.job.attempts} of ${helpers.job.max_attempts}; retrying)`);
    throw error;
  }
}

/** Runs `work` over the items with at most `concurrency` at a time; stops taking new items once aborted. */
export async function forEachConcurrent<T>(items: Iterable<T>, concurrency: number, signal: AbortSignal, work: (item: T) => Promise<void>): Promise<void> {
  const iterator = items[Symbol.iterator]();
  const lane = async () => {
    for (let next = iterator.next(); !next.done && !signal.aborted; next = iterator.next()) await work(next.value);
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane));
}
