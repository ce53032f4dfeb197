import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { toGlobalId } from '../../src/platform/ids';
import { Candidate, CandidateStatus } from '../../src/modules/candidates/candidate.entity';
import { Demonstration } from '../../src/modules/demonstrations/demonstration.entity';
import { Run, RunKind } from '../../src/modules/runs/run.entity';
import { Role } from '../../src/modules/projects/role';

const record = (n: number) => ({
  id: n,
  pair_id: `rel_${n}`,
  pmid: String(1000 + n),
  fig_caption: `Figure ${n}`,
  domain: { mri: true },
  conversations: [
    { from: 'human', value: `Question ${n}?` },
    { from: 'gpt', value: `Answer ${n}.` },
  ],
});

/** Provenance links: which demonstrations prompted a candidate, where a demonstration came from, who started a run. */
describe('relations between objects', () => {
  let app: TestApp;
  let lab: TestProject;
  let demonstrations: Demonstration[];
  let candidate: Candidate;

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'rel-lab');
    const result = await app.services.recordsImport.import(lab.ctx(Role.CURATOR), [1, 2, 3, 4].map(record), [], { createDemonstrations: true });
    expect(result.recordErrors).toEqual([]);
    demonstrations = await app.ds.getRepository(Demonstration).find({ where: { projectId: lab.id }, order: { externalId: 'ASC' } });
    const run = await app.ds.getRepository(Run).save({ projectId: lab.id, kind: RunKind.GENERATION, createdById: lab.userIds.CURATOR });
    const order = [demonstrations[2], demonstrations[0], demonstrations[3]];
    candidate = await app.ds.getRepository(Candidate).save({
      projectId: lab.id,
      imageId: demonstrations[0].imageId,
      runId: run.id,
      status: CandidateStatus.OK,
      rounds: [{ question: 'Q?', answers: ['A.'] }],
      demonstrationIds: order.map((d) => d.id),
    });
    await app.ds.getRepository(Demonstration).update({ id: demonstrations[1].id }, { sourceCandidateId: candidate.id });
  });
  afterAll(() => app.stop());

  it('pages through the demonstrations a candidate used, in prompt order', async () => {
    const query = `query($id: ID!, $after: String) { node(id: $id) { ... on Candidate {
      demonstrationsUsed(first: 2, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { externalId } } } } } }`;
    const id = toGlobalId('Candidate', candidate.id);
    const first = (await gql(app.graphqlUrl, lab.keys.VIEWER, query, { id })).data!.node.demonstrationsUsed;
    expect(first.totalCount).toBe(3);
    expect(first.pageInfo.hasNextPage).toBe(true);
    expect(first.edges.map((e: any) => e.node.externalId)).toEqual(['3', '1']);
    const second = (await gql(app.graphqlUrl, lab.keys.VIEWER, query, { id, after: first.pageInfo.endCursor })).data!.node.demonstrationsUsed;
    expect(second.edges.map((e: any) => e.node.externalId)).toEqual(['4']);
    expect(second.pageInfo.hasNextPage).toBe(false);
  });

  it('links a demonstration to the candidate it was accepted from, and a run to who started it', async () => {
    const res = await gql(
      app.graphqlUrl,
      lab.keys.VIEWER,
      `query($d: ID!) { node(id: $d) { ... on Demonstration { sourceCandidate { id } selectedBy { email } image { pairId modalities } } }
        runs(first: 5) { edges { node { kind createdBy { email } } } } }`,
      { d: toGlobalId('Demonstration', demonstrations[1].id) },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data!.node).toEqual({ sourceCandidate: { id: toGlobalId('Candidate', candidate.id) }, selectedBy: { email: 'curator@rel-lab.test' }, image: { pairId: 'rel_2', modalities: ['MRI'] } });
    expect(res.data!.runs.edges).toEqual([{ node: { kind: 'GENERATION', createdBy: { email: 'curator@rel-lab.test' } } }]);
  });
});
