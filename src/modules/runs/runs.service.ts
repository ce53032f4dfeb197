import { DataSource, EntityManager, InsertQueryBuilder, ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { RequestContext } from '../projects/request-context';
import { Role } from '../projects/role';
import { applyKeyset, ConnectionShape, PageArgs, SortDirection, toConnection } from '../../platform/pagination';
import { deleteJob, enqueueJob, isJobHeldByLiveWorker, removeQueuedJob } from '../../platform/jobs';
import { expectGlobalId } from '../../platform/ids';
import { userError, UserErrorCode, UserErrorsException } from '../../platform/user-errors';
import { RunEvent, RunEventsPublisher } from '../../platform/pubsub';
import { Run, RunKind, RunStatus } from './run.entity';
import { RunFailure } from './run-failure.entity';
import { logger } from '../../platform/logging';

export const RUN_TASK = 'run';
export const runJobKey = (runId: string) => `run:${runId}`;
export const TERMINAL_STATUSES: readonly RunStatus[] = [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED];
export const isTerminal = (status: RunStatus) => TERMINAL_STATUSES.includes(status);

/** What one item (or a group of items with one outcome) added to a run's counters. */
export interface RunProgress {
  done?: number;
  failed?: number;
  /** Items another run had already finished. */
  skipped?: number;
  /** The items' outcome, counted in `countsByStatus` (a candidate status, RATED, SCORED...). */
  outcome?: string | null;
  promptTokens?: number;
  completionTokens?: number;
  costUsd?: number;
  lastError?: string | null;
  /** The model call this item made is settled: no longer in flight (when it was announced by `callStarted`). */
  settledCall?: InFlightCall | null;
}

/** A model call announced before it was sent, so that a crash leaves it counted as in flight. */
export interface InFlightCall {
  estimatedCostUsd: number;
  /** Recorded as in flight: only then does settling it take it out again. */
  announced: boolean;
}

export interface NewRun {
  kind: RunKind;
  params: Record<string, unknown>;
  /** Freezes what the run works on: a query selecting `id`s of images or candidates. */
  targets: SelectQueryBuilder<object>;
  /** Items per target (samples per image for generation). */
  itemsPerTarget?: number;
  /** Or a count of the items over the targets query, made by the targets' owner in the run's transaction. */
  countItems?: (em: EntityManager) => Promise<number>;
}

/** Counter increments; the run id is $1, the values $2 to $11 in `counterValues` order. */
const COUNTERS_SET = `done = done + $2, failed = failed + $3, skipped = skipped + $9, prompt_tokens = prompt_tokens + $4, completion_tokens = completion_tokens + $5,
  cost_usd = cost_usd + $6, last_error = coalesce($7, last_error),
  counts_by_status = CASE WHEN $8::text IS NULL THEN counts_by_status
    ELSE jsonb_set(counts_by_status, ARRAY[$8::text], to_jsonb(coalesce((counts_by_status ->> $8::text)::int, 0) + $2::int + $3::int + $9::int)) END,
  in_flight_calls = greatest(in_flight_calls - $10::int, 0), in_flight_cost_usd = greatest(in_flight_cost_usd - $11::numeric, 0),
  updated_at = now()`;

const counterValues = (p: RunProgress) => [
  p.done ?? 0,
  p.failed ?? 0,
  p.promptTokens ?? 0,
  p.completionTokens ?? 0,
  p.costUsd ?? 0,
  p.lastError ?? null,
  p.outcome ?? null,
  p.skipped ?? 0,
  p.settledCall?.announced ? 1 : 0,
  p.settledCall?.announced ? p.settledCall.estimatedCostUsd : 0,
];

/**
 * Calls still in flight when an attempt starts or the run ends will never be settled: whoever made
 * them stopped. They become abandoned attempts, counted once (in flight goes back to zero).
 */
const ABANDON_IN_FLIGHT = `abandoned_attempts = abandoned_attempts + in_flight_calls, abandoned_cost_usd = abandoned_cost_usd + in_flight_cost_usd,
  in_flight_calls = 0, in_flight_cost_usd = 0`;

/** What re-parsing a run's stored replies found: replies examined, now parsed into results, still failing. */
export interface ReparseCounts {
  examined: number;
  parsed: number;
  stillFailing: number;
}

/** A kind of run whose failed items keep the model's reply, so that a better parser can turn them into results. */
export interface StoredReplyReparser {
  reparseStoredReplies(ctx: RequestContext, run: Run): Promise<ReparseCounts>;
}

/** One re-parsed item: the owner's statement that turns it into a result, returning a row when it did. */
export interface ReparsedItem {
  /** A data-modifying statement with its own $1..$n; it returns one row when the item became a result. */
  sql: string;
  params: unknown[];
  /** countsByStatus keys: the outcome the item leaves and the one it reaches. */
  from: string;
  to: string;
  /** The run failure the item was recorded as, removed in the same statement. */
  failureId?: string;
}

/** Told once a run has reached SUCCEEDED, FAILED or CANCELLED (webhooks' `run.finished`); must be idempotent. */
/** `requestId`: the request that ended the run when the api did (a cancellation), for what the listener queues. */
export type RunFinishedListener = (run: Run, requestId?: string | null) => Promise<void>;


/** Runs: creation with their job in one transaction, counters, cancellation, reads. */
export class RunsService {
  private readonly reparsers = new Map<RunKind, StoredReplyReparser>();
  /** The read each run event caused, shared by every subscriber of this process that got that event; gone with the event. */
  private readonly readsByEvent = new WeakMap<RunEvent, Promise<Run | null>>();
  private readonly finishedListeners: RunFinishedListener[] = [];

  constructor(
    private readonly ds: DataSource,
    private readonly publisher: RunEventsPublisher,
    /** How long a worker may go without a heartbeat before its runs count as held by no one. */
    private readonly workerDeadAfterMs = 30_000,
  ) {}

  /** The composition root registers the kinds of runs that keep replies (the kernel knows no domain module). */
  registerReparser(kind: RunKind, reparser: StoredReplyReparser): void {
    this.reparsers.set(kind, reparser);
  }

  /** The composition root subscribes other modules to runs reaching a terminal status. */
  onFinished(listener: RunFinishedListener): void {
    this.finishedListeners.push(listener);
  }

  /**
   * Tells the listeners that a run has ended (again, harmlessly: they are idempotent). A listener
   * failing leaves the run's status as it is and fails the caller: in a worker, the job is retried,
   * and the retry of a job whose run has ended announces it again, so a crash or an outage between
   * the status change and the announcement loses no event.
   */
  async announceFinished(runId: string, requestId?: string | null): Promise<void> {
    if (!this.finishedListeners.length) return;
    const run = await this.ds.getRepository(Run).findOneBy({ id: runId });
    if (!run || !isTerminal(run.status)) return;
    for (const listener of this.finishedListeners) await listener(run, requestId);
  }

  /**
   * Applies the current parsers to the replies an ended run stored for its failed items; makes no
   * model call. A run still queued or running is refused (CONFLICT): its worker may be writing the
   * same items, and it parses with the current parsers anyway.
   */
  async reparse(ctx: RequestContext, runId: string): Promise<{ run: Run; counts: ReparseCounts }> {
    ctx.assertRole(Role.CURATOR);
    const run = await this.findById(ctx, runId);
    if (!run) throw new UserErrorsException([userError(UserErrorCode.NOT_FOUND, 'Run not found', ['input', 'runId'])]);
    const reparser = this.reparsers.get(run.kind);
    if (!reparser) throw new UserErrorsException([userError(UserErrorCode.INVALID, `${run.kind} runs keep no model replies to re-parse`, ['input', 'runId'])]);
    if (!isTerminal(run.status)) throw new UserErrorsException([userError(UserErrorCode.CONFLICT, `The run is ${run.status}; re-parse it once it has ended`, ['input', 'runId'])]);
    const counts = await reparser.reparseStoredReplies(ctx, run);
    if (counts.parsed > 0) {
      await this.publisher.flush(run.id);
      this.publisher.done(run.id);
    }
    return { run: (await this.findById(ctx, runId))!, counts };
  }

  /** The failures of a run that kept the model's reply, for re-parsing; `reasonPrefix` picks the kind of failure. */
  async failuresWithReplies(ctx: RequestContext, runId: string, reasonPrefix: string): Promise<{ id: string; itemKey: string; rawOutput: string }[]> {
    const rows: { id: string; item_key: string; raw_output: string }[] = await this.ds.query(
      `SELECT id, item_key, raw_output FROM run_failures WHERE project_id = $1 AND run_id = $2 AND raw_output IS NOT NULL AND starts_with(reason, $3) ORDER BY created_at, id`,
      [ctx.projectId, runId, reasonPrefix],
    );
    return rows.map((r) => ({ id: r.id, itemKey: r.item_key, rawOutput: r.raw_output }));
  }

  /**
   * Moves one re-parsed item from failed to done: the owner's statement, the removal of its failure
   * row and the counters (done, failed, countsByStatus) in one statement, so a repeated or concurrent
   * re-parse moves each item once. A run FAILED because every item failed becomes SUCCEEDED once one
   * succeeds. Returns 1 when the item moved, else 0.
   */
  async recordReparsed(runId: string, item: ReparsedItem): Promise<number> {
    const at = (n: number) => `$${item.params.length + n}`;
    const rows: { moved: number }[] = await this.ds.query(
      `WITH moved AS (${item.sql}),
       removed AS (DELETE FROM run_failures WHERE id = ${at(2)}::uuid AND EXISTS (SELECT 1 FROM moved) RETURNING 1),
       counted AS (
         UPDATE runs SET done = done + (SELECT count(*) FROM moved), failed = failed - (SELECT count(*) FROM moved),
           counts_by_status = jsonb_set(
             jsonb_set(counts_by_status, ARRAY[${at(3)}::text], to_jsonb(greatest(coalesce((counts_by_status ->> ${at(3)}::text)::int, 0) - (SELECT count(*) FROM moved)::int, 0))),
             ARRAY[${at(4)}::text], to_jsonb(coalesce((counts_by_status ->> ${at(4)}::text)::int, 0) + (SELECT count(*) FROM moved)::int)),
           status = CASE WHEN status = 'FAILED' AND total > 0 AND done + failed + skipped >= total AND failed - (SELECT count(*) FROM moved) < total - skipped
                         THEN 'SUCCEEDED'::run_status ELSE status END,
           updated_at = now()
         WHERE id = ${at(1)} AND EXISTS (SELECT 1 FROM moved) RETURNING 1)
       SELECT (SELECT count(*) FROM moved)::int AS moved, (SELECT count(*) FROM counted)::int AS counted`,
      [...item.params, runId, item.failureId ?? null, item.from, item.to],
    );
    return rows[0].moved;
  }

  async list(ctx: RequestContext, page: PageArgs, filter?: { kinds?: RunKind[] | null; statuses?: RunStatus[] | null } | null): Promise<ConnectionShape<Run>> {
    const base = () => {
      const qb = this.ds.getRepository(Run).createQueryBuilder('r').where('r.projectId = :p', { p: ctx.projectId });
      if (filter?.kinds?.length) qb.andWhere('r.kind IN (:...kinds)', { kinds: filter.kinds });
      if (filter?.statuses?.length) qb.andWhere('r.status IN (:...statuses)', { statuses: filter.statuses });
      return qb;
    };
    const rows = await applyKeyset(base(), { sortExpr: 'r.createdAt', idExpr: 'r.id', direction: SortDirection.DESC }, page).getMany();
    return toConnection(rows, page, (r) => ({ value: r.createdAt, id: r.id }), () => base().getCount());
  }

  async findById(ctx: RequestContext, id: string): Promise<Run | null> {
    return this.ds.getRepository(Run).findOneBy({ id, projectId: ctx.projectId });
  }

  /**
   * The run as it is after `event`, for a subscriber: one event reaches every subscriber of the run
   * in this process as the same object, and the first of them to ask reads the run for all (a
   * thousand subscribers made a thousand identical reads per event, queued on the pool, and
   * delivery waited on the last of them). The read starts after the event arrived, so it sees the
   * change the event announces. Scoped as findById: the caller's project only.
   */
  async findAfterEvent(ctx: RequestContext, event: RunEvent): Promise<Run | null> {
    let read = this.readsByEvent.get(event);
    if (!read) {
      read = this.ds.getRepository(Run).findOneBy({ id: event.runId });
      this.readsByEvent.set(event, read);
    }
    const run = await read;
    return run && run.projectId === ctx.projectId ? run : null;
  }

  /** For workers, which act for whichever project the run belongs to. */
  async findForWorker(id: string): Promise<Run | null> {
    return this.ds.getRepository(Run).findOneBy({ id });
  }

  async failures(ctx: RequestContext, runId: string, page: PageArgs): Promise<ConnectionShape<RunFailure>> {
    const base = () => this.ds.getRepository(RunFailure).createQueryBuilder('f').where('f.projectId = :p AND f.runId = :r', { p: ctx.projectId, r: runId });
    const rows = await applyKeyset(base(), { sortExpr: 'f.createdAt', idExpr: 'f.id', direction: SortDirection.DESC }, page).getMany();
    return toConnection(rows, page, (f) => ({ value: f.createdAt, id: f.id }), () => base().getCount());
  }

  async findFailureById(ctx: RequestContext, id: string): Promise<RunFailure | null> {
    return this.ds.getRepository(RunFailure).findOneBy({ id, projectId: ctx.projectId });
  }

  /** Checks that every id is a run of `kind` in the caller's project; NOT_FOUND on `field` otherwise. */
  async assertRunsOfKind(ctx: RequestContext, globalIds: string[] | null | undefined, kind: RunKind, field: string[]): Promise<void> {
    if (!globalIds?.length) return;
    const ids = [...new Set(globalIds.map((id) => expectGlobalId(id, 'Run', field.join('.'))))];
    const [{ found }]: { found: number }[] = await this.ds.query(`SELECT count(*)::int AS found FROM runs WHERE project_id = $1 AND kind = $2 AND id = ANY($3::uuid[])`, [ctx.projectId, kind, ids]);
    if (found !== ids.length) throw new UserErrorsException([userError(UserErrorCode.NOT_FOUND, `${ids.length - found} of the ${kind.toLowerCase()} runs were not found`, field)]);
  }

  /** Adds a finished attempt's stage timings to the run's metrics (summed across attempts). */
  async addMetrics(runId: string, metrics: Record<string, number>): Promise<void> {
    await this.ds.query(
      `UPDATE runs SET metrics = coalesce(metrics, '{}'::jsonb) || (SELECT jsonb_object_agg(key, coalesce((runs.metrics ->> key)::float8, 0) + value::float8) FROM jsonb_each_text($2::jsonb)),
         updated_at = now() WHERE id = $1`,
      [runId, JSON.stringify(metrics)],
    );
  }

  /** The run, its frozen targets and its job, all or nothing. */
  async create(ctx: RequestContext, spec: NewRun, outer?: EntityManager): Promise<Run> {
    // Inside a caller's transaction (an import and the run that fetches its images) or in one of its own.
    const inTransaction = <T>(work: (em: EntityManager) => Promise<T>) => (outer ? work(outer) : this.ds.transaction(work));
    const run = await inTransaction(async (em) => {
      const created = await em.getRepository(Run).save(em.getRepository(Run).create({ projectId: ctx.projectId, kind: spec.kind, status: RunStatus.QUEUED, params: spec.params, createdById: ctx.userId }));
      const [sql, parameters] = spec.targets.getQueryAndParameters();
      const [{ targets }]: { targets: number }[] = await em.query(
        `WITH frozen AS (INSERT INTO run_targets (run_id, target_id) SELECT $${parameters.length + 1}::uuid, t.id FROM (${sql}) t ON CONFLICT DO NOTHING RETURNING 1)
         SELECT count(*)::int AS targets FROM frozen`,
        [...parameters, created.id],
      );
      created.total = spec.countItems ? await spec.countItems(em) : targets * (spec.itemsPerTarget ?? 1);
      await em.update(Run, { id: created.id }, { total: created.total });
      // The request id goes with the job, so the worker's log lines for this run carry it.
      await enqueueJob(em, RUN_TASK, { runId: created.id, ...(ctx.requestId ? { requestId: ctx.requestId } : {}) }, { jobKey: runJobKey(created.id) });
      return created;
    });
    return run;
  }

  /**
   * A queued run stops at once; so does a running one that no live worker holds (its worker died,
   * or its job is gone), since no one would ever notice the request. A run a live worker holds
   * stops at that worker's next check.
   */
  async requestCancel(ctx: RequestContext, id: string): Promise<Run | null> {
    const run = await this.ds.transaction(async (em) => {
      const found = await em.getRepository(Run).findOne({ where: { id, projectId: ctx.projectId }, lock: { mode: 'pessimistic_write' } });
      if (!found || isTerminal(found.status)) return found;
      found.cancelRequestedAt = new Date();
      if (found.status === RunStatus.QUEUED) {
        found.status = RunStatus.CANCELLED;
        found.finishedAt = found.cancelRequestedAt;
        await removeQueuedJob(em, runJobKey(found.id));
      } else if (!(await isJobHeldByLiveWorker(em, runJobKey(found.id), this.workerDeadAfterMs))) {
        found.status = RunStatus.CANCELLED;
        found.finishedAt = found.cancelRequestedAt;
        // The dead worker's calls in flight will never be settled (as ABANDON_IN_FLIGHT does).
        found.abandonedAttempts += found.inFlightCalls;
        found.abandonedCostUsd = Number(found.abandonedCostUsd) + Number(found.inFlightCostUsd);
        found.inFlightCalls = 0;
        found.inFlightCostUsd = 0;
        await deleteJob(em, runJobKey(found.id));
      }
      return em.getRepository(Run).save(found);
    });
    if (run) await this.publisher.flush(run.id);
    if (run && isTerminal(run.status)) this.publisher.done(run.id);
    // The cancellation is committed: a failed announcement is logged, not turned into a failed mutation.
    if (run?.status === RunStatus.CANCELLED) await this.announceFinished(run.id, ctx.requestId).catch((error) => logger.error('run finished listener failed', { requestId: ctx.requestId, runId: run.id, error: String(error) }));
    return run;
  }

  /** Adds to the run's counters (work whose result is not a row of its own, such as clustering's). */
  async addProgress(em: EntityManager, runId: string, progress: RunProgress): Promise<void> {
    await em.query(`UPDATE runs SET ${COUNTERS_SET} WHERE id = $1`, [runId, ...counterValues(progress)]);
  }

  /**
   * Inserts an item's result and, only when the row is new, adds the item to the run's counters:
   * one statement, so both happen or neither, and a repeated item counts once. True when new.
   * Subscribers hear of it (throttled) from this same call: no kind has to remember to publish.
   */
  async recordItem<T extends ObjectLiteral>(insert: InsertQueryBuilder<T>, runId: string, progress: RunProgress): Promise<boolean> {
    const [insertSql, insertParameters] = insert.orIgnore().updateEntity(false).returning('id').getQueryAndParameters();
    const offset = insertParameters.length;
    const counters = COUNTERS_SET.replace(/\$(\d+)/g, (_, n) => `$${Number(n) + offset}`);
    const rows: unknown[] = await this.ds.query(
      `WITH inserted AS (${insertSql}),
            counted AS (UPDATE runs SET ${counters} WHERE id = $${offset + 1} AND EXISTS (SELECT 1 FROM inserted) RETURNING 1)
       SELECT 1 FROM counted`,
      [...insertParameters, runId, ...counterValues(progress)],
    );
    if (rows.length) this.publisher.touch(runId);
    return rows.length > 0;
  }

  /**
   * A batch of items in one statement: `results` inserts the batch's result rows (its own $1..$n,
   * ignoring rows that exist), `failures` are the items given up on. Only new rows count, as done
   * or failed, so a repeated batch counts once; of the `offered` result rows, those that already
   * existed were written by another run and count as skipped.
   */
  async recordBatch(
    run: Pick<Run, 'id' | 'projectId'>,
    results: { sql: string; params: unknown[]; offered: number },
    failures: { itemKey: string; reason: string }[],
    outcomes: { done: string; failed: string; skipped: string },
  ): Promise<void> {
    const at = (n: number) => `$${results.params.length + n}`;
    await this.ds.query(
      `WITH inserted AS (${results.sql} RETURNING 1),
       failed AS (
         INSERT INTO run_failures (project_id, run_id, item_key, reason, attempts)
         SELECT ${at(2)}, ${at(1)}, f.item_key, f.reason, 1 FROM unnest(${at(3)}::text[], ${at(4)}::text[]) AS f(item_key, reason)
         ON CONFLICT (run_id, item_key) DO NOTHING RETURNING reason),
       n AS (SELECT (SELECT count(*) FROM inserted)::int AS done, (SELECT count(*) FROM failed)::int AS failed)
       UPDATE runs SET done = runs.done + n.done, failed = runs.failed + n.failed, skipped = runs.skipped + (${at(5)}::int - n.done),
         counts_by_status = counts_by_status || jsonb_build_object(
           ${at(6)}::text, coalesce((counts_by_status ->> ${at(6)}::text)::int, 0) + n.done,
           ${at(7)}::text, coalesce((counts_by_status ->> ${at(7)}::text)::int, 0) + n.failed,
           ${at(8)}::text, coalesce((counts_by_status ->> ${at(8)}::text)::int, 0) + (${at(5)}::int - n.done)),
         last_error = coalesce((SELECT min(reason) FROM failed), last_error), updated_at = now()
       FROM n WHERE id = ${at(1)}`,
      [...results.params, run.id, run.projectId, failures.map((f) => f.itemKey), failures.map((f) => f.reason), results.offered, outcomes.done, outcomes.failed, outcomes.skipped],
    );
    this.publisher.touch(run.id);
  }

  /**
   * Items another run had finished before this attempt listed its pending items: set, not added,
   * since every attempt counts them afresh (the count includes those skipped at write time before).
   */
  async setSkipped(runId: string, skipped: number, outcome: string): Promise<void> {
    await this.ds.query(`UPDATE runs SET skipped = $2, counts_by_status = jsonb_set(counts_by_status, ARRAY[$3::text], to_jsonb($2::int)), updated_at = now() WHERE id = $1`, [runId, skipped, outcome]);
  }

  /** The run's frozen targets (image or candidate ids), in a stable order. */
  async targetIds(runId: string): Promise<string[]> {
    const rows: { target_id: string }[] = await this.ds.query(`SELECT target_id FROM run_targets WHERE run_id = $1 ORDER BY target_id`, [runId]);
    return rows.map((r) => r.target_id);
  }

  /** Keys of the items the run gave up on: settled, so a resumed run does not take them again. */
  async failedItemKeys(runId: string): Promise<Set<string>> {
    const rows: { item_key: string }[] = await this.ds.query(`SELECT item_key FROM run_failures WHERE run_id = $1`, [runId]);
    return new Set(rows.map((r) => r.item_key));
  }

  /** Adds what the run found out to its params (clustering: the clusters it made). */
  async mergeParams(runId: string, patch: Record<string, unknown>): Promise<void> {
    await this.ds.query(`UPDATE runs SET params = params || $2::jsonb, updated_at = now() WHERE id = $1`, [runId, JSON.stringify(patch)]);
  }

  /** A model call is about to be sent for the run: in flight until an item settles it, abandoned if its worker stops first. */
  async callStarted(runId: string, call: InFlightCall): Promise<void> {
    await this.ds.query(`UPDATE runs SET in_flight_calls = in_flight_calls + 1, in_flight_cost_usd = in_flight_cost_usd + $2 WHERE id = $1`, [runId, call.estimatedCostUsd]);
  }

  /** For runs whose result is written at the end in one go: each attempt counts from zero. */
  async resetCounters(runId: string): Promise<void> {
    await this.ds.query(`UPDATE runs SET done = 0, failed = 0, skipped = 0, counts_by_status = '{}', updated_at = now() WHERE id = $1`, [runId]);
  }

  async markRunning(runId: string): Promise<void> {
    await this.ds.query(`UPDATE runs SET status = 'RUNNING', started_at = coalesce(started_at, now()), ${ABANDON_IN_FLIGHT}, updated_at = now() WHERE id = $1 AND status IN ('QUEUED', 'RUNNING')`, [runId]);
    await this.publisher.flush(runId);
  }

  async finish(runId: string, status: RunStatus, lastError?: string | null): Promise<void> {
    await this.ds.query(`UPDATE runs SET status = $2, finished_at = now(), last_error = coalesce($3, last_error), ${ABANDON_IN_FLIGHT}, updated_at = now() WHERE id = $1 AND status NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED')`, [
      runId,
      status,
      lastError ?? null,
    ]);
    await this.publisher.flush(runId);
    this.publisher.done(runId);
    await this.announceFinished(runId);
  }

  /** The handler went through every item: FAILED when every item it processed failed, else SUCCEEDED. */
  async finishCompleted(runId: string): Promise<void> {
    await this.ds.query(
      `UPDATE runs SET status = CASE WHEN failed > 0 AND failed >= total - skipped THEN 'FAILED'::run_status ELSE 'SUCCEEDED'::run_status END,
         finished_at = now(), ${ABANDON_IN_FLIGHT}, updated_at = now() WHERE id = $1 AND status NOT IN ('SUCCEEDED', 'FAILED', 'CANCELLED')`,
      [runId],
    );
    await this.publisher.flush(runId);
    this.publisher.done(runId);
    await this.announceFinished(runId);
  }

  async recordError(runId: string, lastError: string): Promise<void> {
    await this.ds.query(`UPDATE runs SET last_error = $2, updated_at = now() WHERE id = $1`, [runId, lastError]);
    this.publisher.touch(runId);
  }

  async cancelRequested(runId: string): Promise<boolean> {
    const rows: { requested: boolean }[] = await this.ds.query(`SELECT cancel_requested_at IS NOT NULL AS requested FROM runs WHERE id = $1`, [runId]);
    return rows[0]?.requested ?? true;
  }

  progressed(runId: string): void {
    this.publisher.touch(runId);
  }

  /** An item the run gave up on, counted as failed once. */
  async recordFailure(run: Run, failure: { itemKey: string; reason: string; rawOutput?: string | null; attempts: number }, progress: RunProgress): Promise<boolean> {
    const insert = this.ds
      .createQueryBuilder()
      .insert()
      .into(RunFailure)
      .values({ projectId: run.projectId, runId: run.id, itemKey: failure.itemKey, reason: failure.reason, rawOutput: failure.rawOutput ?? null, attempts: failure.attempts });
    return this.recordItem(insert, run.id, { ...progress, done: 0, failed: 1, lastError: failure.reason });
  }
}
