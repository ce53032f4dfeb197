/**
 * Webhook deliveries have job slots of their own: with one run slot held by a long generation run,
 * a run.finished event is still delivered at once, not after the run.
 */
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { seedPipeline, START_GENERATION } from '../support/pipeline-fixture';
import { FakeOpenAIServer } from '../fakes/openai-server';
import { eventually, WebhookReceiver } from '../support/webhook-receiver';
import { fromGlobalId, toGlobalId } from '../../src/platform/ids';

jest.setTimeout(90_000);

describe('webhook delivery slots', () => {
  let fake: FakeOpenAIServer;
  let app: TestApp;
  let lab: TestProject;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    fake = await FakeOpenAIServer.start();
    receiver = await WebhookReceiver.start();
    app = await startTestApp(
      { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.baseUrl, LLM_TIMEOUT_MS: '30000', WORKER_CONCURRENCY: '1', WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', WORKER_POLL_MS: '100' },
      { worker: true },
    );
    lab = await createTestProject(app, 'slots-lab');
  });
  afterAll(async () => {
    await app?.stop();
    await fake?.close();
    await receiver?.close();
  });

  it('delivers while every run slot is busy', async () => {
    const images = await seedPipeline(app, lab);
    const created = await gql(app.graphqlUrl, lab.keys.OWNER, `mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret userErrors { code } } }`, {
      input: { url: receiver.url(), events: ['RUN_FINISHED'] },
    });
    receiver.verifyWith(created.data!.createWebhookEndpoint.secret);

    // The only run slot: a generation run whose one model call takes 10 s.
    fake.enqueueChat({ delayMs: 10_000 });
    const started = await gql(app.graphqlUrl, lab.keys.CURATOR, START_GENERATION, { input: { images: { imageIds: images.imageGlobalIds.slice(0, 1) }, samplesPerImage: 1, limits: { concurrency: 1 } } });
    const generationId = fromGlobalId(started.data!.startGenerationRun.run.id)!.id;
    await eventually('the generation run to hold the slot', async () => (await app.ds.query(`SELECT status FROM runs WHERE id = $1`, [generationId]))[0].status, (s: string) => s === 'RUNNING');

    const [{ id }]: { id: string }[] = await app.ds.query(`INSERT INTO runs (project_id, kind, status) VALUES ($1, 'CLUSTERING', 'QUEUED') RETURNING id`, [lab.id]);
    await gql(app.graphqlUrl, lab.keys.CURATOR, `mutation($input: CancelRunInput!) { cancelRun(input: $input) { run { status } } }`, { input: { runId: toGlobalId('Run', id) } });
    await eventually('the delivery', () => receiver.received.length, (n) => n >= 1);
    const [{ status }] = await app.ds.query(`SELECT status FROM runs WHERE id = $1`, [generationId]);
    expect(status).toBe('RUNNING');
    expect(receiver.received[0].verified).toMatchObject({ type: 'run.finished', data: { runId: toGlobalId('Run', id), status: 'CANCELLED' } });
  });
});
