import { setMaxListeners } from 'node:events';
import type { ZodType } from 'zod';
import type { JobHelpers } from 'graphile-worker';
import { attemptsCounting, SHUTDOWN_MESSAGE } from '../../platform/jobs';
import { isSaneRequestId, logger, withRequestId } from '../../platform/logging';
import { sleep } from '../../platform/retry';
import { Run, RunKind, RunStatus } from './run.entity';
import { RequestContext } from '../projects/request-context';
import { InFlightCall, isTerminal, RunsService } from './runs.service';
import { permanentReason } from './run-errors';

/**
 * A kind of run, one file per kind (`<name>.run.ts` in its module), registered in the worker: it
 * lists its pending items (the frozen targets minus the items already settled, so a resumed run
 * completes exactly once), processes them, and writes each result through its owner's service
 * wrapped by RunsService.recordItem/recordBatch, which adds the run's counters in the same
 * statement. Its parameters are parsed by its own schema; a parse failure is permanent.
 */
export interface RunKindDefinition {
  readonly kind: RunKind;
  execute(run: Run, control: RunControl): Promise<void>;
}

/** What one attempt of a kind works with: the run, its parameters parsed, and the context it acts in. */
export interface RunAttempt<P> {
  run: Run;
  params: P;
  ctx: RequestContext;
}

/**
 * The part every kind shares: its stored parameters parsed by its own schema (a failure is
 * permanent, see run-errors) and the worker context built, before the kind's own `attempt`.
 */
export abstract class ParsedRunKind<P> implements RunKindDefinition {
  abstract readonly kind: RunKind;
  protected abstract readonly paramsSchema: ZodType<P>;

  execute(run: Run, control: RunControl): Promise<void> {
    return this.attempt({ run, params: this.paramsSchema.parse(run.params), ctx: workerContext(run) }, control);
  }

  protected abstract attempt(attempt: RunAttempt<P>, control: RunControl): Promise<void>;
}

/** The context a worker acts in for a run: the run's project, on behalf of whoever started it. */
export function workerContext(run: Pick<Run, 'projectId' | 'createdById'>): RequestContext {
  return RequestContext.forWorker(run.projectId, run.createdById);
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

  /**
   * A model call of this run, recorded as in flight by `announce` just before it is sent (pass that
   * to the gateway's `beforeFirstSend`); the item that stores its result settles it (as
   * `settledCall`). One left unsettled by a worker that stopped counts as an abandoned attempt.
   */
  modelCall(estimatedCostUsd: number): { call: InFlightCall; announce: () => Promise<void> } {
    const call: InFlightCall = { estimatedCostUsd, announced: false };
    return {
      call,
      announce: async () => {
        await this.runs.callStarted(this.runId, call);
        call.announced = true;
      },
    };
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
  private readonly handlers = new Map<RunKind, RunKindDefinition>();

  constructor(
    private readonly runs: RunsService,
    kinds: RunKindDefinition[],
  ) {
    for (const kind of kinds) this.handlers.set(kind.kind, kind);
  }

  /** Runs the job inside the request id of the request that started the run, for every line it logs. */
  handleJob(payload: unknown, helpers: JobHelpers): Promise<void> {
    const requestId = (payload as { requestId?: unknown })?.requestId;
    return withRequestId(isSaneRequestId(requestId) ? requestId : null, () => this.handleRunJob(payload, helpers));
  }

  private async handleRunJob(payload: unknown, helpers: JobHelpers): Promise<void> {
    const runId = (payload as { runId?: string })?.runId;
    const run = runId ? await this.runs.findForWorker(runId) : null;
    if (!run) return;
    // Ended by an attempt that stopped before its listeners heard of it: tell them now.
    if (isTerminal(run.status)) return this.runs.announceFinished(run.id);
    if (run.cancelRequestedAt) return this.runs.finish(run.id, RunStatus.CANCELLED);
    const handler = this.handlers.get(run.kind);
    if (!handler) return this.runs.finish(run.id, RunStatus.FAILED, `No worker handles ${run.kind} runs`);

    const attempts = await attemptsCounting(helpers);
    await this.runs.markRunning(run.id);
    logger.info('run attempt started', { runId: run.id, kind: run.kind, attempt: attempts });
    const control = new RunControl(run.id, this.runs);
    const onShutdown = () => control.abort('shutdown');
    helpers.abortSignal?.addEventListener('abort', onShutdown);
    const watching = this.watchCancel(control);
    try {
      await handler.execute(run, control);
    } catch (error) {
      const permanent = permanentReason(error);
      // Ends the run now and completes the job: retrying cannot help.
      if (permanent !== null) return this.runs.finish(run.id, RunStatus.FAILED, permanent);
      if (!control.signal.aborted) return this.failedAttempt(run, attempts, helpers.job.max_attempts, error);
    } finally {
      helpers.abortSignal?.removeEventListener('abort', onShutdown);
      if (!control.signal.aborted) control.abort('shutdown');
      await watching;
    }
    if (control.cancelled) return this.runs.finish(run.id, RunStatus.CANCELLED);
    if (helpers.abortSignal?.aborted) throw new Error(SHUTDOWN_MESSAGE);
    await this.runs.finishCompleted(run.id);
    logger.info('run attempt completed', { runId: run.id, kind: run.kind });
  }

  private async watchCancel(control: RunControl): Promise<void> {
    while (!control.signal.aborted) {
      await sleep(CANCEL_POLL_MS, control.signal);
      if (control.signal.aborted) return;
      if (await this.runs.cancelRequested(control.runId).catch(() => false)) control.abort('cancelled');
    }
  }

  /** The handler itself broke (not an item): let the queue retry, and fail the run on the last attempt. */
  private async failedAttempt(run: Run, attempts: number, maxAttempts: number, error: unknown): Promise<never> {
    const message = error instanceof Error ? error.message : String(error);
    logger.error('run attempt failed', { runId: run.id, kind: run.kind, attempt: attempts, error: message });
    if (attempts >= maxAttempts) await this.runs.finish(run.id, RunStatus.FAILED, message);
    else await this.runs.recordError(run.id, `${message} (attempt ${attempts} of ${maxAttempts}; retrying)`);
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
