import { DataSource } from 'typeorm';
import { WorkerProcess } from './worker-process';

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
