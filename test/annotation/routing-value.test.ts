/**
 * Routing VALUE's priority (issue 12): annotationValueOf on hand-computed cases, and
 * annotationValues reading its inputs from a real database (active selector scores, the model
 * judge's ratings, the latest dataset's cut), scoped to the project asked for.
 */
import { DataSource } from 'typeorm';
import { annotationValueOf, percentileRanks } from '../../src/modules/annotation/annotation-value';
import { annotationValues } from '../../src/modules/annotation/routing-value';
import { referenceSelectorUpload, registerSelector, seedCandidates } from '../support/scoring-fixture';
import { seedPipeline } from '../support/pipeline-fixture';
import { fromGlobalId } from '../../src/platform/ids';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';

jest.setTimeout(120_000);

describe('annotationValueOf', () => {
  it('gives mid-rank percentiles, ties sharing their mean position', () => {
    expect(percentileRanks(new Map([['a', 3], ['b', 1], ['c', 3], ['d', 2]]))).toEqual(new Map([['b', 0], ['d', 1 / 3], ['a', 5 / 6], ['c', 5 / 6]]));
    expect(percentileRanks(new Map([['only', 7]]))).toEqual(new Map([['only', 0.5]]));
  });

  it('adds selector/judge rank disagreement and proximity to the cut, 0 for a missing signal', () => {
    const selectorScores = new Map([['c1', 0.9], ['c2', 0.5], ['c3', 0.1], ['c4', 0.7]]);
    const judgeRatings = new Map([['c1', 3], ['c2', 8], ['c3', 5], ['c4', 7]]);
    const values = annotationValueOf(['c1', 'c2', 'c3', 'c4', 'c5'], { selectorScores, judgeRatings, threshold: { scores: selectorScores, value: 0.5 } });
    // Selector ranks c3 0, c2 1/3, c4 2/3, c1 1; judge ranks c1 0, c3 1/3, c4 2/3, c2 1.
    expect(values.get('c1')!.disagreement).toBeCloseTo(1, 12);
    expect(values.get('c2')!.disagreement).toBeCloseTo(2 / 3, 12);
    expect(values.get('c3')!.disagreement).toBeCloseTo(1 / 3, 12);
    expect(values.get('c4')!.disagreement).toBeCloseTo(0, 12);
    // F(0.5) = (1 + ½)/4 = 0.375; F(0.9) = 0.875, F(0.1) = 0.125, F(0.7) = 0.625.
    expect(values.get('c1')!.thresholdProximity).toBeCloseTo(0.5, 12);
    expect(values.get('c2')!.thresholdProximity).toBeCloseTo(1, 12);
    expect(values.get('c3')!.thresholdProximity).toBeCloseTo(0.75, 12);
    expect(values.get('c4')!.thresholdProximity).toBeCloseTo(0.75, 12);
    expect(values.get('c5')).toEqual({ priority: 0, value: 0, disagreement: 0, thresholdProximity: 0 });
    expect(values.get('c2')!.value).toBeCloseTo(5 / 3, 12);
    // Four candidates are one stratum: priority by value, c2 (5/3) > c1 (3/2) > c3 (13/12) > c4 (3/4).
    expect(['c1', 'c2', 'c3', 'c4', 'c5'].map((id) => values.get(id)!.priority)).toEqual([0.75, 1, 0.5, 0.25, 0]);
  });

  it('hands out round-robin over strata of the selector score, the highest value first in each', () => {
    // 100 candidates: two strata of 50 by selector score (i). On the lower half the judge agrees with
    // the selector but swaps c0 and c2 (disagreement 2/99 each, 0 for the others); it reverses the
    // upper half (judge 149 − i: disagreement |2i − 149|/99, 49/99 at c50 and c99 down to 1/99 at c74, c75).
    const ids = Array.from({ length: 100 }, (_, i) => `c${i}`);
    const selectorScores = new Map(ids.map((id, i) => [id, i]));
    const judgeRatings = new Map(ids.map((id, i) => [id, i === 0 ? 2 : i === 2 ? 0 : i < 50 ? i : 149 - i]));
    const values = annotationValueOf(ids, { selectorScores, judgeRatings, threshold: null });
    expect(values.get('c0')!.value).toBeCloseTo(2 / 99, 12);
    expect(values.get('c50')!.value).toBeCloseTo(49 / 99, 12);
    expect(values.get('c74')!.value).toBeCloseTo(1 / 99, 12);
    // Each stratum's two most valuable tie at positions 0 and 1: priority 1 − 0.5/50.
    for (const id of ['c0', 'c2', 'c50', 'c99']) expect(values.get(id)!.priority).toBeCloseTo(0.99, 12);
    // c74 and c75 are the upper stratum's last two; c1 has no disagreement and no threshold: 0.
    expect(values.get('c74')!.priority).toBeCloseTo(1 - 48.5 / 50, 12);
    expect(values.get('c1')!.priority).toBe(0);
    // By value 48 upper candidates (disagreement 3/99 to 49/99) come before c0; by priority none.
    expect(ids.filter((id) => values.get(id)!.value > values.get('c0')!.value + 1e-9)).toHaveLength(48);
    expect(ids.filter((id) => values.get(id)!.priority > values.get('c0')!.priority + 1e-9)).toHaveLength(0);
  });

  it('has no disagreement signal without a judge and no threshold signal without a dataset', () => {
    const values = annotationValueOf(['a', 'b'], { selectorScores: new Map([['a', 1], ['b', 2]]), judgeRatings: new Map(), threshold: null });
    expect([...values.values()].map((v) => v.value)).toEqual([0, 0]);
  });
});

describe('annotationValues on a real database', () => {
  let app: TestApp;
  let lab: TestProject;
  let other: TestProject;
  let labCandidates: string[];
  let otherCandidates: string[];

  async function insert(ds: DataSource, table: string, row: Record<string, unknown>): Promise<string> {
    const columns = Object.keys(row);
    const rows: { id: string }[] = await ds.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((_c, i) => `$${i + 1}`).join(', ')}) RETURNING id`, Object.values(row));
    return rows[0].id;
  }

  async function selector(project: TestProject, name: string): Promise<string> {
    const res = await registerSelector(app, project.keys.CURATOR, name, referenceSelectorUpload(), { activate: true });
    const model = res.data?.registerSelectorModel?.selectorModel;
    if (!model) throw new Error(JSON.stringify(res));
    return fromGlobalId(model.id)!.id;
  }

  const at = (second: number) => new Date(Date.UTC(2025, 0, 1, 0, 0, second));

  async function judge(project: TestProject, candidateId: string, model: string, ratings: [number, number], second: number) {
    for (const [answerIndex, rating] of ratings.entries()) {
      await insert(app.ds, 'preferences', { project_id: project.id, candidate_id: candidateId, source: 'MODEL', kind: 'RATING', judge_model: model, round_index: 0, answer_index: answerIndex, rating, rubric_version: 'rating/v1', created_at: at(second) });
    }
  }

  async function dataset(project: TestProject, selectorId: string, name: string, items: [string, number][], second: number) {
    const id = await insert(app.ds, 'datasets', { project_id: project.id, name, version: 1, rule: JSON.stringify({ topFraction: 0.5 }), selector_model_id: selectorId, item_count: items.length, created_at: at(second) });
    for (const [rank, [candidateId, score]] of items.entries()) await insert(app.ds, 'dataset_items', { project_id: project.id, dataset_id: id, candidate_id: candidateId, rank: rank + 1, score });
  }

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'routing-lab');
    other = await createTestProject(app, 'routing-other');
    const labImages = (await seedPipeline(app, lab, { demonstrations: false })).imageIds;
    const otherImages = (await seedPipeline(app, other, { demonstrations: false })).imageIds;
    labCandidates = await seedCandidates(app, lab, labImages.slice(0, 5), 1);
    otherCandidates = await seedCandidates(app, other, otherImages.slice(0, 4), 1);
  });

  afterAll(async () => {
    await app?.stop();
  });

  it('gives 0 to every candidate while there is neither judge, selector nor dataset', async () => {
    const values = await annotationValues(app.ds.manager, lab.id, labCandidates);
    expect([...values.values()]).toEqual([0, 0, 0, 0, 0]);
  });

  it('reads the active selector, the latest judge and the latest dataset of the project, and nothing of another', async () => {
    const [c1, c2, c3, c4, c5] = labCandidates;
    const labSelector = await selector(lab, 'lab-selector');
    for (const [candidateId, value] of [[c1, 0.9], [c2, 0.5], [c3, 0.1], [c4, 0.7]] as const) {
      await insert(app.ds, 'scores', { project_id: lab.id, candidate_id: candidateId, selector_model_id: labSelector, value });
    }
    // An older judge that disagrees with everything: the latest judge (judge-1) is the one compared.
    await judge(lab, c1, 'judge-0', [10, 10], 1);
    await judge(lab, c2, 'judge-0', [0, 0], 1);
    await judge(lab, c1, 'judge-1', [2, 4], 10);
    await judge(lab, c2, 'judge-1', [8, 8], 10);
    await judge(lab, c3, 'judge-1', [5, 5], 10);
    await judge(lab, c4, 'judge-1', [6, 8], 10);
    // An older dataset cut at 0.9; the latest one keeps c1, c4, c2 and so cuts at 0.5.
    await dataset(lab, labSelector, 'old', [[c1, 0.9]], 1);
    await dataset(lab, labSelector, 'top half', [[c1, 0.9], [c4, 0.7], [c2, 0.5]], 10);

    // Another project: its own active selector, judge and a newer dataset, over its own candidates.
    const otherSelector = await selector(other, 'other-selector');
    for (const [i, candidateId] of otherCandidates.entries()) await insert(app.ds, 'scores', { project_id: other.id, candidate_id: candidateId, selector_model_id: otherSelector, value: i });
    for (const candidateId of otherCandidates) await judge(other, candidateId, 'judge-9', [1, 9], 30);
    await dataset(other, otherSelector, 'other', [[otherCandidates[3], 3]], 30);

    const values = await annotationValues(app.ds.manager, lab.id, labCandidates);
    // Values c1 1 + 0.5, c2 2/3 + 1, c3 1/3 + 0.75, c4 0 + 0.75 (as in the hand-computed case above);
    // four candidates are one stratum, so the priorities are 1 − position/4 by value; c5 has no signal.
    expect(values.get(c1)).toBeCloseTo(0.75, 12);
    expect(values.get(c2)).toBeCloseTo(1, 12);
    expect(values.get(c3)).toBeCloseTo(0.5, 12);
    expect(values.get(c4)).toBeCloseTo(0.25, 12);
    expect(values.get(c5)).toBe(0);

    // The other project's candidates asked for under the lab's id get nothing from either project.
    const crossed = await annotationValues(app.ds.manager, lab.id, otherCandidates);
    expect([...crossed.values()]).toEqual([0, 0, 0, 0]);
  });

  it('works inside a transaction, as campaign creation calls it', async () => {
    const values = await app.ds.transaction((em) => annotationValues(em, lab.id, labCandidates.slice(0, 4)));
    expect(values.get(labCandidates[1])).toBeCloseTo(1, 12);
  });

  it('is what a VALUE campaign created through the API freezes as item priorities and hands out first', async () => {
    // The lab's candidates as two-answer candidates, which an ACCEPTANCE campaign takes.
    const rounds = JSON.stringify([{ question: 'What is shown?', answers: ['A lesion.', 'Nothing abnormal.'] }]);
    await app.ds.query(`UPDATE candidates SET form = 'TWO_ANSWERS', rounds = $2 WHERE id = ANY($1::uuid[])`, [labCandidates, rounds]);
    const created = await gql(app.graphqlUrl, lab.keys.CURATOR, `mutation($input: CreateAnnotationCampaignInput!) { createAnnotationCampaign(input: $input) { campaign { id } userErrors { code message } } }`, {
      input: { name: 'by value', taskKind: 'ACCEPTANCE', items: { candidateFilter: {} }, routing: 'VALUE' },
    });
    expect(created.errors ?? created.data!.createAnnotationCampaign.userErrors).toEqual([]);
    const campaignId = created.data!.createAnnotationCampaign.campaign.id;
    const [c1, c2, c3, c4, c5] = labCandidates;
    const stored: { candidate_id: string; priority: number }[] = await app.ds.query(`SELECT candidate_id, priority FROM annotation_items WHERE campaign_id = $1`, [fromGlobalId(campaignId)!.id]);
    const priority = new Map(stored.map((r) => [r.candidate_id, Number(r.priority)]));
    expect(priority.get(c1)).toBeCloseTo(0.75, 12);
    expect(priority.get(c2)).toBeCloseTo(1, 12);
    expect(priority.get(c3)).toBeCloseTo(0.5, 12);
    expect(priority.get(c4)).toBeCloseTo(0.25, 12);
    expect(priority.get(c5)).toBe(0);
    const next = await gql(app.graphqlUrl, lab.keys.CLINICIAN, `mutation($input: NextAnnotationTaskInput!) { nextAnnotationTask(input: $input) { task { candidate { id } } userErrors { code message } } }`, { input: { campaignId } });
    expect(next.errors).toBeUndefined();
    expect(fromGlobalId(next.data!.nextAnnotationTask.task.candidate.id)!.id).toBe(c2);
  });
});
