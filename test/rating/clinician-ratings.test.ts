/**
 * Issue 9, item 12: a clinician's rating of answer B stays a rating of answer B, so the two ratings
 * of a two-answer round can be told apart and become a TRL pair; answerIndex is refused where it
 * means nothing.
 */
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { DatasetFixture, seedDatasetFixture } from '../support/dataset-fixture';
import { datasetExportPath } from '../../src/modules/datasets/dataset-exports.routes';
import { toGlobalId } from '../../src/platform/ids';

const RECORD = `mutation($input: RecordPreferenceInput!) {
  recordPreference(input: $input) { preference { id kind roundIndex answerIndex rating } userErrors { code field message } }
}`;

describe('clinician ratings of one answer', () => {
  let app: TestApp;
  let lab: TestProject;
  let fx: DatasetFixture;
  /** A TWO_ANSWERS candidate of the dataset, and a round of it (with two different answers) nobody has judged. */
  let target: { candidateId: string; roundIndex: number; answers: string[] };
  let singleAnswerCandidateId: string;

  const record = (input: Record<string, unknown>) => gql(app.graphqlUrl, lab.keys.CLINICIAN, RECORD, { input });
  const countPrefs = async () => (await app.ds.query(`SELECT count(*)::int AS n FROM preferences WHERE project_id = $1`, [lab.id]))[0].n as number;

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'clinician-ratings');
    fx = await seedDatasetFixture(app, lab);
    const [free] = await app.ds.query(
      `SELECT c.id, r.ordinality - 1 AS round_index, r.value -> 'answers' AS answers
       FROM candidates c JOIN dataset_items di ON di.candidate_id = c.id CROSS JOIN LATERAL jsonb_array_elements(c.rounds) WITH ORDINALITY r
       WHERE di.dataset_id = $1 AND c.form = 'TWO_ANSWERS' AND jsonb_array_length(r.value -> 'answers') = 2 AND r.value -> 'answers' ->> 0 <> r.value -> 'answers' ->> 1
         AND NOT EXISTS (SELECT 1 FROM preferences p WHERE p.candidate_id = c.id AND p.round_index = r.ordinality - 1)
       ORDER BY di.rank, r.ordinality LIMIT 1`,
      [fx.datasetId],
    );
    target = { candidateId: free.id, roundIndex: Number(free.round_index), answers: free.answers };
    singleAnswerCandidateId = (await app.ds.query(`SELECT id FROM candidates WHERE project_id = $1 AND form = 'SINGLE_ANSWER' LIMIT 1`, [lab.id]))[0].id;
  });
  afterAll(async () => {
    await app?.stop();
  });

  it('stores answerIndex 1 and 0 of RATING, and the two ratings of the round make a TRL pair decided by the clinician', async () => {
    const candidateId = toGlobalId('Candidate', target.candidateId);
    const b = await record({ candidateId, kind: 'RATING', roundIndex: target.roundIndex, answerIndex: 1, rating: 8, rubricVersion: 'rating/v1', rationale: 'B names the level.' });
    expect(b.errors).toBeUndefined();
    expect(b.data!.recordPreference).toEqual({ preference: expect.objectContaining({ kind: 'RATING', roundIndex: target.roundIndex, answerIndex: 1, rating: 8 }), userErrors: [] });
    const a = await record({ candidateId, kind: 'RATING', roundIndex: target.roundIndex, answerIndex: 0, rating: 3, rubricVersion: 'rating/v1' });
    expect(a.data!.recordPreference).toEqual({ preference: expect.objectContaining({ answerIndex: 0, rating: 3 }), userErrors: [] });

    const stored = await app.ds.query(`SELECT answer_index, rating FROM preferences WHERE candidate_id = $1 AND round_index = $2 ORDER BY answer_index`, [target.candidateId, target.roundIndex]);
    expect(stored).toEqual([
      { answer_index: 0, rating: 3 },
      { answer_index: 1, rating: 8 },
    ]);

    const res = await fetch(`${app.url}${datasetExportPath(fx.datasetId, 'trl.jsonl')}`, { headers: { authorization: `Bearer ${lab.keys.VIEWER}` } });
    expect(res.status).toBe(200);
    const pairs = (await res.text()).split('\n').filter(Boolean).map((line) => JSON.parse(line));
    const pair = pairs.find((p) => p.id === `${toGlobalId('Candidate', target.candidateId)}:round:${target.roundIndex}`);
    expect(pair).toMatchObject({
      source: 'CLINICIAN',
      kinds: ['RATING'],
      chosen: [{ role: 'assistant', content: target.answers[1] }],
      rejected: [{ role: 'assistant', content: target.answers[0] }],
      votes: { chosen: 1, rejected: 0 },
    });
  });

  it('keeps a RATING of the whole candidate (no round, no answer) as before', async () => {
    const res = await record({ candidateId: toGlobalId('Candidate', target.candidateId), kind: 'RATING', rating: 6, rubricVersion: 'rating/v1' });
    expect(res.data!.recordPreference).toEqual({ preference: expect.objectContaining({ roundIndex: null, answerIndex: null, rating: 6 }), userErrors: [] });
  });

  it.each([
    ['PAIRWISE with answerIndex', () => ({ candidateId: toGlobalId('Candidate', target.candidateId), kind: 'PAIRWISE', roundIndex: target.roundIndex, choice: 'A', answerIndex: 1 }), ['answerIndex']],
    ['PAIRWISE between candidates with answerIndex', () => ({ candidateId: toGlobalId('Candidate', target.candidateId), otherCandidateId: toGlobalId('Candidate', singleAnswerCandidateId), kind: 'PAIRWISE', choice: 'A', answerIndex: 0 }), ['answerIndex']],
    ['RATING of answer B of a SINGLE_ANSWER candidate', () => ({ candidateId: toGlobalId('Candidate', singleAnswerCandidateId), kind: 'RATING', roundIndex: 0, answerIndex: 1, rating: 5, rubricVersion: 'rating/v1' }), ['candidateId']],
    ['RATING of an answer without its round', () => ({ candidateId: toGlobalId('Candidate', target.candidateId), kind: 'RATING', answerIndex: 1, rating: 5, rubricVersion: 'rating/v1' }), ['roundIndex']],
  ])('refuses %s with a userError and writes nothing', async (_name, input, field) => {
    const before = await countPrefs();
    const res = await record(input());
    expect(res.errors).toBeUndefined();
    expect(res.data!.recordPreference).toEqual({ preference: null, userErrors: [expect.objectContaining({ code: 'INVALID', field })] });
    expect(await countPrefs()).toBe(before);
  });
});
