import { FakeOpenAIServer } from '../fakes/openai-server';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { seedPipeline, START_GENERATION, waitForRun } from '../support/pipeline-fixture';

describe('generation runs', () => {
  let fake: FakeOpenAIServer;
  let app: TestApp;
  let lab: TestProject;
  let images: { imageIds: string[]; imageGlobalIds: string[] };

  beforeAll(async () => {
    fake = await FakeOpenAIServer.start();
    app = await startTestApp({ OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.baseUrl, LLM_RETRY_BASE_MS: '20', LLM_TIMEOUT_MS: '3000' }, { worker: true });
    lab = await createTestProject(app, 'gen');
    images = await seedPipeline(app, lab);
  });

  afterAll(async () => {
    await app?.stop();
    await fake?.close();
  });

  it('writes one candidate per image and sample, with tokens and cost summed on the run', async () => {
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, START_GENERATION, {
      input: { images: { imageIds: images.imageGlobalIds }, samplesPerImage: 2, seed: 7, limits: { concurrency: 4 } },
    });
    expect(res.errors).toBeUndefined();
    const started = res.data!.startGenerationRun;
    expect(started.userErrors).toEqual([]);
    expect(started.run).toMatchObject({ kind: 'GENERATION', status: 'QUEUED', total: 10 });
    const run = await waitForRun(app, lab.keys.CURATOR, started.run.id);
    expect(run).toMatchObject({ status: 'SUCCEEDED', done: 10, failed: 0, queued: 0 });
    expect(run.promptTokens).toBeGreaterThan(0);
    expect(run.costUsd).toBeGreaterThan(0);
    const rows = await app.ds.query(`SELECT image_id, sample_index, status, jsonb_array_length(rounds) AS rounds FROM candidates WHERE project_id = $1 ORDER BY image_id, sample_index`, [lab.id]);
    expect(rows).toHaveLength(10);
    expect(rows.every((r: any) => r.status === 'OK' && r.rounds === 5)).toBe(true);
  });
});
