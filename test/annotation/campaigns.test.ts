/**
 * Issue 12: creating annotation campaigns. Items are frozen from exactly one source (a candidate
 * filter, a generation run, a dataset), the task kind decides what an item is, bad input is a
 * userError that writes nothing, only curators create, and another project's ids find nothing.
 */
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { errorCodes, gql } from '../support/graphql-client';
import { AnnotationApi, AnnotationFixture, gid, seedAnnotationFixture } from './annotation-fixture';

describe('annotation campaigns: creation', () => {
  let app: TestApp;
  let lab: TestProject;
  let other: TestProject;
  let fx: AnnotationFixture;
  let otherFx: AnnotationFixture;
  let api: AnnotationApi;

  const campaignRows = async (projectId: string) => (await app.ds.query(`SELECT count(*)::int AS n FROM annotation_campaigns WHERE project_id = $1`, [projectId]))[0].n as number;
  const itemsOf = async (campaignGlobalId: string) => {
    const id = Buffer.from(campaignGlobalId, 'base64url').toString().split(':')[1];
    return app.ds.query(`SELECT candidate_id, other_candidate_id, round_index, ordinal FROM annotation_items WHERE campaign_id = $1 ORDER BY ordinal`, [id]) as Promise<
      { candidate_id: string; other_candidate_id: string | null; round_index: number | null; ordinal: number }[]
    >;
  };

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'camp-create');
    other = await createTestProject(app, 'camp-create-other');
    fx = await seedAnnotationFixture(app, lab, { twoAnswer: 4, singlePairs: 2 });
    otherFx = await seedAnnotationFixture(app, other, { twoAnswer: 2 });
    api = new AnnotationApi(app);
  });
  afterAll(async () => {
    await app?.stop();
  });

  it('freezes the OK two-answer candidates of a generation run, with the defaults of the contract', async () => {
    const res = await api.create(lab.keys.CURATOR, { name: ' Chest CT round 1 ', guidelines: '# Accept answers a radiologist would sign', taskKind: 'ACCEPTANCE', items: { generationRunId: gid('Run', fx.runId) } });
    expect(res.errors).toBeUndefined();
    const { campaign, userErrors } = res.data!.createAnnotationCampaign;
    expect(userErrors).toEqual([]);
    expect(campaign).toMatchObject({ name: 'Chest CT round 1', taskKind: 'ACCEPTANCE', overlap: 1, blind: true, routing: 'RANDOM', leaseSeconds: 900 });
    expect(campaign.itemCounts).toEqual({ pending: 4, inProgress: 0, completed: 0, total: 4 });
    // The PARSE_FAILED candidate of the run is not an item; the order is the run's (image, sample).
    const items = await itemsOf(campaign.id);
    expect(items.map((i) => i.candidate_id).sort()).toEqual([...fx.twoAnswerIds].sort());
    expect(items.every((i) => i.round_index === null && i.other_candidate_id === null)).toBe(true);
    // One slot per item and overlap.
    const [{ slots }] = await app.ds.query(`SELECT count(*)::int AS slots FROM annotation_leases l JOIN annotation_items i ON i.id = l.item_id WHERE i.candidate_id = ANY($1::uuid[])`, [fx.twoAnswerIds]);
    expect(slots).toBe(4);
  });

  it('takes a dataset in rank order and a candidate filter in creation order', async () => {
    const byDataset = await api.campaign(lab.keys.CURATOR, { name: 'ranked', taskKind: 'RATING', routing: 'ORDERED', overlap: 2, items: { datasetId: gid('Dataset', fx.datasetId) } });
    expect((await itemsOf(byDataset)).map((i) => i.candidate_id)).toEqual([...fx.twoAnswerIds].reverse());
    const byFilter = await api.campaign(lab.keys.OWNER, { name: 'filtered', taskKind: 'ACCEPTANCE', items: { candidateFilter: { runId: gid('Run', fx.runId), statuses: ['OK'] } } });
    expect((await itemsOf(byFilter)).map((i) => i.candidate_id)).toEqual(fx.twoAnswerIds);
  });

  it('makes PAIRWISE items of each round of two-answer candidates and of two single-answer candidates of one image', async () => {
    const id = await api.campaign(lab.keys.CURATOR, { name: 'pairs', taskKind: 'PAIRWISE', items: { candidateFilter: { statuses: ['OK'] } } });
    const items = await itemsOf(id);
    const rounds = items.filter((i) => i.round_index !== null);
    expect(rounds.map((i) => [i.candidate_id, i.round_index])).toEqual(fx.twoAnswerIds.flatMap((c) => [[c, 0], [c, 1]]));
    expect(items.filter((i) => i.other_candidate_id).map((i) => [i.candidate_id, i.other_candidate_id])).toEqual(fx.singlePairs);
    expect(items.map((i) => i.ordinal)).toEqual(items.map((_i, n) => n));
  });

  it.each([
    ['two sources', () => ({ name: 'x', taskKind: 'ACCEPTANCE', items: { datasetId: gid('Dataset', fx.datasetId), generationRunId: gid('Run', fx.runId) } }), 'INVALID', ['input', 'items']],
    ['no source', () => ({ name: 'x', taskKind: 'ACCEPTANCE', items: {} }), 'INVALID', ['input', 'items']],
    ['ACCEPTANCE of single-answer candidates', () => ({ name: 'x', taskKind: 'ACCEPTANCE', items: { candidateFilter: { statuses: ['OK'] } } }), 'INVALID', ['input', 'items']],
    ['RATING of single-answer candidates', () => ({ name: 'x', taskKind: 'RATING', items: { candidateFilter: { imageId: null, hasPreferences: false } } }), 'INVALID', ['input', 'items']],
    ['a filter that selects nothing', () => ({ name: 'x', taskKind: 'ACCEPTANCE', items: { candidateFilter: { statuses: ['REFUSED'] } } }), 'INVALID', ['input', 'items']],
    ['an overlap of 0', () => ({ name: 'x', taskKind: 'ACCEPTANCE', overlap: 0, items: { datasetId: gid('Dataset', fx.datasetId) } }), 'INVALID', ['input', 'overlap']],
    ['a lease of 5 seconds', () => ({ name: 'x', taskKind: 'ACCEPTANCE', leaseSeconds: 5, items: { datasetId: gid('Dataset', fx.datasetId) } }), 'INVALID', ['input', 'leaseSeconds']],
    ['a blank name', () => ({ name: '  ', taskKind: 'ACCEPTANCE', items: { datasetId: gid('Dataset', fx.datasetId) } }), 'INVALID', ['input', 'name']],
    ['an empty annotator list', () => ({ name: 'x', taskKind: 'ACCEPTANCE', annotatorIds: [], items: { datasetId: gid('Dataset', fx.datasetId) } }), 'INVALID', ['input', 'annotatorIds']],
    ['a VIEWER as annotator', () => ({ name: 'x', taskKind: 'ACCEPTANCE', annotatorIds: [gid('User', lab.userIds.VIEWER)], items: { datasetId: gid('Dataset', fx.datasetId) } }), 'INVALID', ['input', 'annotatorIds']],
    ['an annotator of another project', () => ({ name: 'x', taskKind: 'ACCEPTANCE', annotatorIds: [gid('User', other.userIds.CLINICIAN)], items: { datasetId: gid('Dataset', fx.datasetId) } }), 'NOT_FOUND', ['input', 'annotatorIds']],
    ['an overlap above the named annotators', () => ({ name: 'x', taskKind: 'ACCEPTANCE', overlap: 2, annotatorIds: [gid('User', lab.userIds.CLINICIAN)], items: { datasetId: gid('Dataset', fx.datasetId) } }), 'INVALID', ['input', 'overlap']],
    ["another project's dataset", () => ({ name: 'x', taskKind: 'ACCEPTANCE', items: { datasetId: gid('Dataset', otherFx.datasetId) } }), 'NOT_FOUND', ['input', 'items', 'datasetId']],
    ["another project's generation run", () => ({ name: 'x', taskKind: 'ACCEPTANCE', items: { generationRunId: gid('Run', otherFx.runId) } }), 'NOT_FOUND', ['input', 'items', 'generationRunId']],
    ['a dataset id given as a run', () => ({ name: 'x', taskKind: 'ACCEPTANCE', items: { generationRunId: gid('Dataset', fx.datasetId) } }), 'INVALID', ['input', 'items', 'generationRunId']],
  ])('refuses %s with a userError and writes nothing', async (_name, input, code, field) => {
    const before = await campaignRows(lab.id);
    const res = await api.create(lab.keys.CURATOR, input());
    expect(res.errors).toBeUndefined();
    expect(res.data!.createAnnotationCampaign).toEqual({ campaign: null, userErrors: [expect.objectContaining({ code, field })] });
    expect(await campaignRows(lab.id)).toBe(before);
  });

  it('lets only curators and owners create; clinicians and viewers are FORBIDDEN', async () => {
    for (const role of ['CLINICIAN', 'VIEWER'] as const) {
      const res = await api.create(lab.keys[role], { name: 'not mine', taskKind: 'ACCEPTANCE', items: { datasetId: gid('Dataset', fx.datasetId) } });
      expect(errorCodes(res)).toEqual(['FORBIDDEN']);
    }
  });

  it("lists a project's campaigns to every role, and another project's key sees none of them", async () => {
    const list = `{ annotationCampaigns(first: 50) { totalCount edges { node { id name itemCounts { total } } } } }`;
    const mine = await gql(app.graphqlUrl, lab.keys.VIEWER, list);
    expect(mine.errors).toBeUndefined();
    const names = mine.data!.annotationCampaigns.edges.map((e: { node: { name: string } }) => e.node.name);
    expect(names).toEqual(expect.arrayContaining(['Chest CT round 1', 'ranked', 'filtered', 'pairs']));
    const theirs = await gql(app.graphqlUrl, other.keys.OWNER, list);
    expect(theirs.data!.annotationCampaigns).toEqual({ totalCount: 0, edges: [] });
    const id = mine.data!.annotationCampaigns.edges[0].node.id;
    const node = await gql(app.graphqlUrl, other.keys.OWNER, `query($id: ID!) { node(id: $id) { id } }`, { id });
    expect(errorCodes(node)).toEqual(['NOT_FOUND']);
    const own = await gql(app.graphqlUrl, lab.keys.VIEWER, `query($id: ID!) { node(id: $id) { ... on AnnotationCampaign { id name items(first: 2) { totalCount edges { node { id status submittedCount candidate { id } } } } } } }`, { id });
    expect(own.errors).toBeUndefined();
    expect(own.data!.node.items.edges).toHaveLength(2);
  });
});
