/**
 * Training runs end to end (issue 11) through HTTP on real Postgres and ONNX Runtime: a curator
 * trains a head over the reference encoder on model-rating and clinician pairs, the run registers
 * a selector version (joined encoder + head, validated like an upload, not activated) with its
 * provenance and held-out metrics, and a scoring run with it reads stored embeddings and runs only
 * the head. Also: the sweep, determinism, roles and a second project's keys.
 */
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { errorCodes, gql } from '../support/graphql-client';
import { waitForRun } from '../support/pipeline-fixture';
import { START_SCORING } from '../support/scoring-fixture';
import { encoderGlobalId, referenceEncoderUpload, registerEncoder, flattenTrainingDetails, seedPreferenceWorld, START_TRAINING, TRAINING_DETAILS } from '../support/training-fixture';
import { fromGlobalId, toGlobalId } from '../../src/platform/ids';
import { imagePixels, selectorText } from '../../src/modules/selectors/selector-inputs';

const rawId = (globalId: string) => fromGlobalId(globalId)!;

jest.setTimeout(240_000);

/** Small enough for two shared cores: a 64-wide head, a few epochs. */
const FAST = { hiddenSizes: [64, 64], epochs: 6, batchSize: 32, learningRate: 0.003, validationFraction: 0.25, seed: 7 };

describe('training runs', () => {
  let app: TestApp;
  let lab: TestProject;
  let other: TestProject;
  let encoderId: string;

  const train = async (key: string, input: Record<string, unknown>) => gql(app.graphqlUrl, key, START_TRAINING, { input });
  const details = async (key: string, runId: string) => flattenTrainingDetails((await gql(app.graphqlUrl, key, TRAINING_DETAILS, { id: runId })).data!.node);
  const embeddingRows = () => app.services.encoders.embeddingCounts(lab.ctx(), encoderId);

  beforeAll(async () => {
    app = await startTestApp({}, { worker: true });
    lab = await createTestProject(app, 'training-lab');
    other = await createTestProject(app, 'training-other');
    await seedPreferenceWorld(app, lab, { images: 12, candidatesPerImage: 2, rounds: 3, clinicianRounds: 2 });
    const registered = await registerEncoder(app, lab.keys.CURATOR, 'reference', referenceEncoderUpload());
    encoderId = rawId(registered.data!.registerEncoderModel.encoderModel.id).id;
  });
  afterAll(() => app.stop());

  let firstRun: Record<string, any>;

  it('trains a selector version from model and clinician pairs; a scoring run with it reads stored embeddings and runs only the head', async () => {
    const started = await train(lab.keys.CURATOR, { selectorName: 'trained', clinicianWeight: 10, ...FAST });
    expect(started.errors).toBeUndefined();
    expect(started.data!.startTrainingRun.userErrors).toEqual([]);
    const runId = started.data!.startTrainingRun.run.id;
    expect(started.data!.startTrainingRun.run).toMatchObject({ kind: 'TRAINING', total: 1 });
    const ended = await waitForRun(app, lab.keys.CURATOR, runId, 180_000);
    expect(ended).toMatchObject({ status: 'SUCCEEDED', done: 1, failed: 0, total: 1 });

    const run = await details(lab.keys.VIEWER, runId);
    firstRun = run;
    const t = run.training;
    // 24 candidates × 3 rounds: one model pair per round; clinician choices on 2 rounds each; 3 of 12 images held out.
    expect(t.validationImageIds).toHaveLength(3);
    expect(t.pairCounts.validation).toBe(3 * 2 * 2);
    expect(t.pairCounts.clinician).toBe(9 * 2 * 2);
    expect(t.pairCounts.model).toBe(9 * 2 * 3);
    expect(t.pairCounts.droppedModelPairs).toBe(3 * 2 * 3);
    expect(t.pairCounts.withoutEmbeddings).toBe(0);
    expect(t.epochs.map((e: { epoch: number }) => e.epoch)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const e of t.epochs) {
      expect(e.clinicianWeight).toBe(10);
      expect(Number.isFinite(e.trainingLoss)).toBe(true);
      expect(e.validationAlignment).toBeGreaterThanOrEqual(0);
    }
    expect(t.epochs[5].trainingLoss).toBeLessThan(t.epochs[0].trainingLoss);
    expect(t.encoder.name).toBe('reference');

    expect(t.selectors).toHaveLength(1);
    const selector = t.selectors[0];
    expect(selector).toMatchObject({ name: 'trained', version: 1, active: false, clinicianWeight: 10, trainingRun: { id: runId } });
    expect(selector.training).toMatchObject({ clinicianWeight: 10, seed: 7, dataHash: t.dataHash, pairCounts: { model: 54, clinician: 36, validation: 12 }, hyperparameters: { hiddenSizes: [64, 64], epochs: 6 } });
    expect(selector.metrics.nPairs).toBe(12);
    // The vague answers are easy to tell apart: the head learns them from 90 pairs.
    expect(selector.metrics.alignmentRate.value).toBeGreaterThanOrEqual(0.75);
    expect(selector.metrics.auc.value).toBeGreaterThan(0.5);

    // Every image and distinct item text was embedded once: 12 images, at most 24 × 3 × 2 answer texts (some repeat).
    const stored = await embeddingRows();
    expect(stored.image).toBe(12);
    expect(stored.text).toBeGreaterThan(100);
    expect(stored.text).toBeLessThanOrEqual(24 * 3 * 2);
    expect(run.metrics).toMatchObject({ embeddedImages: 12, embeddedTexts: stored.text });

    // Scoring: the candidates' whole-conversation texts are new, images are not.
    const scoring = await gql(app.graphqlUrl, lab.keys.CURATOR, START_SCORING, { input: { selectorModelId: selector.id } });
    expect(scoring.data!.startScoringRun.userErrors).toEqual([]);
    const scored = await waitForRun(app, lab.keys.CURATOR, scoring.data!.startScoringRun.run.id, 60_000);
    expect(scored).toMatchObject({ status: 'SUCCEEDED', done: 24, failed: 0 });
    const afterScoring = await embeddingRows();
    expect(afterScoring.image).toBe(12);
    expect(afterScoring.text).toBeGreaterThan(stored.text);
    expect(afterScoring.text).toBeLessThanOrEqual(stored.text + 24);

    // The head over stored embeddings gives the joined ONNX model's scores.
    const [{ candidate_id, value }] = await app.ds.query(`SELECT candidate_id, value FROM scores WHERE selector_model_id = $1 ORDER BY candidate_id LIMIT 1`, [rawId(selector.id).id]);
    const model = (await app.services.selectors.findById(lab.ctx(), rawId(selector.id).id))!;
    const runner = await app.services.selectors.runnerFor(model);
    const candidate = (await app.services.candidates.findById(lab.ctx(), candidate_id))!;
    const image = (await app.services.images.findById(lab.ctx(), candidate.imageId))!;
    const file = (await app.services.images.readFile(image, 'original'))!;
    const [onnxScore] = await runner.score([{ pixels: await imagePixels(file.bytes, runner.manifest), text: selectorText({ caption: image.caption, mentions: image.mentions, rounds: candidate.rounds }, runner.manifest) }]);
    expect(onnxScore).toBeCloseTo(value, 4);

    // A second training run over the same data computes no embedding at all.
    const again = await train(lab.keys.CURATOR, { selectorName: 'trained-again', clinicianWeight: 10, ...FAST, epochs: 1 });
    const againRun = await waitForRun(app, lab.keys.CURATOR, again.data!.startTrainingRun.run.id, 120_000);
    expect(againRun.status).toBe('SUCCEEDED');
    const againDetails = await details(lab.keys.VIEWER, againRun.id);
    expect(againDetails.metrics).toMatchObject({ embeddedImages: 0, embeddedTexts: 0 });
    expect(await embeddingRows()).toEqual(afterScoring);
  });

  it('gives the same weights and metrics for the same data, seed and parameters', async () => {
    const started = await train(lab.keys.CURATOR, { selectorName: 'trained-repeat', clinicianWeight: 10, ...FAST });
    const runId = started.data!.startTrainingRun.run.id;
    expect((await waitForRun(app, lab.keys.CURATOR, runId, 180_000)).status).toBe('SUCCEEDED');
    const repeat = await details(lab.keys.VIEWER, runId);
    expect(repeat.training.dataHash).toBe(firstRun.training.dataHash);
    expect(repeat.training.epochs.map((e: any) => [e.trainingLoss, e.validationAlignment])).toEqual(firstRun.training.epochs.map((e: any) => [e.trainingLoss, e.validationAlignment]));
    expect(repeat.training.selectors[0].metrics).toEqual(firstRun.training.selectors[0].metrics);
    const heads = await app.ds.query(`SELECT head ->> 'sha256' AS sha FROM selector_models WHERE id = ANY($1::uuid[])`, [[repeat.training.selectors[0].id, firstRun.training.selectors[0].id].map((id: string) => rawId(id).id)]);
    expect(heads).toHaveLength(2);
    expect(heads[0].sha).toBe(heads[1].sha);
  });

  it('sweeps clinician weights: one selector version per w, epochs per w', async () => {
    const started = await train(lab.keys.CURATOR, { selectorName: 'sweep', clinicianWeights: [1, 4], ...FAST, epochs: 2 });
    const runId = started.data!.startTrainingRun.run.id;
    expect(started.data!.startTrainingRun.run.total).toBe(2);
    expect((await waitForRun(app, lab.keys.CURATOR, runId, 180_000)).status).toBe('SUCCEEDED');
    const t = (await details(lab.keys.VIEWER, runId)).training;
    expect(t.epochs.map((e: any) => [e.clinicianWeight, e.epoch])).toEqual([[1, 1], [1, 2], [4, 1], [4, 2]]);
    expect(t.selectors.map((s: any) => [s.name, s.version, s.clinicianWeight])).toEqual([['sweep', 1, 1], ['sweep', 2, 4]]);
    expect(t.epochs[0].trainingLoss).not.toBe(t.epochs[2].trainingLoss);
  });

  it('checks the input, the roles and the project', async () => {
    const bad = await train(lab.keys.CURATOR, { selectorName: 'x', clinicianWeight: 2, clinicianWeights: [1, 2] });
    expect(bad.data!.startTrainingRun.userErrors[0]).toMatchObject({ field: ['input', 'clinicianWeights'], code: 'INVALID' });
    const margin = await train(lab.keys.CURATOR, { selectorName: 'x', margin: 1 });
    expect(margin.data!.startTrainingRun.userErrors[0].field).toEqual(['input', 'margin']);
    for (const role of ['CLINICIAN', 'VIEWER'] as const) expect(errorCodes(await train(lab.keys[role], { selectorName: 'x' }))).toEqual(['FORBIDDEN']);

    // Another project: no encoder of its own, the lab's encoder and runs are not found.
    const noEncoder = await train(other.keys.CURATOR, { selectorName: 'x' });
    expect(noEncoder.data!.startTrainingRun.userErrors[0]).toMatchObject({ field: ['input', 'encoderId'], code: 'NOT_FOUND' });
    const theirs = await train(other.keys.CURATOR, { selectorName: 'x', encoderId: encoderGlobalId(encoderId) });
    expect(theirs.data!.startTrainingRun.userErrors[0]).toMatchObject({ field: ['input', 'encoderId'], code: 'NOT_FOUND' });
    const read = await gql(app.graphqlUrl, other.keys.OWNER, TRAINING_DETAILS, { id: firstRun.id });
    expect(errorCodes(read)).toEqual(['NOT_FOUND']);
    const selector = await gql(app.graphqlUrl, other.keys.OWNER, `query($id: ID!) { node(id: $id) { id } }`, { id: firstRun.training.selectors[0].id });
    expect(errorCodes(selector)).toEqual(['NOT_FOUND']);
    expect(await app.services.training.validationImageIds(other.ctx(), rawId(firstRun.id).id)).toEqual([]);
    expect((await app.services.training.validationImageIds(lab.ctx(), rawId(firstRun.id).id)).map((id) => toGlobalId('Image', id))).toEqual(firstRun.training.validationImageIds);
  });
});
