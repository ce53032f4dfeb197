/**
 * A scoring run outlives the worker process that runs it: a real worker (`npm run worker`) is
 * SIGKILLed, or SIGTERMed, while the run is part-way, a second worker process takes the run over,
 * and every candidate ends with exactly one score from the selector, the run's counters equal to
 * the scores it wrote. Real worker processes, a real Postgres and graphile-worker, ONNX Runtime.
 */
import sharp from 'sharp';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { seedPipeline, waitForRun } from '../support/pipeline-fixture';
import { referenceSelectorUpload, registerSelector, seedCandidates, selectorGlobalId, START_SCORING } from '../support/scoring-fixture';
import { CrashWorkers, jobLockLiveness, runRow, waitForNoJobs, waitForProgress } from '../support/crash-probes';
import { fromGlobalId } from '../../src/platform/ids';

jest.setTimeout(120_000);

/** Generated figures besides the five shared ones, and candidates per figure. */
const GENERATED_IMAGES = 95;
const PER_IMAGE = 60;
const TOTAL = (GENERATED_IMAGES + 5) * PER_IMAGE;
/** Small batches: many commits, so a kill lands between two of them, far from the end. */
const BATCH_SIZE = 20;
/**
 * graphile-worker gives a stopping worker's jobs 5 s before it aborts them. One candidate per batch
 * (a commit each) over 6,000 candidates makes the run outlast that about threefold on two cores, so
 * the abort and the retry are what gets tested.
 */
const SIGTERM_BATCH_SIZE = 1;
/** Signal the first worker once this many scores exist: a few batches in. */
const STOP_AFTER = 60;

/** A distinct 160×120 PNG with a gradient and a seed-placed block. */
function figure(seed: number): Promise<Buffer> {
  const width = 160;
  const height = 120;
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i += 3) {
      const inBlock = Math.abs(x - ((seed * 37) % width)) < 20 && Math.abs(y - ((seed * 53) % height)) < 15;
      raw[i] = inBlock ? 240 : (x * 255) / width;
      raw[i + 1] = inBlock ? 30 : (y * 255) / height;
      raw[i + 2] = (seed * 11) % 256;
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

describe('crash and resume of a scoring run across worker processes', () => {
  let app: TestApp;
  let lab: TestProject;
  const workers = new CrashWorkers(() => ({ DATABASE_URL: app.databaseUrl }));

  beforeAll(async () => {
    // No in-process worker: only the child processes below execute runs.
    app = await startTestApp();
    lab = await createTestProject(app, 'scoring-crash');
    const { imageIds } = await seedPipeline(app, lab, { demonstrations: false });
    for (let i = 1; i <= GENERATED_IMAGES; i++) {
      const image = await app.services.images.upload(lab.ctx(), await figure(i), `figure-${i}.png`, { caption: `Synthetic figure ${i}: a gradient with one bright block.` });
      imageIds.push(image.id);
    }
    await seedCandidates(app, lab, imageIds, PER_IMAGE);
  });

  afterEach(async () => {
    await workers.killAll();
  });

  afterAll(async () => {
    await workers.killAll();
    await app?.stop();
  });

  /** A selector of its own per test (another seed), so every candidate is unscored for it. */
  async function newSelector(name: string, seed: number): Promise<string> {
    const res = await registerSelector(app, lab.keys.CURATOR, name, referenceSelectorUpload({ seed }));
    expect(res.errors).toBeUndefined();
    return fromGlobalId(res.data!.registerSelectorModel.selectorModel.id)!.id;
  }

  async function startRun(selectorId: string, batchSize: number): Promise<{ globalId: string; id: string }> {
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, START_SCORING, { input: { selectorModelId: selectorGlobalId(selectorId), batchSize } });
    expect(res.errors).toBeUndefined();
    const started = res.data!.startScoringRun;
    expect(started.userErrors).toEqual([]);
    expect(started.run).toMatchObject({ kind: 'SCORING', status: 'QUEUED', total: TOTAL });
    return { globalId: started.run.id, id: fromGlobalId(started.run.id)!.id };
  }

  async function scoresOf(runId: string): Promise<number> {
    const [row] = await app.ds.query(`SELECT count(*)::int AS n FROM scores WHERE run_id = $1`, [runId]);
    return row.n;
  }





  /** What a stopped worker left: some scores, not all, and counters that match them exactly. */
  async function expectPartial(runId: string): Promise<number> {
    const scored = await scoresOf(runId);
    expect(scored).toBeGreaterThanOrEqual(STOP_AFTER);
    expect(scored).toBeLessThan(TOTAL);
    // Each batch's scores and counters commit in one statement: never one without the other.
    expect(await runRow(app.ds, runId)).toEqual({ status: 'RUNNING', done: scored, failed: 0 });
    return scored;
  }

  async function expectExactlyOnce(run: { globalId: string; id: string }, selectorId: string, finished: Record<string, any>): Promise<void> {
    expect(finished).toMatchObject({ status: 'SUCCEEDED', total: TOTAL, done: TOTAL, failed: 0, lastError: null });
    const [scores] = await app.ds.query(
      `SELECT count(*)::int AS rows, count(DISTINCT candidate_id)::int AS candidates, count(*) FILTER (WHERE run_id = $2)::int AS by_run,
              count(*) FILTER (WHERE value = 'NaN' OR value IN ('Infinity', '-Infinity'))::int AS non_finite
         FROM scores WHERE selector_model_id = $1`,
      [selectorId, run.id],
    );
    expect(scores).toEqual({ rows: TOTAL, candidates: TOTAL, by_run: TOTAL, non_finite: 0 });
    // Every frozen target has its score: nothing skipped by the takeover.
    const [{ unscored }] = await app.ds.query(
      `SELECT count(*)::int AS unscored FROM run_targets t
        WHERE t.run_id = $1 AND NOT EXISTS (SELECT 1 FROM scores s WHERE s.candidate_id = t.target_id AND s.selector_model_id = $2)`,
      [run.id, selectorId],
    );
    expect(unscored).toBe(0);
    // The counters were added once per stored score: nothing counted twice by the second attempt.
    const row = await runRow(app.ds, run.id);
    expect(row).toEqual({ status: 'SUCCEEDED', done: scores.by_run, failed: 0 });
    const [{ failures }] = await app.ds.query(`SELECT count(*)::int AS failures FROM run_failures WHERE run_id = $1`, [run.id]);
    expect(failures).toBe(0);
    expect(await waitForNoJobs(app.ds)).toBe(0);
  }

  it('a SIGKILLed worker leaves the run RUNNING with its committed batches; a new worker scores only the rest', async () => {
    const started = Date.now();
    const selectorId = await newSelector('crash-kill', 101);
    const run = await startRun(selectorId, BATCH_SIZE);
    const first = workers.start();
    await first.ready();
    await waitForProgress('scores', () => scoresOf(run.id), STOP_AFTER, TOTAL, first, 30_000);
    // A live worker beats under the id its job is locked by, so liveness leaves its job alone.
    const live = await jobLockLiveness(app.ds);
    expect(live).toMatchObject({ locked_by: expect.any(String), fresh: true });

    first.signal('SIGKILL');
    expect(await first.waitForExit()).toMatchObject({ signal: 'SIGKILL' });
    const killedAt = Date.now();
    // A dead process commits nothing more: this is exactly what the crash left behind.
    const atKill = await expectPartial(run.id);
    const [job] = await app.ds.query(`SELECT locked_by, attempts FROM graphile_worker._private_jobs`);
    expect(job.locked_by).not.toBeNull();
    expect(job.attempts).toBe(1);

    const second = workers.start();
    await second.ready();
    const finished = await waitForRun(app, lab.keys.CURATOR, run.globalId, 60_000);
    const resumedMs = Date.now() - killedAt;
    await expectExactlyOnce(run, selectorId, finished);

    // An idle worker stops cleanly on SIGTERM.
    second.signal('SIGTERM');
    expect(await second.waitForExit()).toMatchObject({ code: 0 });
    expect(await app.ds.query(`SELECT * FROM worker_heartbeats`)).toEqual([]);
    console.info(`scoring SIGKILL: ${atKill}/${TOTAL} scores at the kill; done ${resumedMs} ms after it (worker start included); ${Date.now() - started} ms in all`);
  });

  it('a SIGTERMed worker stops between batches and gives the job back; the retried job completes it exactly once', async () => {
    const started = Date.now();
    const selectorId = await newSelector('crash-term', 202);
    const run = await startRun(selectorId, SIGTERM_BATCH_SIZE);
    const first = workers.start();
    await first.ready();
    await waitForProgress('scores', () => scoresOf(run.id), STOP_AFTER, TOTAL, first, 30_000);

    const stopping = Date.now();
    first.signal('SIGTERM');
    expect(await first.waitForExit(20_000)).toMatchObject({ code: 0 });
    const stopMs = Date.now() - stopping;
    const [job] = await app.ds.query(`SELECT locked_by, attempts, last_error FROM graphile_worker._private_jobs`);
    expect(await app.ds.query(`SELECT * FROM worker_heartbeats`)).toEqual([]);
    // Still going when graphile-worker's grace period ran out: aborted after a whole batch, the job
    // unlocked for a retry, the run neither finished nor failed.
    expect(job).toMatchObject({ locked_by: null, attempts: 1 });
    expect(job.last_error).toMatch(/shutting down/);
    const atStop = await expectPartial(run.id);

    const second = workers.start();
    await second.ready();
    const finished = await waitForRun(app, lab.keys.CURATOR, run.globalId, 60_000);
    await expectExactlyOnce(run, selectorId, finished);
    console.info(`scoring SIGTERM: stopped in ${stopMs} ms with ${atStop}/${TOTAL} scores; ${Date.now() - started} ms in all`);
  });
});
