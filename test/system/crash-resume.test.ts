/**
 * A worker process dies mid-run, another one takes the run over, and every candidate exists exactly
 * once with the run's counters equal to the sums over its candidates. Real worker processes
 * (`npm run worker`), a real Postgres and graphile-worker, and the fake OpenAI server.
 */
import { FakeOpenAIServer } from '../fakes/openai-server';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { seedPipeline, START_GENERATION, waitForRun } from '../support/pipeline-fixture';
import { CrashWorkers, jobLockLiveness, runRow, waitForNoJobs, waitForProgress } from '../support/crash-probes';
import { fromGlobalId } from '../../src/platform/ids';

jest.setTimeout(90_000);

const SAMPLES_PER_IMAGE = 8;
const IMAGES = 5;
const TOTAL = SAMPLES_PER_IMAGE * IMAGES;
const LATENCY_MS = 150;
/** Stop the first worker once this many candidates exist: some, far from all. */
const KILL_AFTER = 8;

describe('crash and resume of a generation run across worker processes', () => {
  let fake: FakeOpenAIServer;
  let app: TestApp;
  let lab: TestProject;
  let images: { imageIds: string[]; imageGlobalIds: string[] };
  const workers = new CrashWorkers(() => ({ DATABASE_URL: app.databaseUrl, OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.baseUrl, LLM_RETRY_BASE_MS: '20' }));

  beforeAll(async () => {
    fake = await FakeOpenAIServer.start({ latencyMs: LATENCY_MS });
    // No in-process worker: only the child processes below execute runs.
    app = await startTestApp({ OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.baseUrl });
    lab = await createTestProject(app, 'crash');
    images = await seedPipeline(app, lab);
  });

  afterEach(async () => {
    await workers.killAll();
    fake.latencyMs = LATENCY_MS;
  });

  afterAll(async () => {
    await workers.killAll();
    await app?.stop();
    await fake?.close();
  });

  async function startRun(): Promise<{ globalId: string; id: string }> {
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, START_GENERATION, {
      input: { images: { imageIds: images.imageGlobalIds }, samplesPerImage: SAMPLES_PER_IMAGE, seed: 11, limits: { concurrency: 4 } },
    });
    expect(res.errors).toBeUndefined();
    const started = res.data!.startGenerationRun;
    expect(started.userErrors).toEqual([]);
    expect(started.run).toMatchObject({ status: 'QUEUED', total: TOTAL });
    return { globalId: started.run.id, id: fromGlobalId(started.run.id)!.id };
  }

  async function candidateCount(runId: string): Promise<number> {
    const [row] = await app.ds.query(`SELECT count(*)::int AS n FROM candidates WHERE run_id = $1`, [runId]);
    return row.n;
  }





  async function expectExactlyOnce(run: { globalId: string; id: string }, finished: Record<string, any>): Promise<void> {
    expect(finished).toMatchObject({ status: 'SUCCEEDED', total: TOTAL, done: TOTAL, failed: 0 });
    const [c] = await app.ds.query(
      `SELECT count(*)::int AS rows,
              count(DISTINCT (image_id, sample_index))::int AS items,
              count(DISTINCT image_id)::int AS images,
              min(sample_index)::int AS min_sample,
              max(sample_index)::int AS max_sample,
              count(*) FILTER (WHERE status = 'OK')::int AS ok,
              count(*) FILTER (WHERE image_id <> ALL($2::uuid[]))::int AS foreign_images
       FROM candidates WHERE run_id = $1`,
      [run.id, images.imageIds],
    );
    expect(c).toEqual({ rows: TOTAL, items: TOTAL, images: IMAGES, min_sample: 0, max_sample: SAMPLES_PER_IMAGE - 1, ok: TOTAL, foreign_images: 0 });
    const [r] = await app.ds.query(
      `SELECT r.status, r.total, r.done, r.failed,
              r.prompt_tokens::bigint::text AS run_prompt, s.prompt::text AS cand_prompt,
              r.completion_tokens::bigint::text AS run_completion, s.completion::text AS cand_completion,
              r.cost_usd::text AS run_cost, s.cost::text AS cand_cost
       FROM runs r,
            LATERAL (SELECT sum(prompt_tokens)::bigint AS prompt, sum(completion_tokens)::bigint AS completion, sum(cost_usd) AS cost
                     FROM candidates WHERE run_id = r.id) s
       WHERE r.id = $1`,
      [run.id],
    );
    expect(r).toMatchObject({ status: 'SUCCEEDED', total: TOTAL, done: TOTAL, failed: 0 });
    expect(Number(r.run_prompt)).toBeGreaterThan(0);
    // Counters were added once per stored candidate: nothing double-counted by the second attempt.
    expect(r.run_prompt).toBe(r.cand_prompt);
    expect(r.run_completion).toBe(r.cand_completion);
    expect(Number(r.run_cost)).toBe(Number(r.cand_cost));
    expect(await waitForNoJobs(app.ds)).toBe(0);
  }

  it('a SIGKILLed worker leaves the run RUNNING; a new worker takes it over and fills in only what is missing', async () => {
    const started = Date.now();
    fake.reset();
    const run = await startRun();
    const first = workers.start();
    await first.ready();
    await waitForProgress('candidates', () => candidateCount(run.id), KILL_AFTER, TOTAL, first);
    // A live worker beats under the id its job is locked by, so liveness leaves its job alone.
    const live = await jobLockLiveness(app.ds);
    expect(live).toMatchObject({ locked_by: expect.any(String), fresh: true });

    first.signal('SIGKILL');
    expect(await first.waitForExit()).toMatchObject({ signal: 'SIGKILL' });
    // A dead process commits nothing more: this is exactly what the crash left behind.
    const atKill = await candidateCount(run.id);
    const requestsAtKill = fake.chatRequests().length;
    expect(atKill).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(atKill).toBeLessThan(TOTAL);
    // Calls were in flight when it died; their replies were never stored.
    expect(requestsAtKill).toBeGreaterThan(atKill);
    // The counters committed with each candidate, so they match the rows exactly.
    expect(await runRow(app.ds, run.id)).toEqual({ status: 'RUNNING', done: atKill, failed: 0 });
    const [job] = await app.ds.query(`SELECT locked_by, attempts FROM graphile_worker._private_jobs`);
    expect(job.locked_by).not.toBeNull();
    expect(job.attempts).toBe(1);

    const second = workers.start();
    await second.ready();
    const finished = await waitForRun(app, lab.keys.CURATOR, run.globalId, 30_000);
    await expectExactlyOnce(run, finished);
    // The second worker asked only for the items the first one had not stored (the fake never fails).
    expect(fake.chatRequests().length - requestsAtKill).toBe(TOTAL - atKill);

    // An idle worker stops cleanly on SIGTERM.
    second.signal('SIGTERM');
    expect(await second.waitForExit()).toMatchObject({ code: 0 });
    expect(await app.ds.query(`SELECT * FROM worker_heartbeats`)).toEqual([]);
    console.info(`SIGKILL: ${atKill}/${TOTAL} candidates at the kill, ${requestsAtKill} requests; resumed in ${Date.now() - started} ms`);
  });

  it('a SIGTERMed worker aborts the run after the grace period; the retried job completes it exactly once', async () => {
    const started = Date.now();
    fake.reset();
    const run = await startRun();
    const first = workers.start();
    await first.ready();
    await waitForProgress('candidates', () => candidateCount(run.id), KILL_AFTER, TOTAL, first);

    // graphile-worker lets running jobs finish for 5 s before it aborts them; slow replies make
    // sure the run is still going then, with calls in flight.
    fake.latencyMs = 3_000;
    const stopping = Date.now();
    first.signal('SIGTERM');
    expect(await first.waitForExit(20_000)).toMatchObject({ code: 0 });
    const stopMs = Date.now() - stopping;
    const atStop = await candidateCount(run.id);
    const requestsAtStop = fake.chatRequests().length;
    expect(atStop).toBeGreaterThanOrEqual(KILL_AFTER);
    expect(atStop).toBeLessThan(TOTAL);
    expect(requestsAtStop).toBeGreaterThan(atStop);
    // Not finished and not failed: the attempt gave the job back to the queue for a retry.
    expect(await runRow(app.ds, run.id)).toEqual({ status: 'RUNNING', done: atStop, failed: 0 });
    const [job] = await app.ds.query(`SELECT locked_by, attempts, last_error, run_at > now() AS later FROM graphile_worker._private_jobs`);
    expect(job).toMatchObject({ locked_by: null, attempts: 1, later: true });
    expect(job.last_error).toMatch(/shutting down/);
    expect(await app.ds.query(`SELECT * FROM worker_heartbeats`)).toEqual([]);

    fake.latencyMs = LATENCY_MS;
    const second = workers.start();
    await second.ready();
    const finished = await waitForRun(app, lab.keys.CURATOR, run.globalId, 30_000);
    await expectExactlyOnce(run, finished);
    expect(fake.chatRequests().length - requestsAtStop).toBe(TOTAL - atStop);
    console.info(`SIGTERM: stopped in ${stopMs} ms with ${atStop}/${TOTAL} candidates, ${requestsAtStop} requests; resumed in ${Date.now() - started} ms`);
  });
});
