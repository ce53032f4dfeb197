/**
 * A training run's progress reaches a real graphql-ws client (issue 11): runUpdated events carry
 * the run and, through Run.training, the epochs so far (training loss, validation alignment), so a
 * notebook can draw the loss curve live; the stream ends with the final state holding every epoch.
 */
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { wsClient } from '../support/ws-client';
import { referenceEncoderUpload, registerEncoder, seedPreferenceWorld, START_TRAINING } from '../support/training-fixture';

jest.setTimeout(240_000);

const EPOCHS = 8;
const RUN_UPDATED = `subscription($id: ID!) { runUpdated(id: $id) { id status done total training { epochs { clinicianWeight epoch trainingLoss validationAlignment } } } }`;

describe('training progress over graphql-ws', () => {
  let app: TestApp;
  let lab: TestProject;

  beforeAll(async () => {
    // No worker yet: the run stays QUEUED until the subscriber is listening.
    app = await startTestApp({ RUN_PROGRESS_INTERVAL_MS: '50' });
    lab = await createTestProject(app, 'training-ws');
    await seedPreferenceWorld(app, lab, { images: 8, candidatesPerImage: 2, rounds: 2, clinicianRounds: 1 });
    expect((await registerEncoder(app, lab.keys.CURATOR, 'reference', referenceEncoderUpload())).data!.registerEncoderModel.userErrors).toEqual([]);
  });
  afterAll(() => app?.stop());

  it('streams epochs with training loss and validation alignment, then the final state', async () => {
    const started = await gql(app.graphqlUrl, lab.keys.CURATOR, START_TRAINING, { input: { selectorName: 'live', hiddenSizes: [32], epochs: EPOCHS, batchSize: 8, validationFraction: 0.25 } });
    const runId = started.data!.startTrainingRun.run.id;
    const client = wsClient(app, lab.keys.VIEWER);
    const events: any[] = [];
    const ended = new Promise<string>((resolve) => {
      client.subscribe(
        { query: RUN_UPDATED, variables: { id: runId } },
        { next: (result: any) => void events.push(result.data?.runUpdated ?? { errors: result.errors }), error: (error) => resolve(`error: ${JSON.stringify(error)}`), complete: () => resolve('complete') },
      );
    });
    await new Promise((r) => setTimeout(r, 500));
    await app.startWorker();
    expect(await ended).toBe('complete');
    await client.dispose();

    expect(events.every((e) => !e.errors)).toBe(true);
    const last = events[events.length - 1];
    expect(last).toMatchObject({ status: 'SUCCEEDED', done: 1, total: 1 });
    expect(last.training.epochs.map((e: any) => e.epoch)).toEqual(Array.from({ length: EPOCHS }, (_, i) => i + 1));
    for (const e of last.training.epochs) {
      expect(Number.isFinite(e.trainingLoss)).toBe(true);
      expect(e.validationAlignment).toBeGreaterThanOrEqual(0);
    }
    expect(events.some((e) => e.status === 'RUNNING')).toBe(true);
    // Epochs only accumulate from one event to the next.
    const counts = events.map((e) => e.training.epochs.length);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
  });
});
