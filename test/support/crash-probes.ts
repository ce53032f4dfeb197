import { DataSource } from 'typeorm';
import { WorkerProcess } from './worker-process';

/**
 * Liveness settings fast enough that a killed worker is noticed, and its job taken over, within
 * seconds: what every crash test runs its workers with unless it says otherwise.
 */
export const FAST_LIVENESS: Record<string, string> = { WORKER_HEARTBEAT_MS: '300', WORKER_DEAD_AFTER_MS: '1500', WORKER_POLL_MS: '200' };

/**
 * The worker processes one crash test file starts (only these execute its runs: the test app has
 * no in-process worker). `env` is read at each start, so it can name what beforeAll set up.
 */
export class CrashWorkers {
  private workers: WorkerProcess[] = [];

  constructor(private readonly env: () => Record<string, string>) {}

  start(): WorkerProcess {
    const worker = WorkerProcess.spawn({ ...FAST_LIVENESS, LOG_LEVEL: 'warn', SEED_DEMO: 'false', ...this.env() });
    this.workers.push(worker);
    return worker;
  }

  /** For afterEach and afterAll: no worker outlives its test to take the next test's jobs. */
  async killAll(): Promise<void> {
    await Promise.all(this.workers.splice(0).map((w) => w.kill()));
  }
}

/** The queue's job with whether the worker that locked it has beaten within `freshMs` (liveness leaves such a job alone). */
export async function jobLockLiveness(ds: DataSource, freshMs = 1500): Promise<{ locked_by: string | null; fresh: boolean | null }> {
  const [row] = await ds.query(
    `SELECT j.locked_by, h.beat_at > now() - make_interval(secs => $1::float8 / 1000) AS fresh
     FROM graphile_worker._private_jobs j LEFT JOIN worker_heartbeats h ON h.worker_id = j.locked_by`,
    [freshMs],
  );
  return row;
}

/** What crash tests read of a run while workers come and go. */
export async function runRow(ds: DataSource, runId: string): Promise<{ status: string; done: number; failed: number }> {
  const [row] = await ds.query(`SELECT status, done, failed FROM runs WHERE id = $1`, [runId]);
  return row;
}

/**
 * Polls `count` until it reaches `atLeast`; fails when it reached `total` first (the run ended before
 * the worker could be stopped), when the worker exited, or after `timeoutMs`.
 */
export async function waitForProgress(what: string, count: () => Promise<number>, atLeast: number, total: number, worker: WorkerProcess, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = await count();
    if (n >= total) throw new Error(`the run finished before the worker could be stopped (${n} ${what})`);
    if (n >= atLeast) return;
    if (!worker.running) throw new Error(`worker exited early:\n${worker.log}`);
    if (Date.now() > deadline) throw new Error(`only ${n} ${what} after ${timeoutMs} ms:\n${worker.log}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export async function queuedJobCount(ds: DataSource): Promise<number> {
  const [row] = await ds.query(`SELECT count(*)::int AS n FROM graphile_worker._private_jobs`);
  return row.n;
}

/** The job is completed (deleted) just after the run is marked finished, so allow a moment. */
export async function waitForNoJobs(ds: DataSource, timeoutMs = 5_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let n = await queuedJobCount(ds);
  while (n > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    n = await queuedJobCount(ds);
  }
  return n;
}
