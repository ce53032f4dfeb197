/**
 * EVALUATION runs end to end (issue 11): clinician preferences recorded over GraphQL, model-judge
 * ratings as a rating run stores them, the reference selector uploaded over multipart, the run
 * through the job queue, and the stored metrics read back through selectorComparison,
 * SelectorModel.evaluations and node(id:). The judge's metrics are checked against values computed
 * by hand below; the selector's against a direct ONNX Runtime scoring of the same answers.
 */
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { errorCodes, gql } from '../support/graphql-client';
import { seedPipeline, waitForRun } from '../support/pipeline-fixture';
import { referenceSelectorUpload, registerSelector, selectorGlobalId } from '../support/scoring-fixture';
import { imagePixels, judgedItemSource, selectorText } from '../../src/modules/selectors/selector-inputs';
import { fromGlobalId, toGlobalId } from '../../src/platform/ids';

jest.setTimeout(90_000);

const JUDGE = 'gpt-judge';

const START = `mutation($input: StartEvaluationRunInput!) {
  startEvaluationRun(input: $input) { run { id kind status total } userErrors { field message code } }
}`;

const METRICS = `alignmentRate { value low high level } auc { value low high } meanRank { value low high } meanAveragePrecision { value low high }`;

const COMPARISON = `query($id: ID) {
  selectorComparison(evaluationRunId: $id) {
    run { id kind status done failed total }
    heldOutPairs heldOutImages
    rows { rank evaluation { id subject judgeModel pairs pairsWithoutScore ties bootstrapUnits bootstrapSamples seed selectorModel { id name } ${METRICS} } }
  }
}`;

interface Fixture {
  imageIds: string[];
  /** Candidates on images 0, 1, 2: two rounds, one round, one round; two answers per round. */
  candidateIds: string[];
}

/** Three candidates in the TWO_ANSWERS form on the first three shared images. */
async function seedCandidates(app: TestApp, project: TestProject, imageIds: string[]): Promise<string[]> {
  const round = (q: string, a: string, b: string) => ({ question: q, answers: [a, b] });
  const conversations = [
    [round('What stain is used?', 'Hematoxylin and eosin, showing glandular tissue.', 'It is a gram stain.'), round('What structure is seen?', 'A bone.', 'Glands lined by columnar epithelium.')],
    [round('Where is the lesion?', 'In the left frontal lobe, hyperintense.', 'There is no lesion.')],
    [round('What is shown?', 'A normal chest.', 'Right lower lobe consolidation.')],
  ];
  const rows: { id: string }[] = await app.ds.query(
    `INSERT INTO candidates (project_id, image_id, sample_index, status, form, rounds, model)
     SELECT $1, r.image_id, 0, 'OK', 'TWO_ANSWERS', r.rounds, 'fixture' FROM unnest($2::uuid[], $3::jsonb[]) WITH ORDINALITY AS r(image_id, rounds, n) ORDER BY r.n RETURNING id`,
    [project.id, imageIds.slice(0, 3), conversations.map((c) => JSON.stringify(c))],
  );
  return rows.map((r) => r.id);
}

const RECORD = `mutation($input: RecordPreferenceInput!) { recordPreference(input: $input) { preference { id } userErrors { field message code } } }`;

/**
 * Clinician judgements, one per question (pairs: preferred > rejected):
 *   c0 round 0 PAIRWISE A            → c0/0/0 > c0/0/1
 *   c0 round 1 ACCEPTANCE 0 no, 1 yes → c0/1/1 > c0/1/0
 *   c1 round 0 RATING 8 vs 3          → c1/0/0 > c1/0/1
 *   c2 round 0 PAIRWISE B            → c2/0/1 > c2/0/0
 * Judge ratings: c0/0: 9, 4 (agrees); c0/1: 7, 5 (disagrees); c1/0: 6, 6 (tie); c2/0: 2, 8 (agrees).
 */
async function seedJudgements(app: TestApp, project: TestProject, c: string[]): Promise<void> {
  const key = project.keys.CLINICIAN;
  const inputs = [
    { candidateId: c[0], kind: 'PAIRWISE', roundIndex: 0, choice: 'A' },
    { candidateId: c[0], kind: 'ACCEPTANCE', roundIndex: 1, answerIndex: 0, accepted: false },
    { candidateId: c[0], kind: 'ACCEPTANCE', roundIndex: 1, answerIndex: 1, accepted: true },
    { candidateId: c[1], kind: 'RATING', roundIndex: 0, answerIndex: 0, rating: 8, rubricVersion: 'v1' },
    { candidateId: c[1], kind: 'RATING', roundIndex: 0, answerIndex: 1, rating: 3, rubricVersion: 'v1' },
    { candidateId: c[2], kind: 'PAIRWISE', roundIndex: 0, choice: 'B' },
  ];
  for (const input of inputs) {
    const res = await gql(app.graphqlUrl, key, RECORD, { input: { ...input, candidateId: toGlobalId('Candidate', input.candidateId) } });
    expect(res.errors).toBeUndefined();
    expect(res.data!.recordPreference.userErrors).toEqual([]);
  }
  const ratings: [number, number, number, number][] = [
    [0, 0, 0, 9],
    [0, 0, 1, 4],
    [0, 1, 0, 7],
    [0, 1, 1, 5],
    [1, 0, 0, 6],
    [1, 0, 1, 6],
    [2, 0, 0, 2],
    [2, 0, 1, 8],
  ];
  const ctx = project.ctx();
  for (const [candidate, roundIndex, answerIndex, rating] of ratings) {
    await app.services.preferences.insertRating(ctx, { candidateId: c[candidate], judgeModel: JUDGE, roundIndex, answerIndex, rating, rubricVersion: 'rubric/v1' }).execute();
  }
  // A second judge with fewer ratings: the default judge is the one with the most.
  await app.services.preferences.insertRating(ctx, { candidateId: c[0], judgeModel: 'small-judge', roundIndex: 0, answerIndex: 0, rating: 1, rubricVersion: 'rubric/v1' }).execute();
}

describe('evaluation runs', () => {
  let app: TestApp;
  let lab: TestProject;
  let other: TestProject;
  let fixture: Fixture;
  let selectorId: string;

  async function evaluate(project: TestProject, input: Record<string, unknown>) {
    const res = await gql(app.graphqlUrl, project.keys.CURATOR, START, { input });
    expect(res.errors).toBeUndefined();
    expect(res.data!.startEvaluationRun.userErrors).toEqual([]);
    const run = res.data!.startEvaluationRun.run;
    const ended = await waitForRun(app, project.keys.CURATOR, run.id, 60_000);
    expect(ended).toMatchObject({ status: 'SUCCEEDED', failed: 0 });
    const comparison = await gql(app.graphqlUrl, project.keys.VIEWER, COMPARISON, { id: run.id });
    expect(comparison.errors).toBeUndefined();
    return comparison.data!.selectorComparison;
  }

  beforeAll(async () => {
    app = await startTestApp({}, { worker: true });
    lab = await createTestProject(app, 'evaluation');
    other = await createTestProject(app, 'evaluation-other');
    const { imageIds } = await seedPipeline(app, lab, { demonstrations: false });
    const candidateIds = await seedCandidates(app, lab, imageIds);
    fixture = { imageIds, candidateIds };
    await seedJudgements(app, lab, candidateIds);
    const registered = await registerSelector(app, lab.keys.CURATOR, 'reference', referenceSelectorUpload(), { activate: true });
    selectorId = fromGlobalId(registered.data!.registerSelectorModel.selectorModel.id)!.id;
  });

  afterAll(async () => {
    await app?.stop();
  });

  it('measures the judge on every clinician pair exactly as computed by hand, with a bootstrap interval around it', async () => {
    const table = await evaluate(lab, { selectorIds: [], includeJudge: true, bootstrapSamples: 200, seed: 7 });
    expect(table).toMatchObject({ heldOutPairs: 4, heldOutImages: 3, run: { kind: 'EVALUATION', total: 1, done: 1 } });
    expect(table.rows).toHaveLength(1);
    const judge = table.rows[0].evaluation;
    expect(judge).toMatchObject({ subject: 'JUDGE', judgeModel: JUDGE, pairs: 4, pairsWithoutScore: 0, ties: 1, bootstrapUnits: 3, bootstrapSamples: 200, seed: 7, selectorModel: null });
    // Alignment: agree, disagree, tie (1/2), agree → 2.5 / 4.
    expect(judge.alignmentRate.value).toBeCloseTo(0.625, 12);
    // AUC: preferred {9, 5, 6, 8} vs rejected {4, 7, 6, 2}: 4 + 2 + 2.5 + 4 = 12.5 of 16 comparisons.
    expect(judge.auc.value).toBeCloseTo(12.5 / 16, 12);
    // Mean rank of the preferred answer per question: 1, 2, 1.5 (tie), 1.
    expect(judge.meanRank.value).toBeCloseTo(5.5 / 4, 12);
    // Average precision per question: 1, 1/2, 1/2 (tied at one threshold), 1.
    expect(judge.meanAveragePrecision.value).toBeCloseTo(0.75, 12);
    for (const metric of ['alignmentRate', 'auc', 'meanRank', 'meanAveragePrecision']) {
      const { value, low, high } = judge[metric];
      expect(low).toBeLessThanOrEqual(value + 1e-12);
      expect(high).toBeGreaterThanOrEqual(value - 1e-12);
    }
    expect(judge.alignmentRate.level).toBe(0.95);
  });

  it('restricts to the held-out images and names the judge when asked', async () => {
    const table = await evaluate(lab, { selectorIds: [], includeJudge: true, judgeModel: JUDGE, imageIds: [0, 1].map((i) => toGlobalId('Image', fixture.imageIds[i])), bootstrapSamples: 50, seed: 1 });
    const judge = table.rows[0].evaluation;
    // c0/0 agree, c0/1 disagree, c1/0 tie: 1.5 / 3.
    expect(judge).toMatchObject({ pairs: 3, bootstrapUnits: 2 });
    expect(judge.alignmentRate.value).toBeCloseTo(0.5, 12);
    expect(table.heldOutPairs).toBe(3);
  });

  it('scores every judged answer with the full selector, caches the scores, and sets the selector beside the judge', async () => {
    const table = await evaluate(lab, { selectorIds: [selectorGlobalId(selectorId)], includeJudge: true, bootstrapSamples: 100, seed: 3 });
    expect(table.run).toMatchObject({ total: 2, done: 2 });
    const bySubject = Object.fromEntries(table.rows.map((r: any) => [r.evaluation.subject, r]));
    const selector = bySubject.SELECTOR.evaluation;
    expect(selector).toMatchObject({ pairs: 4, pairsWithoutScore: 0, selectorModel: { id: selectorGlobalId(selectorId), name: 'reference' } });
    expect(table.rows.map((r: any) => r.rank).sort()).toEqual(bySubject.SELECTOR.evaluation.alignmentRate.value === bySubject.JUDGE.evaluation.alignmentRate.value ? [1, 1] : [1, 2]);

    // The same answers scored directly with the selector: the alignment follows from those scores.
    const model = (await app.services.selectors.findById(lab.ctx(), selectorId))!;
    const runner = await app.services.selectors.runnerFor(model);
    const conversations = new Map((await app.services.candidates.conversations(lab.ctx(), fixture.candidateIds)).map((c) => [c.id, c]));
    const figures = new Map((await app.services.images.figuresByIds(lab.ctx(), fixture.imageIds)).map((f) => [f.id, f]));
    const bytes = await app.services.images.originalsByHash(lab.id, [...figures.values()].map((f) => f.contentHash!));
    const score = async (candidate: number, roundIndex: number, answerIndex: number) => {
      const c = conversations.get(fixture.candidateIds[candidate])!;
      const f = figures.get(c.imageId)!;
      const text = selectorText(judgedItemSource({ caption: f.caption, mentions: f.mentions, rounds: c.rounds }, { roundIndex, answerIndex }), runner.manifest);
      const [value] = await runner.score([{ pixels: await imagePixels(bytes.get(f.contentHash!)!, runner.manifest), text }]);
      return value;
    };
    const pairs: [number, number, number, number][] = [
      [0, 0, 0, 1],
      [0, 1, 1, 0],
      [1, 0, 0, 1],
      [2, 0, 1, 0],
    ];
    let agreed = 0;
    for (const [candidate, round, preferred, rejected] of pairs) {
      const [p, r] = [await score(candidate, round, preferred), await score(candidate, round, rejected)];
      agreed += p > r ? 1 : p === r ? 0.5 : 0;
    }
    expect(selector.alignmentRate.value).toBeCloseTo(agreed / 4, 12);

    // Eight distinct answers, scored once; a second evaluation reads them from the cache.
    const cached = async () => (await app.ds.query(`SELECT count(*)::int AS n, max(updated_at) AS at FROM evaluation_item_scores WHERE selector_model_id = $1`, [selectorId]))[0];
    const before = await cached();
    expect(before.n).toBe(8);
    const again = await evaluate(lab, { selectorIds: [selectorGlobalId(selectorId)], includeJudge: false, bootstrapSamples: 100, seed: 3 });
    expect(await cached()).toEqual(before);
    expect(again.rows[0].evaluation.alignmentRate).toEqual(selector.alignmentRate);
    expect(again.rows[0].evaluation.auc).toEqual(selector.auc);

    // The selector lists its evaluations, newest first; each one is a Node.
    const listed = await gql(
      app.graphqlUrl,
      lab.keys.VIEWER,
      `query($id: ID!) { node(id: $id) { ... on SelectorModel { evaluations(first: 10) { totalCount edges { node { id subject run { id } } } } } } }`,
      { id: selectorGlobalId(selectorId) },
    );
    expect(listed.errors).toBeUndefined();
    const evaluations = listed.data!.node.evaluations;
    expect(evaluations.totalCount).toBe(2);
    expect(evaluations.edges[0].node.run.id).toBe(again.run.id);
    const node = await gql(app.graphqlUrl, lab.keys.VIEWER, `query($id: ID!) { node(id: $id) { ... on SelectorEvaluation { id pairs } } }`, { id: evaluations.edges[0].node.id });
    expect(node.data!.node).toEqual({ id: evaluations.edges[0].node.id, pairs: 4 });

    // Without a run id: the latest succeeded evaluation.
    const latest = await gql(app.graphqlUrl, lab.keys.VIEWER, COMPARISON, {});
    expect(latest.data!.selectorComparison.run.id).toBe(again.run.id);
  });

  it('refuses what it cannot evaluate with userErrors', async () => {
    const start = (input: Record<string, unknown>) => gql(app.graphqlUrl, lab.keys.CURATOR, START, { input });
    const both = await start({ includeJudge: true, imageIds: [toGlobalId('Image', fixture.imageIds[0])], trainingRunId: toGlobalId('Run', fixture.candidateIds[0]) });
    expect(both.data!.startEvaluationRun.userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'imageIds'] });
    const nothing = await start({ selectorIds: [], includeJudge: false });
    expect(nothing.data!.startEvaluationRun.userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'selectorIds'] });
    // Images 3 and 4 have no clinician pairs.
    const noPairs = await start({ includeJudge: true, imageIds: [3, 4].map((i) => toGlobalId('Image', fixture.imageIds[i])) });
    expect(noPairs.data!.startEvaluationRun.userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', 'imageIds'] });
    const notTraining = await start({ includeJudge: true, trainingRunId: toGlobalId('Run', fixture.candidateIds[0]) });
    expect(notTraining.data!.startEvaluationRun.userErrors[0]).toMatchObject({ code: 'NOT_FOUND', field: ['input', 'trainingRunId'] });
  });

  it('lets CURATOR start and VIEWER read, not CLINICIAN or VIEWER start', async () => {
    for (const role of ['VIEWER', 'CLINICIAN'] as const) {
      const res = await gql(app.graphqlUrl, lab.keys[role], START, { input: { selectorIds: [], includeJudge: true } });
      expect(errorCodes(res)).toEqual(['FORBIDDEN']);
    }
    const read = await gql(app.graphqlUrl, lab.keys.VIEWER, COMPARISON, {});
    expect(read.data!.selectorComparison.rows.length).toBeGreaterThan(0);
  });

  it("keeps a project's evaluations from another project's keys", async () => {
    const mine = await gql(app.graphqlUrl, lab.keys.VIEWER, COMPARISON, {});
    const runId = mine.data!.selectorComparison.run.id;
    const evaluationId = mine.data!.selectorComparison.rows[0].evaluation.id;
    expect(fromGlobalId(evaluationId)?.type).toBe('SelectorEvaluation');

    const theirs = await gql(app.graphqlUrl, other.keys.OWNER, COMPARISON, { id: runId });
    expect(theirs.errors).toBeUndefined();
    expect(theirs.data!.selectorComparison).toBeNull();
    expect((await gql(app.graphqlUrl, other.keys.OWNER, COMPARISON, {})).data!.selectorComparison).toBeNull();
    expect(errorCodes(await gql(app.graphqlUrl, other.keys.OWNER, `query($id: ID!) { node(id: $id) { id } }`, { id: evaluationId }))).toEqual(['NOT_FOUND']);
    // Another project's selector cannot be evaluated, and its images hold no pairs of ours.
    const start = await gql(app.graphqlUrl, other.keys.CURATOR, START, { input: { selectorIds: [selectorGlobalId(selectorId)], includeJudge: false } });
    expect(start.data!.startEvaluationRun.userErrors[0]).toMatchObject({ code: 'NOT_FOUND', field: ['input', 'selectorIds'] });
    const images = await gql(app.graphqlUrl, other.keys.CURATOR, START, { input: { includeJudge: true, imageIds: [toGlobalId('Image', fixture.imageIds[0])] } });
    expect(images.data!.startEvaluationRun.userErrors[0]).toMatchObject({ code: 'NOT_FOUND', field: ['input', 'imageIds'] });
  });
});
