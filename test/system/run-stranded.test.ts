/**
 * A run always ends. Worker processes killed again and again during one run must not use up the
 * job's attempts (a takeover is not a failed attempt), and a run that no live worker holds ends
 * CANCELLED as soon as it is cancelled, with the final event sent to its subscribers. Real worker
 * processes, a real Postgres and graphile-worker, and the fake OpenAI server.
 */
import { FakeOpenAIServer } from '../fakes/openai-server';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { seedPipeline, START_GENERATION, waitForRun } from '../support/pipeline-fixture';
import { wsClient } from '../support/ws-client';
import { CrashWorkers, runRow, waitForNoJobs, waitForProgress } from '../support/crash-probes';
import { fromGlobalId } from '../../src/platform/ids';

jest.setTimeout(240_000);

const IMAGES = 5;
const LATENCY_MS = 400;
/** Liveness timing of every process here, short so that takeovers are quick. */
const DEAD_AFTER_MS = 1000;
const KILLS = 10;
const CANCEL_RUN = `mutation($input: CancelRunInput!) { cancelRun(input: $input) { run { id status } userErrors { field message code } } }`;
const RUN_UPDATED = `subscription($id: ID!) { runUpdated(id: $id) { id status done failed } }`;

/** A small seeded generator (mulberry32), so a failing sequence of kill moments can be replayed. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a run always ends', () => {
  let fake: FakeOpenAIServer;
  let app: TestApp;
  let lab: TestProject;
  let images: { imageIds: string[]; imageGlobalIds: string[] };
  // Beats and polls faster than the other crash tests, against the shorter limit the app runs with too.
  const workers = new CrashWorkers(() => ({
    DATABASE_URL: app.databaseUrl,
    OPENAI_API_KEY: 'sk-test',
    OPENAI_BASE_URL: fake.baseUrl,
    WORKER_HEARTBEAT_MS: '200',
    WORKER_DEAD_AFTER_MS: String(DEAD_AFTER_MS),
    WORKER_POLL_MS: '100',
    LLM_RETRY_BASE_MS: '20',
  }));

  beforeAll(async () => {
    fake = await FakeOpenAIServer.start({ latencyMs: LATENCY_MS });
    // No in-process worker: only the child processes below execute runs.
    app = await startTestApp({ OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.baseUrl, WORKER_DEAD_AFTER_MS: String(DEAD_AFTER_MS) });
    lab = await createTestProject(app, 'stranded');
    images = await seedPipeline(app, lab);
  });

  afterEach(async () => {
    await workers.killAll();
  });

  afterAll(async () => {
    await workers.killAll();
    await app?.stop();
    await fake?.close();
  });

  async function startRun(samplesPerImage: number): Promise<{ globalId: string; id: string }> {
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, START_GENERATION, {
      input: { images: { imageIds: images.imageGlobalIds }, samplesPerImage, seed: 5, limits: { concurrency: 2 } },
    });
    expect(res.errors).toBeUndefined();
    expect(res.data!.startGenerationRun.userErrors).toEqual([]);
    const globalId = res.data!.startGenerationRun.run.id;
    return { globalId, id: fromGlobalId(globalId)!.id };
  }

  async function candidateCount(runId: string): Promise<number> {
    const [row] = await app.ds.query(`SELECT count(*)::int AS n FROM candidates WHERE run_id = $1`, [runId]);
    return row.n;
  }

  it(`a worker killed ${KILLS} times at random moments: the run ends with one result per item and counters equal to the sums over items`, async () => {
    const samplesPerImage = 20;
    const total = IMAGES * samplesPerImage;
    const random = seededRandom(20261201);
    fake.reset();
    const run = await startRun(samplesPerImage);
    const killedHolding: number[] = [];
    for (let kill = 0; kill < KILLS; kill++) {
      const worker = workers.start();
      await worker.ready();
      // A random moment in the worker's life: before it takes the run over, or while it works on it.
      await sleep(100 + Math.floor(random() * 1400));
      const [job] = await app.ds.query(`SELECT attempts, locked_by IS NOT NULL AS locked FROM graphile_worker._private_jobs`);
      if (job?.locked) killedHolding.push(kill);
      worker.signal('SIGKILL');
      expect(await worker.waitForExit()).toMatchObject({ signal: 'SIGKILL' });
      const done = await candidateCount(run.id);
      if (done >= total) throw new Error(`the run finished before kill ${kill + 1} of ${KILLS}`);
      expect((await runRow(app.ds, run.id)).status).toMatch(/QUEUED|RUNNING/);
    }
    // More kills of a holding worker than the queue's attempt limit (5): before the fix the job was then never picked again.
    expect(killedHolding.length).toBeGreaterThan(5);

    const last = workers.start();
    await last.ready();
    const finished = await waitForRun(app, lab.keys.CURATOR, run.globalId, 90_000);
    expect(finished).toMatchObject({ status: 'SUCCEEDED', total });

    const [c] = await app.ds.query(
      `SELECT count(*)::int AS rows, count(DISTINCT (image_id, sample_index))::int AS items,
              count(*) FILTER (WHERE status = 'OK')::int AS ok, count(*) FILTER (WHERE status <> 'OK')::int AS not_ok,
              sum(prompt_tokens)::bigint::text AS prompt, sum(completion_tokens)::bigint::text AS completion, sum(cost_usd)::text AS cost
       FROM candidates WHERE run_id = $1`,
      [run.id],
    );
    expect(c).toMatchObject({ rows: total, items: total });
    const [r] = await app.ds.query(
      `SELECT status, total, done, failed, skipped, prompt_tokens::bigint::text AS prompt, completion_tokens::bigint::text AS completion, cost_usd::text AS cost,
              abandoned_attempts, abandoned_cost_usd::float8 AS abandoned_cost, in_flight_calls
       FROM runs WHERE id = $1`,
      [run.id],
    );
    expect(r).toMatchObject({ status: 'SUCCEEDED', total, done: c.ok, failed: c.not_ok, skipped: 0, prompt: c.prompt, completion: c.completion, in_flight_calls: 0 });
    expect(Number(r.cost)).toBe(Number(c.cost));
    // Calls the killed workers made and never stored were made again: the provider saw each of
    // them, and the run reports them (with their estimated prompt cost) instead of hiding them.
    const paidTwice = fake.chatRequests().length - total;
    expect(paidTwice).toBeGreaterThan(0);
    expect(r.abandoned_attempts).toBeGreaterThanOrEqual(paidTwice);
    expect(r.abandoned_cost).toBeGreaterThan(0);
    expect(await waitForNoJobs(app.ds)).toBe(0);
    console.info(`${KILLS} kills (${killedHolding.length} while holding the run), ${fake.chatRequests().length} requests for ${total} items, ${r.abandoned_attempts} abandoned attempts ($${r.abandoned_cost})`);
  });

  it('a worker stopped gracefully (SIGTERM) more times than the attempt limit: the run still ends, once per item', async () => {
    const samplesPerImage = 20;
    const total = IMAGES * samplesPerImage;
    const run = await startRun(samplesPerImage);
    // Slow replies: graphile-worker's 5 s grace ends with calls in flight, so every stop aborts the attempt.
    fake.latencyMs = 1500;
    try {
      for (let stop = 0; stop < 6; stop++) {
        const worker = workers.start();
        await worker.ready();
        const deadline = Date.now() + 20_000;
        while (!(await app.ds.query(`SELECT 1 FROM graphile_worker._private_jobs WHERE locked_by IS NOT NULL`)).length) {
          if (Date.now() > deadline) throw new Error(`the run was not picked up before stop ${stop + 1}:\n${worker.log}`);
          await sleep(50);
        }
        worker.signal('SIGTERM');
        expect(await worker.waitForExit(20_000)).toMatchObject({ code: 0 });
        expect((await runRow(app.ds, run.id)).status).toBe('RUNNING');
      }
    } finally {
      fake.latencyMs = LATENCY_MS;
    }
    const last = workers.start();
    await last.ready();
    const finished = await waitForRun(app, lab.keys.CURATOR, run.globalId, 90_000);
    expect(finished).toMatchObject({ status: 'SUCCEEDED', total, done: total });
    const [c] = await app.ds.query(`SELECT count(*)::int AS rows, count(DISTINCT (image_id, sample_index))::int AS items FROM candidates WHERE run_id = $1`, [run.id]);
    expect(c).toEqual({ rows: total, items: total });
  });

  it('cancelling a run whose worker died ends it CANCELLED at once, and its subscribers get the final event', async () => {
    const run = await startRun(20);
    const worker = workers.start();
    await worker.ready();
    await waitForProgress('candidates', () => candidateCount(run.id), 4, IMAGES * 20, worker);
    worker.signal('SIGKILL');
    await worker.waitForExit();
    expect((await runRow(app.ds, run.id)).status).toBe('RUNNING');
    // Its last heartbeat ages past the limit: now no live worker holds the run.
    await sleep(DEAD_AFTER_MS + 300);

    const client = wsClient(app, lab.keys.CURATOR);
    try {
      const statuses: string[] = [];
      const ended = new Promise<string>((resolve, reject) => {
        client.subscribe({ query: RUN_UPDATED, variables: { id: run.globalId } }, { next: (r: any) => statuses.push(r.data?.runUpdated?.status), error: reject, complete: () => resolve('complete') });
      });
      // The subscription's first event is the state now, so it is listening before the cancel.
      for (let i = 0; i < 100 && !statuses.length; i++) await sleep(50);
      expect(statuses[0]).toBe('RUNNING');

      const res = await gql(app.graphqlUrl, lab.keys.CURATOR, CANCEL_RUN, { input: { runId: run.globalId } });
      expect(res.data!.cancelRun).toMatchObject({ run: { status: 'CANCELLED' }, userErrors: [] });
      expect(await Promise.race([ended, sleep(10_000).then(() => 'timed out')])).toBe('complete');
      expect(statuses[statuses.length - 1]).toBe('CANCELLED');
    } finally {
      await client.dispose();
    }
    // The job is gone too: no worker started later picks the cancelled run up again.
    expect(await waitForNoJobs(app.ds)).toBe(0);
    expect((await runRow(app.ds, run.id)).status).toBe('CANCELLED');
  });
});
