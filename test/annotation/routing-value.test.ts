/**
 * Routing VALUE's priority (issue 12): annotationValueOf on hand-computed cases, and
 * annotationValues reading its inputs from a real database (active selector scores, the model
 * judge's ratings, the latest dataset's cut), scoped to the project asked for.
 */
import { DataSource } from 'typeorm';
import { annotationValueOf, idHash, percentileRanks } from '../../src/modules/annotation/annotation-value';
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
    // Priority = max(1 − position by value / 4, 1 − (position by idHash + ½) / 4) over c1-c4 (c5 has no signal: 0).
    // By value c2 (5/3), c1 (3/2), c3 (13/12), c4 (3/4): 1, 0.75, 0.5, 0.25. By idHash (FNV-1a: c2 0.520,
    // c3 0.524, c1 0.532, c4 0.544): 0.875, 0.625, 0.375, 0.125. So c3 is lifted by its random turn.
    expect(idHash('c2')).toBeCloseTo(0.52017, 5);
    expect(['c1', 'c2', 'c3', 'c4', 'c5'].map((id) => values.get(id)!.priority)).toEqual([0.75, 1, 0.625, 0.25, 0]);
  });

  it('interleaves the order by value with the order by idHash', () => {
    // 100 candidates, selector i and judge (37 i) mod 100: distinct disagreements, no threshold.
    const ids = Array.from({ length: 100 }, (_, i) => `c${i}`);
    const values = annotationValueOf(ids, { selectorScores: new Map(ids.map((id, i) => [id, i])), judgeRatings: new Map(ids.map((id, i) => [id, (37 * i) % 100])), threshold: null });
    const handedOut = [...ids].sort((a, b) => values.get(b)!.priority - values.get(a)!.priority);
    const byValue = [...ids].filter((id) => values.get(id)!.value > 0).sort((a, b) => values.get(b)!.value - values.get(a)!.value);
    const byHash = [...ids].filter((id) => values.get(id)!.value > 0).sort((a, b) => idHash(a) - idHash(b));
    // The first 2k handed out hold the k most valuable and the k first by hash, for every k.
    for (const k of [1, 5, 10, 25]) {
      const first = new Set(handedOut.slice(0, 2 * k));
      expect(byValue.slice(0, k).every((id) => first.has(id))).toBe(true);
      expect(byHash.slice(0, k).every((id) => first.has(id))).toBe(true);
    }
    // And not only the most valuable: the first 20 are not the top 20 by value.
    expect(handedOut.slice(0, 20).filter((id) => !byValue.slice(0, 20).includes(id)).length).toBeGreaterThan(0);
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

  /** max(the value turn, 1 − (position by idHash among `ids` + ½) / n): the candidates' ids are random uuids. */
  const interleaved = (id: string, ids: string[], valueTurn: number) => {
    const position = [...ids].sort((a, b) => idHash(a) - idHash(b)).indexOf(id);
    return Math.max(valueTurn, 1 - (position + 0.5) / ids.length);
  };

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
    // Values c1 1 + 0.5, c2 2/3 + 1, c3 1/3 + 0.75, c4 0 + 0.75 (as in the hand-computed case above):
    // c2 first by value gets 1, the others max(their value turn, their random turn); c5 has no signal.
    expect(values.get(c1)).toBeCloseTo(interleaved(c1, [c1, c2, c3, c4], 0.75), 12);
    expect(values.get(c2)).toBeCloseTo(1, 12);
    expect(values.get(c3)).toBeCloseTo(interleaved(c3, [c1, c2, c3, c4], 0.5), 12);
    expect(values.get(c4)).toBeCloseTo(interleaved(c4, [c1, c2, c3, c4], 0.25), 12);
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
    expect(priority.get(c1)).toBeCloseTo(interleaved(c1, [c1, c2, c3, c4], 0.75), 12);
    expect(priority.get(c2)).toBeCloseTo(1, 12);
    expect(priority.get(c3)).toBeCloseTo(interleaved(c3, [c1, c2, c3, c4], 0.5), 12);
    expect(priority.get(c4)).toBeCloseTo(interleaved(c4, [c1, c2, c3, c4], 0.25), 12);
    expect(priority.get(c5)).toBe(0);
    const next = await gql(app.graphqlUrl, lab.keys.CLINICIAN, `mutation($input: NextAnnotationTaskInput!) { nextAnnotationTask(input: $input) { task { candidate { id } } userErrors { code message } } }`, { input: { campaignId } });
    expect(next.errors).toBeUndefined();
    expect(fromGlobalId(next.data!.nextAnnotationTask.task.candidate.id)!.id).toBe(c2);
  });
});
