import os from 'node:os';
import crypto from 'node:crypto';
import { Pool } from 'pg';
import { EntityManager } from 'typeorm';
import { EventEmitter } from 'node:events';
import { JobHelpers, Logger as GraphileLogger, run as runGraphileWorker, runMigrations, Runner, TaskList, WorkerEvents } from 'graphile-worker';
import { logger } from './logging';

/**
 * The durable job queue: graphile-worker over the same Postgres. Jobs are added inside the
 * caller's transaction, so a run and its job exist together or not at all.
 */
export async function migrateJobQueue(connectionString: string): Promise<void> {
  const pool = withErrorLog(new Pool({ connectionString, max: 1 }));
  try {
    await runMigrations({ pgPool: pool, logger: quietLogger });
  } finally {
    await pool.end();
  }
}

export interface EnqueueOptions {
  /** Deduplicates: adding a job whose key is already queued keeps one job. */
  jobKey: string;
  maxAttempts?: number;
}

export async function enqueueJob(manager: EntityManager, task: string, payload: object, options: EnqueueOptions): Promise<void> {
  await manager.query(`SELECT graphile_worker.add_job($1, $2::json, job_key => $3, max_attempts => $4, job_key_mode => 'preserve_run_at')`, [
    task,
    JSON.stringify(payload),
    options.jobKey,
    options.maxAttempts ?? 5,
  ]);
}

/** Removes a job that no worker has taken yet; a locked job is left to notice by itself. */
export async function removeQueuedJob(manager: EntityManager, jobKey: string): Promise<void> {
  await manager.query(`SELECT graphile_worker.remove_job($1)`, [jobKey]);
}

export type JobHandler = (payload: unknown, helpers: JobHelpers) => Promise<void>;

export interface JobWorkerOptions {
  connectionString: string;
  tasks: Record<string, JobHandler>;
  concurrency: number;
  pollIntervalMs: number;
  heartbeatMs: number;
  deadAfterMs: number;
}

export interface JobWorker {
  stop(): Promise<void>;
}

/**
 * Starts graphile-worker with liveness on top: every worker beats in `worker_heartbeats`, and any
 * process unlocks the jobs of workers that stopped beating, so a run held by a killed process is
 * resumed after `deadAfterMs` instead of graphile-worker's four-hour lock timeout.
 */
export async function startJobWorker(options: JobWorkerOptions): Promise<JobWorker> {
  const pool = withErrorLog(new Pool({ connectionString: options.connectionString, max: options.concurrency + 3 }));
  const processName = `${os.hostname()}:${process.pid}:${crypto.randomBytes(3).toString('hex')}`;
  // graphile-worker (0.16+) locks jobs with its worker pool's id (`locked_by`), not the ids of the
  // pool's workers, so the pool id is what must beat. The pool is created inside run(), before it
  // resolves: listen on an emitter of our own, passed in, or the event is missed.
  const workerIds = new Set<string>();
  const events = new EventEmitter() as WorkerEvents;
  events.on('pool:create', ({ workerPool }) => {
    workerIds.add(workerPool.id);
    void beat(pool, [workerPool.id], processName);
  });
  const runner = await RestartingRunner.start(
    () =>
      runGraphileWorker({
        pgPool: pool,
        taskList: options.tasks as TaskList,
        concurrency: options.concurrency,
        pollInterval: options.pollIntervalMs,
        noHandleSignals: true,
        logger: quietLogger,
        events,
        // Recording a job's outcome through graphile-worker's batcher: when the database is gone, a
        // failed write ends the pool (and RestartingRunner starts a new one) instead of being an
        // unawaited promise that rejects unhandled and leaves the job locked by a live pool forever.
        preset: { worker: { completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
      }),
    pool,
    workerIds,
  );
  const outage = new OutageClock();
  pool.on('error', () => outage.failed());
  const liveness = setInterval(() => void keepAlive(pool, [...workerIds], processName, options.deadAfterMs, outage), options.heartbeatMs);
  liveness.unref();
  await keepAlive(pool, [...workerIds], processName, options.deadAfterMs, outage);
  logger.info('worker started', { process: processName, concurrency: options.concurrency });
  return {
    stop: async () => {
      clearInterval(liveness);
      await runner.stop();
      await pool.query(`DELETE FROM worker_heartbeats WHERE process = $1`, [processName]).catch(() => undefined);
      await pool.end();
    },
  };
}

async function beat(pool: Pool, workerIds: string[], processName: string, outage?: OutageClock): Promise<void> {
  if (!workerIds.length) return;
  await pool
    .query(
      `INSERT INTO worker_heartbeats (worker_id, process, beat_at) SELECT unnest($1::text[]), $2, now()
       ON CONFLICT (worker_id) DO UPDATE SET beat_at = now()`,
      [workerIds, processName],
    )
    .catch((error) => {
      outage?.failed();
      logger.warn('heartbeat failed', { error: String(error) });
    });
}

async function keepAlive(pool: Pool, workerIds: string[], processName: string, deadAfterMs: number, outage?: OutageClock): Promise<void> {
  await beat(pool, workerIds, processName, outage);
  // Every worker lost the database too and could not beat: give them a full window to beat again
  // before any of them is taken for dead, or live runs would be released and run twice.
  if (outage?.within(deadAfterMs)) return;
  try {
    const { rows } = await pool.query<{ locked_by: string }>(
      `SELECT DISTINCT j.locked_by FROM graphile_worker._private_jobs j
       WHERE j.locked_by IS NOT NULL AND j.locked_at < now() - make_interval(secs => $1 / 1000.0)
         AND NOT EXISTS (SELECT 1 FROM worker_heartbeats h WHERE h.worker_id = j.locked_by AND h.beat_at >= now() - make_interval(secs => $1 / 1000.0))`,
      [deadAfterMs],
    );
    const dead = rows.map((r) => r.locked_by);
    // Pools that held no job when their process died (a killed worker's idle webhook pool) are
    // released by nothing above: drop their beats once they are as old as a dead worker's.
    await pool.query(`DELETE FROM worker_heartbeats WHERE beat_at < now() - make_interval(secs => $1 / 1000.0)`, [deadAfterMs]);
    if (!dead.length) return;
    await releaseJobsOfDeadWorkers(pool, dead);
    await pool.query(`DELETE FROM worker_heartbeats WHERE worker_id = ANY($1::text[])`, [dead]);
    logger.warn('released the jobs of workers that stopped', { workers: dead });
  } catch (error) {
    logger.warn('liveness check failed', { error: String(error) });
  }
}

/** When this process last failed to reach the database. */
class OutageClock {
  private lastFailureAt = 0;

  failed(): void {
    this.lastFailureAt = Date.now();
  }

  within(ms: number): boolean {
    return Date.now() - this.lastFailureAt < ms;
  }
}

const RESTART_MIN_MS = 250;
const RESTART_MAX_MS = 5_000;

/**
 * graphile-worker's runner ends for good (its promise rejects) when it cannot record a job's outcome,
 * which is what a database outage does to a busy worker; left alone, that rejection killed the
 * process. This keeps one runner going: when it ends without being asked to, a new one starts with
 * backoff once the database answers again. Jobs the ended runner still held are released at once for
 * a retry (its pool has shut down, so nothing runs them any more), and its pool id stops beating.
 */
class RestartingRunner {
  private stopping = false;

  private constructor(
    private runner: Runner | null,
    private readonly startRunner: () => Promise<Runner>,
    private readonly pool: Pool,
    private readonly workerIds: Set<string>,
  ) {}

  static async start(startRunner: () => Promise<Runner>, pool: Pool, workerIds: Set<string>): Promise<RestartingRunner> {
    const supervised = new RestartingRunner(await startRunner(), startRunner, pool, workerIds);
    supervised.watch(supervised.runner!);
    return supervised;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.runner?.stop().catch((error) => logger.warn('job runner stop failed', { error: String(error) }));
  }

  private watch(runner: Runner): void {
    runner.promise.then(
      () => this.restart(runner, null),
      (error: unknown) => this.restart(runner, error),
    );
  }

  private async restart(ended: Runner, error: unknown): Promise<void> {
    if (this.stopping || ended !== this.runner) return;
    this.runner = null;
    const endedPools = [...this.workerIds];
    logger.error('job runner stopped; restarting once the database answers', { error: error instanceof Error ? error.message : String(error) });
    for (let delay = RESTART_MIN_MS; !this.stopping; delay = Math.min(delay * 2, RESTART_MAX_MS)) {
      await new Promise((resolve) => setTimeout(resolve, delay));
      if (this.stopping) return;
      try {
        await this.pool.query('SELECT 1');
        await this.releaseEndedPools(endedPools);
        const runner = await this.startRunner();
        if (this.stopping) return void (await runner.stop().catch(() => undefined));
        this.runner = runner;
        this.watch(runner);
        logger.info('job runner restarted');
        return;
      } catch (retryError) {
        logger.warn('job runner restart failed; retrying', { error: String(retryError), retryInMs: Math.min(delay * 2, RESTART_MAX_MS) });
      }
    }
  }

  private async releaseEndedPools(poolIds: string[]): Promise<void> {
    if (!poolIds.length) return;
    // Like a takeover of a dead worker's job, an outage is not a failed attempt: the attempt is given back.
    await releaseJobsOfDeadWorkers(this.pool, poolIds);
    await this.pool.query(`DELETE FROM worker_heartbeats WHERE worker_id = ANY($1::text[])`, [poolIds]);
    for (const id of poolIds) this.workerIds.delete(id);
  }
}

/**
 * Unlocks the jobs (and job queues) of workers that stopped beating, as graphile-worker's
 * `force_unlock_workers` does, and gives back the attempt each job's lost lock used: a takeover of
 * a killed process's job is not a failed attempt, or a run whose worker was killed `max_attempts`
 * times would never be picked again and stay RUNNING for good. One statement, so two processes
 * releasing the same dead worker at once give the attempt back once (the second finds it unlocked).
 */
async function releaseJobsOfDeadWorkers(pool: Pool, workerIds: string[]): Promise<void> {
  await pool.query(
    `WITH released AS (
       UPDATE graphile_worker._private_jobs SET locked_at = NULL, locked_by = NULL, attempts = greatest(attempts - 1, 0)
       WHERE locked_by = ANY($1::text[]) RETURNING id),
     queues AS (
       UPDATE graphile_worker._private_job_queues SET locked_at = NULL, locked_by = NULL
       WHERE locked_by = ANY($1::text[]) RETURNING id)
     SELECT (SELECT count(*) FROM released)::int AS jobs, (SELECT count(*) FROM queues)::int AS queues`,
    [workerIds],
  );
}

/**
 * Whether a live worker holds the job: it is locked by a worker that beat within `deadAfterMs`.
 * A job that is missing, unlocked, or locked by a worker that stopped beating has no one working on it.
 */
export async function isJobHeldByLiveWorker(manager: EntityManager, jobKey: string, deadAfterMs: number): Promise<boolean> {
  const rows: unknown[] = await manager.query(
    `SELECT 1 FROM graphile_worker._private_jobs j JOIN worker_heartbeats h ON h.worker_id = j.locked_by
     WHERE j.key = $1 AND h.beat_at >= now() - make_interval(secs => $2 / 1000.0)`,
    [jobKey, deadAfterMs],
  );
  return rows.length > 0;
}

/** Deletes a job whatever its lock: for a job no live worker holds (a dead worker's lock is void). */
export async function deleteJob(manager: EntityManager, jobKey: string): Promise<void> {
  await manager.query(`DELETE FROM graphile_worker._private_jobs WHERE key = $1`, [jobKey]);
}

/** The error a job attempt ends with when its worker stops gracefully; the attempt is given back (see below). */
export const SHUTDOWN_MESSAGE = 'worker shutting down; the run resumes on the next attempt';

/**
 * Gives back the attempt that a graceful shutdown (SIGTERM, a deploy) used, when the job starts
 * again: like a takeover after a kill, a shutdown is not a failed attempt, or a run restarted
 * `max_attempts` times would never be picked again. Returns the attempts that count.
 */
export async function attemptsCounting(helpers: JobHelpers): Promise<number> {
  if (!helpers.job.last_error?.includes(SHUTDOWN_MESSAGE)) return helpers.job.attempts;
  const { rows } = await helpers.query<{ attempts: number }>(
    `UPDATE graphile_worker._private_jobs SET attempts = greatest(attempts - 1, 1), last_error = NULL WHERE id = $1 RETURNING attempts`,
    [helpers.job.id],
  );
  return rows[0]?.attempts ?? helpers.job.attempts;
}

/** An idle client losing its connection must not crash the process; the pool replaces it. */
function withErrorLog(pool: Pool): Pool {
  const log = (error: Error) => logger.warn('job queue connection error', { error: error.message });
  pool.on('error', log);
  pool.on('connect', (client) => client.on('error', log));
  return pool;
}

const quietLogger = new GraphileLogger(() => (level: string, message: string, meta?: unknown) => {
  if (level === 'error') logger.error(`graphile-worker: ${message}`, meta as Record<string, unknown>);
  else if (level === 'warning') logger.warn(`graphile-worker: ${message}`, meta as Record<string, unknown>);
  else logger.debug(`graphile-worker: ${message}`);
});
