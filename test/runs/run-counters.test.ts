/**
 * Run counters add up: done + failed + skipped = total at the end of every run, an item another
 * run finished is skipped (not silently dropped), and countsByStatus splits the counters by
 * outcome. Real Postgres, the real queue with an in-process worker, ONNX Runtime and the fake
 * OpenAI server.
 */
import { FakeOpenAIServer } from '../fakes/openai-server';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { seedPipeline, START_GENERATION } from '../support/pipeline-fixture';
import { referenceSelectorUpload, registerSelector, seedCandidates, START_SCORING } from '../support/scoring-fixture';

jest.setTimeout(120_000);

const RUN_COUNTERS = `query($id: ID!) { node(id: $id) { ... on Run { id status total done failed skipped queued lastError countsByStatus { status count } } } }`;
const PER_IMAGE = 25;

async function waitForEnd(app: TestApp, key: string, runId: string, timeoutMs = 60_000): Promise<Record<string, any>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await gql(app.graphqlUrl, key, RUN_COUNTERS, { id: runId });
    const run = res.data?.node;
    if (!run) throw new Error(`run not readable: ${JSON.stringify(res.errors)}`);
    if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(run.status)) return run;
    if (Date.now() > deadline) throw new Error(`run still ${run.status}: ${JSON.stringify(run)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const countOf = (run: Record<string, any>, status: string) => run.countsByStatus.find((c: { status: string }) => c.status === status)?.count ?? 0;
const sumOfCounts = (run: Record<string, any>) => run.countsByStatus.reduce((n: number, c: { count: number }) => n + c.count, 0);

describe('run counters', () => {
  let fake: FakeOpenAIServer;
  let app: TestApp;
  let lab: TestProject;
  let images: { imageIds: string[]; imageGlobalIds: string[] };

  beforeAll(async () => {
    fake = await FakeOpenAIServer.start({ latencyMs: 5 });
    app = await startTestApp({ OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.baseUrl, SCORING_BATCH_SIZE: '8', WORKER_CONCURRENCY: '4' }, { worker: true });
    lab = await createTestProject(app, 'counters');
    images = await seedPipeline(app, lab, { demonstrations: false });
  });

  afterAll(async () => {
    await app?.stop();
    await fake?.close();
  });

  it('two scoring runs started together for the same selector: each candidate scored once, the other run counts it skipped', async () => {
    const candidateIds = await seedCandidates(app, lab, images.imageIds, PER_IMAGE);
    const registered = await registerSelector(app, lab.keys.CURATOR, 'reference', referenceSelectorUpload(), { activate: true });
    expect(registered.data!.registerSelectorModel.userErrors).toEqual([]);

    // Stop the worker so both runs freeze the same targets before either scores anything.
    await app.stopWorker();
    const first = await gql(app.graphqlUrl, lab.keys.CURATOR, START_SCORING, { input: {} });
    const second = await gql(app.graphqlUrl, lab.keys.CURATOR, START_SCORING, { input: {} });
    const ids = [first, second].map((res) => {
      expect(res.data!.startScoringRun.userErrors).toEqual([]);
      expect(res.data!.startScoringRun.run.total).toBe(candidateIds.length);
      return res.data!.startScoringRun.run.id as string;
    });
    await app.startWorker();
    const runs = await Promise.all(ids.map((id) => waitForEnd(app, lab.keys.VIEWER, id)));

    for (const run of runs) {
      expect(run).toMatchObject({ status: 'SUCCEEDED', total: candidateIds.length, failed: 0, queued: 0 });
      expect(run.done + run.failed + run.skipped).toBe(run.total);
      expect(countOf(run, 'SCORED')).toBe(run.done);
      expect(countOf(run, 'SKIPPED')).toBe(run.skipped);
      expect(sumOfCounts(run)).toBe(run.total);
    }
    // Between them they scored every candidate exactly once.
    expect(runs[0].done + runs[1].done).toBe(candidateIds.length);
    expect(runs[0].skipped + runs[1].skipped).toBe(candidateIds.length);
    const [scores] = await app.ds.query(`SELECT count(*)::int AS n, count(DISTINCT candidate_id)::int AS distinct_candidates FROM scores WHERE project_id = $1`, [lab.id]);
    expect(scores).toEqual({ n: candidateIds.length, distinct_candidates: candidateIds.length });
  });

  it('a generation run with refusals and unparseable replies splits its counters by candidate status', async () => {
    const [refused, unparseable] = images.imageIds;
    const captions: { id: string; caption: string }[] = await app.ds.query(`SELECT id, caption FROM images WHERE id = ANY($1::uuid[])`, [[refused, unparseable]]);
    const captionOf = new Map(captions.map((c) => [c.id, c.caption]));
    const mentions = (body: any, caption: string) => JSON.stringify(body.messages).includes(caption);
    fake.reset();
    fake.onChat((body) => mentions(body, captionOf.get(refused)!), { refusal: 'I cannot help with this image.' });
    fake.onChat((body) => mentions(body, captionOf.get(unparseable)!), { reply: 'No conversation here at all.' });
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, START_GENERATION, {
      input: { images: { imageIds: images.imageGlobalIds }, samplesPerImage: 2, demonstrationsPerPrompt: 0, seed: 3 },
    });
    expect(res.data!.startGenerationRun.userErrors).toEqual([]);
    const run = await waitForEnd(app, lab.keys.VIEWER, res.data!.startGenerationRun.run.id);
    fake.reset();

    expect(run).toMatchObject({ status: 'SUCCEEDED', total: 10, done: 6, failed: 4, skipped: 0, queued: 0 });
    expect(countOf(run, 'OK')).toBe(6);
    expect(countOf(run, 'REFUSED')).toBe(2);
    expect(countOf(run, 'PARSE_FAILED')).toBe(2);
    expect(sumOfCounts(run)).toBe(run.done + run.failed);
  });
});
