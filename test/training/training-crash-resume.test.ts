/**
 * A training run outlives the worker process that trains it (issue 11): a real worker is SIGKILLed
 * part-way through the epochs, a second worker takes the run over and continues from the last
 * stored epoch (its checkpoint: weights and Adam state, written in the same statement as the
 * epoch), and the result is exactly an uninterrupted run's: same head weights, same metrics.
 */
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { waitForRun } from '../support/pipeline-fixture';
import { CrashWorkers, runRow, waitForNoJobs, waitForProgress } from '../support/crash-probes';
import { flattenTrainingDetails, referenceEncoderUpload, registerEncoder, seedPreferenceWorld, START_TRAINING, TRAINING_DETAILS } from '../support/training-fixture';
import { fromGlobalId } from '../../src/platform/ids';

jest.setTimeout(480_000);

const EPOCHS = 150;
/** Kill the first worker once this many epochs are stored: well inside the run. */
const KILL_AFTER = 15;
const PARAMS = { clinicianWeight: 10, hiddenSizes: [96, 96], epochs: EPOCHS, batchSize: 16, learningRate: 0.002, validationFraction: 0.25, seed: 3 };

describe('crash and resume of a training run across worker processes', () => {
  let app: TestApp;
  let lab: TestProject;
  const workers = new CrashWorkers(() => ({ DATABASE_URL: app.databaseUrl }));

  beforeAll(async () => {
    // No in-process worker: only the child processes below execute runs.
    app = await startTestApp();
    lab = await createTestProject(app, 'training-crash');
    await seedPreferenceWorld(app, lab, { images: 12, candidatesPerImage: 2, rounds: 3, clinicianRounds: 2 });
    const registered = await registerEncoder(app, lab.keys.CURATOR, 'reference', referenceEncoderUpload());
    expect(registered.data!.registerEncoderModel.userErrors).toEqual([]);
  });
  afterEach(() => workers.killAll());
  afterAll(async () => {
    await workers.killAll();
    await app?.stop();
  });

  const start = async (selectorName: string) => {
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, START_TRAINING, { input: { selectorName, ...PARAMS } });
    expect(res.data!.startTrainingRun.userErrors).toEqual([]);
    return res.data!.startTrainingRun.run.id as string;
  };
  const epochsOf = async (runId: string) => (await app.ds.query(`SELECT count(*)::int AS n FROM training_epochs WHERE run_id = $1`, [runId]))[0].n as number;
  const details = async (runId: string) => flattenTrainingDetails((await gql(app.graphqlUrl, lab.keys.VIEWER, TRAINING_DETAILS, { id: runId })).data!.node);
  const headSha = async (selectorGlobalId: string) => (await app.ds.query(`SELECT head ->> 'sha256' AS sha FROM selector_models WHERE id = $1`, [fromGlobalId(selectorGlobalId)!.id]))[0].sha as string;

  it('a SIGKILLed worker leaves its stored epochs; a new worker resumes from the last one and ends with the uninterrupted weights', async () => {
    const crashed = await start('crashed');
    const runId = fromGlobalId(crashed)!.id;
    const first = workers.start();
    await first.ready(150_000);
    await waitForProgress('epochs', () => epochsOf(runId), KILL_AFTER, EPOCHS, first, 120_000);
    await first.kill();
    const stored = await epochsOf(runId);
    expect(stored).toBeLessThan(EPOCHS);
    expect(await runRow(app.ds, runId)).toEqual({ status: 'RUNNING', done: 0, failed: 0 });
    // Exactly one checkpoint, on the last stored epoch: epoch and checkpoint commit together.
    const checkpoints = await app.ds.query(`SELECT epoch FROM training_epochs WHERE run_id = $1 AND checkpoint IS NOT NULL`, [runId]);
    expect(checkpoints).toEqual([{ epoch: stored }]);

    const second = workers.start();
    await second.ready(150_000);
    const ended = await waitForRun(app, lab.keys.CURATOR, crashed, 240_000);
    expect(ended).toMatchObject({ status: 'SUCCEEDED', done: 1, failed: 0, total: 1 });
    const resumed = await details(crashed);
    expect(resumed.metrics.resumedEpochs).toBeGreaterThanOrEqual(stored);
    expect(resumed.training.epochs.map((e: { epoch: number }) => e.epoch)).toEqual(Array.from({ length: EPOCHS }, (_, i) => i + 1));
    expect(resumed.training.selectors).toHaveLength(1);
    expect(await waitForNoJobs(app.ds)).toBe(0);

    // The same run uninterrupted (the second worker alone) gives the same weights, epochs and metrics.
    const reference = await start('uninterrupted');
    expect((await waitForRun(app, lab.keys.CURATOR, reference, 240_000)).status).toBe('SUCCEEDED');
    const clean = await details(reference);
    expect(clean.metrics.resumedEpochs ?? 0).toBe(0);
    expect(await headSha(resumed.training.selectors[0].id)).toBe(await headSha(clean.training.selectors[0].id));
    expect(resumed.training.epochs.map((e: any) => [e.trainingLoss, e.validationAlignment])).toEqual(clean.training.epochs.map((e: any) => [e.trainingLoss, e.validationAlignment]));
    expect(resumed.training.selectors[0].metrics).toEqual(clean.training.selectors[0].metrics);
  });
});
