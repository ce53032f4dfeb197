/**
 * Evaluation of a trained selector on its training run's held-out clinician pairs (issue 11): the
 * evaluation scores each answer with the full exported ONNX model (encoder joined to the head) on
 * (image, text), while the training run measured the same pairs with the head alone on stored
 * embeddings; both must agree. Also: a training run still without a split is refused.
 */
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { waitForRun } from '../support/pipeline-fixture';
import { referenceEncoderUpload, registerEncoder, seedPreferenceWorld, START_TRAINING } from '../support/training-fixture';
import { selectorGlobalId } from '../support/scoring-fixture';

jest.setTimeout(240_000);

const START = `mutation($input: StartEvaluationRunInput!) { startEvaluationRun(input: $input) { run { id } userErrors { field message code } } }`;
const COMPARISON = `query($id: ID) { selectorComparison(evaluationRunId: $id) { heldOutPairs heldOutImages rows { evaluation { subject judgeModel pairs selectorModel { id } alignmentRate { value } auc { value } meanRank { value } } } } }`;

describe('evaluating a trained selector', () => {
  let app: TestApp;
  let lab: TestProject;

  beforeAll(async () => {
    app = await startTestApp({}, { worker: true });
    lab = await createTestProject(app, 'evaluation-training');
    await seedPreferenceWorld(app, lab, { images: 12, candidatesPerImage: 2, rounds: 3, clinicianRounds: 2 });
    await registerEncoder(app, lab.keys.CURATOR, 'reference', referenceEncoderUpload());
  });
  afterAll(() => app.stop());

  it("measures the full exported model on the training run's held-out pairs as the run measured its head on stored embeddings", async () => {
    const started = await gql(app.graphqlUrl, lab.keys.CURATOR, START_TRAINING, {
      input: { selectorName: 'trained', clinicianWeight: 10, hiddenSizes: [64, 64], epochs: 6, batchSize: 32, learningRate: 0.003, validationFraction: 0.25, seed: 7 },
    });
    expect(started.data!.startTrainingRun.userErrors).toEqual([]);
    const trainingRunId = started.data!.startTrainingRun.run.id;

    // Not split yet (queued or still loading): nothing to evaluate on.
    const early = await gql(app.graphqlUrl, lab.keys.CURATOR, START, { input: { trainingRunId, selectorIds: [], includeJudge: true } });
    const earlyErrors = early.data!.startEvaluationRun.userErrors;
    if (earlyErrors.length) expect(earlyErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'trainingRunId'] });

    expect(await waitForRun(app, lab.keys.CURATOR, trainingRunId, 180_000)).toMatchObject({ status: 'SUCCEEDED' });
    const trained = (await app.services.selectors.findByName(lab.ctx(), 'trained'))!;
    const heldOutImages = await app.services.training.validationImageIds(lab.ctx(), trained.trainingRunId!);
    expect(heldOutImages).toHaveLength(3);

    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, START, { input: { trainingRunId, selectorIds: [selectorGlobalId(trained.id)], includeJudge: true, seed: 0 } });
    expect(res.data!.startEvaluationRun.userErrors).toEqual([]);
    expect(await waitForRun(app, lab.keys.CURATOR, res.data!.startEvaluationRun.run.id, 120_000)).toMatchObject({ status: 'SUCCEEDED', done: 2 });
    const table = (await gql(app.graphqlUrl, lab.keys.VIEWER, COMPARISON, { id: res.data!.startEvaluationRun.run.id })).data!.selectorComparison;
    // 3 held-out images × 2 candidates × 2 clinician rounds.
    expect(table).toMatchObject({ heldOutPairs: 12, heldOutImages: 3 });
    const rows = Object.fromEntries(table.rows.map((r: any) => [r.evaluation.subject, r.evaluation]));
    // The judge rated the good answer 8 and the vague one 3, as the clinician chose: fully aligned.
    expect(rows.JUDGE).toMatchObject({ judgeModel: 'fixture-judge', pairs: 12, alignmentRate: { value: 1 }, auc: { value: 1 }, meanRank: { value: 1 } });

    const selector = rows.SELECTOR;
    expect(selector.pairs).toBe(12);
    const metrics = trained.metrics as any;
    expect(selector.alignmentRate.value).toBeCloseTo(metrics.alignmentRate.value, 9);
    expect(selector.auc.value).toBeCloseTo(metrics.auc.value, 9);
    expect(selector.meanRank.value).toBeCloseTo(metrics.meanRank.value, 9);
  });
});
