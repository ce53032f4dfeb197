/**
 * The run kernel's rules that hold for every kind of run: a failure that cannot change ends the
 * run FAILED with its reason at once, without the queue retrying it. Real Postgres, the real queue
 * and an in-process worker.
 */
import { FakeOpenAIServer } from '../fakes/openai-server';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { seedPipeline, START_GENERATION, waitForRun } from '../support/pipeline-fixture';
import { waitForNoJobs } from '../support/crash-probes';
import { RunKind } from '../../src/modules/runs/run.entity';
import { toGlobalId } from '../../src/platform/ids';

jest.setTimeout(60_000);

describe('run kernel', () => {
  let fake: FakeOpenAIServer;
  let app: TestApp;
  let lab: TestProject;
  let images: { imageIds: string[]; imageGlobalIds: string[] };

  beforeAll(async () => {
    fake = await FakeOpenAIServer.start({ latencyMs: 20 });
    app = await startTestApp({ OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.baseUrl }, { worker: true });
    lab = await createTestProject(app, 'kernel');
    images = await seedPipeline(app, lab, { demonstrations: false });
  });

  afterAll(async () => {
    await app?.stop();
    await fake?.close();
  });

  /** A run created as a service would, but with stored parameters of our choosing. */
  async function createRun(kind: RunKind, params: Record<string, unknown>): Promise<string> {
    const ctx = lab.ctx();
    const run = await app.services.runs.create(ctx, { kind, params, targets: app.services.images.selectIds(ctx, null, images.imageIds) });
    return toGlobalId('Run', run.id);
  }

  async function expectFailedAtOnce(runId: string, reason: RegExp): Promise<void> {
    // Before: the queue retried with growing backoff (about 85 s over 5 attempts) and the run stayed RUNNING meanwhile.
    const finished = await waitForRun(app, lab.keys.CURATOR, runId, 15_000);
    expect(finished.status).toBe('FAILED');
    expect(finished.lastError).toMatch(reason);
    expect(finished.lastError).not.toMatch(/retrying/);
    expect(await waitForNoJobs(app.ds)).toBe(0);
  }

  it('parameters that do not parse end the run FAILED with the reason, without retries', async () => {
    const runId = await createRun(RunKind.RATING, { limits: 'many' });
    await expectFailedAtOnce(runId, /parameters are invalid/);
  });

  it('an unknown prompt template ends the run FAILED with the reason, without retries', async () => {
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, START_GENERATION, { input: { images: { imageIds: images.imageGlobalIds }, samplesPerImage: 1, demonstrationsPerPrompt: 0, seed: 1 } });
    expect(res.data!.startGenerationRun.userErrors).toEqual([]);
    const valid = res.data!.startGenerationRun.run.params;
    await waitForRun(app, lab.keys.CURATOR, res.data!.startGenerationRun.run.id, 30_000);
    const runId = await createRun(RunKind.GENERATION, { ...valid, promptTemplateVersion: 'no-such-template@1' });
    await expectFailedAtOnce(runId, /Unknown prompt template no-such-template@1/);
  });
});
