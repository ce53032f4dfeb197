import { ChatBehaviour, defaultChatBehaviour, FakeOpenAIServer } from '../fakes/openai-server';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { errorCodes, gql, GraphQLResponse } from '../support/graphql-client';
import { seedPipeline, START_GENERATION, waitForRun } from '../support/pipeline-fixture';
import { readSharedImage, SHARED_IMAGE_NAMES } from '../support/shared-data';
import { fromGlobalId, toGlobalId } from '../../src/platform/ids';
import { Role } from '../../src/modules/projects/role';

const START_RATING = `mutation($input: StartRatingRunInput!) {
  startRatingRun(input: $input) { run { id kind status total } userErrors { field message code } }
}`;
const START_CLUSTERING = `mutation($input: StartClusteringRunInput!) {
  startClusteringRun(input: $input) { run { id kind status total } userErrors { field message code } }
}`;
const CANCEL_RUN = `mutation($input: CancelRunInput!) { cancelRun(input: $input) { run { id status } userErrors { field message code } } }`;
const RUNS = `{ runs(first: 100) { totalCount edges { node { id kind status } } } }`;
const RUN_NODE = `query($id: ID!) { node(id: $id) { id ... on Run { kind status cancelRequestedAt failures(first: 10) { totalCount edges { node { id itemKey rawOutput } } } } } }`;
const NODE_ID = `query($id: ID!) { node(id: $id) { id } }`;
const CLUSTERS = `{ imageClusters { clusterId size } }`;
const IMAGES_IN_CLUSTER = `query($c: Int!) { images(first: 50, filter: { clusterId: $c }) { totalCount edges { node { id } } } }`;

const isJudge = (body: any) => (body?.messages ?? []).some((m: any) => m.role === 'system' && String(m.content).includes('You judge'));
function chat(body: any): ChatBehaviour {
  return isJudge(body) ? { reply: '{"score": 7, "rationale": "Accurate and grounded."}' } : defaultChatBehaviour(body);
}

const ALL_ROLES = [Role.VIEWER, Role.CLINICIAN, Role.CURATOR, Role.OWNER];

describe('runs are confined to their project and to roles that may start them', () => {
  let fake: FakeOpenAIServer;
  let app: TestApp;
  let labA: TestProject;
  let labB: TestProject;
  let imagesA: string[];
  let imagesB: string[];
  const a: { generation?: string; rating?: string; clustering?: string; failure?: string; candidates?: string[] } = {};
  let bClustering: string;
  let bCandidates: string[];

  const payloadOf = (res: GraphQLResponse) => Object.values(res.data ?? {})[0] as { run: any; userErrors: { code: string; field: string[] | null }[] } | null;

  async function started(key: string, mutation: string, input: Record<string, unknown>): Promise<string> {
    const res = await gql(app.graphqlUrl, key, mutation, { input });
    expect(res.errors).toBeUndefined();
    expect(payloadOf(res)!.userErrors).toEqual([]);
    return payloadOf(res)!.run.id;
  }

  const runCount = async (project: TestProject): Promise<number> =>
    (await app.ds.query(`SELECT count(*)::int AS n FROM runs WHERE project_id = $1`, [project.id]))[0].n;
  const runRow = async (runId: string) => (await app.ds.query(`SELECT status, cancel_requested_at FROM runs WHERE id = $1`, [fromGlobalId(runId)!.id]))[0];

  beforeAll(async () => {
    fake = await FakeOpenAIServer.start();
    fake.defaultChat = chat;
    app = await startTestApp({ OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.baseUrl, LLM_RETRY_BASE_MS: '20', LLM_TIMEOUT_MS: '5000', LLM_TOKENS_PER_MINUTE: '1000000000' }, { worker: true });
    labA = await createTestProject(app, 'iso-run-a');
    labB = await createTestProject(app, 'iso-run-b');
    imagesA = (await seedPipeline(app, labA, { demonstrations: false })).imageGlobalIds;
    imagesB = [];
    for (const name of SHARED_IMAGE_NAMES.slice(0, 2)) imagesB.push(toGlobalId('Image', (await app.services.images.upload(labB.ctx(), readSharedImage(name), name, { caption: `B's copy of ${name}` })).id));

    // A: a finished generation run, a rating run over it with one failed item, a clustering run.
    a.generation = await started(labA.keys.CURATOR, START_GENERATION, { images: { imageIds: imagesA }, demonstrationsPerPrompt: 0, seed: 1 });
    expect(await waitForRun(app, labA.keys.CURATOR, a.generation)).toMatchObject({ status: 'SUCCEEDED', done: 5 });
    a.candidates = (await app.ds.query(`SELECT id FROM candidates WHERE run_id = $1 ORDER BY id`, [fromGlobalId(a.generation)!.id])).map((r: any) => toGlobalId('Candidate', r.id));
    fake.onChat((body) => isJudge(body), { reply: 'No score from me.' }, 1);
    a.rating = await started(labA.keys.CURATOR, START_RATING, { generationRunId: a.generation });
    expect(await waitForRun(app, labA.keys.CURATOR, a.rating)).toMatchObject({ status: 'SUCCEEDED', done: 24, failed: 1 });
    a.clustering = await started(labA.keys.CURATOR, START_CLUSTERING, { k: 2, seed: 1 });
    expect(await waitForRun(app, labA.keys.CURATOR, a.clustering)).toMatchObject({ status: 'SUCCEEDED', done: 5 });
    // B: its own clustering of its two images, and candidates of its own.
    bClustering = await started(labB.keys.CURATOR, START_CLUSTERING, { k: 1, seed: 1 });
    expect(await waitForRun(app, labB.keys.CURATOR, bClustering)).toMatchObject({ status: 'SUCCEEDED', done: 2 });
    const bGeneration = await started(labB.keys.CURATOR, START_GENERATION, { images: { imageIds: imagesB }, demonstrationsPerPrompt: 0, seed: 1 });
    expect(await waitForRun(app, labB.keys.CURATOR, bGeneration)).toMatchObject({ status: 'SUCCEEDED', done: 2 });
    bCandidates = (await app.ds.query(`SELECT id FROM candidates WHERE run_id = $1 ORDER BY id`, [fromGlobalId(bGeneration)!.id])).map((r: any) => toGlobalId('Candidate', r.id));
    const failure = (await gql(app.graphqlUrl, labA.keys.VIEWER, RUN_NODE, { id: a.rating })).data!.node.failures;
    expect(failure.totalCount).toBe(1);
    a.failure = failure.edges[0].node.id;

    // From here on runs stay QUEUED, so they can be cancelled (or left alone) deterministically.
    await app.stopWorker();
  });

  afterAll(async () => {
    await app?.stop();
    await fake?.close();
  });

  describe("another project's keys", () => {
    it("list none of A's runs (A's own keys list them)", async () => {
      const own = await gql(app.graphqlUrl, labA.keys.VIEWER, RUNS);
      expect(own.errors).toBeUndefined();
      const ownIds = own.data!.runs.edges.map((e: any) => e.node.id);
      expect(ownIds).toEqual(expect.arrayContaining([a.generation, a.rating, a.clustering]));
      for (const role of ALL_ROLES) {
        const res = await gql(app.graphqlUrl, labB.keys[role], RUNS);
        expect(res.errors).toBeUndefined();
        const ids = res.data!.runs.edges.map((e: any) => e.node.id);
        expect(ids).toHaveLength(2);
        expect(ids).toContain(bClustering);
        expect(ids.filter((id: string) => ownIds.includes(id))).toEqual([]);
        expect(res.data!.runs.totalCount).toBe(2);
      }
    });

    it("get NOT_FOUND for A's runs and run failures by id (A's own key reads them, failures included)", async () => {
      const own = await gql(app.graphqlUrl, labA.keys.VIEWER, RUN_NODE, { id: a.rating });
      expect(own.errors).toBeUndefined();
      expect(own.data!.node).toMatchObject({ id: a.rating, kind: 'RATING', failures: { totalCount: 1, edges: [{ node: { id: a.failure, rawOutput: 'No score from me.' } }] } });
      expect((await gql(app.graphqlUrl, labA.keys.VIEWER, NODE_ID, { id: a.failure })).data!.node).toEqual({ id: a.failure });

      for (const role of ALL_ROLES) {
        for (const id of [a.generation, a.rating, a.clustering]) {
          const res = await gql(app.graphqlUrl, labB.keys[role], RUN_NODE, { id });
          expect(errorCodes(res)).toEqual(['NOT_FOUND']);
          expect(res.data?.node ?? null).toBeNull();
        }
        const failure = await gql(app.graphqlUrl, labB.keys[role], NODE_ID, { id: a.failure });
        expect(errorCodes(failure)).toEqual(['NOT_FOUND']);
        expect(failure.data?.node ?? null).toBeNull();
      }
    });

    it("cannot cancel A's runs, which carry on untouched; A's curator can", async () => {
      const queued = await started(labA.keys.CURATOR, START_GENERATION, { images: { imageIds: imagesA }, demonstrationsPerPrompt: 0 });
      for (const role of [Role.CURATOR, Role.OWNER]) {
        for (const id of [queued, a.generation]) {
          const res = await gql(app.graphqlUrl, labB.keys[role], CANCEL_RUN, { input: { runId: id } });
          const codes = [...errorCodes(res), ...(payloadOf(res)?.userErrors ?? []).map((e) => e.code)];
          expect(codes).toEqual(['NOT_FOUND']);
          expect(payloadOf(res)?.run ?? null).toBeNull();
        }
      }
      expect(await runRow(queued)).toEqual({ status: 'QUEUED', cancel_requested_at: null });
      expect(await runRow(a.generation!)).toEqual({ status: 'SUCCEEDED', cancel_requested_at: null });
      const jobs = await app.ds.query(`SELECT count(*)::int AS n FROM graphile_worker.jobs WHERE key = $1`, [`run:${fromGlobalId(queued)!.id}`]);
      expect(jobs[0].n).toBe(1);

      const own = await gql(app.graphqlUrl, labA.keys.CURATOR, CANCEL_RUN, { input: { runId: queued } });
      expect(own.errors).toBeUndefined();
      expect(own.data!.cancelRun).toEqual({ run: { id: queued, status: 'CANCELLED' }, userErrors: [] });
    });

    it("cannot start generation or clustering over A's images (NOT_FOUND), but can over their own", async () => {
      const before = await runCount(labB);
      for (const [mutation, extra] of [
        [START_GENERATION, { demonstrationsPerPrompt: 0 }],
        [START_CLUSTERING, { k: 2, seed: 1 }],
      ] as const) {
        for (const imageIds of [imagesA, [imagesA[0]], [...imagesB, imagesA[0]]]) {
          const res = await gql(app.graphqlUrl, labB.keys.CURATOR, mutation, { input: { images: { imageIds }, ...extra } });
          expect(res.errors).toBeUndefined();
          const payload = payloadOf(res)!;
          expect(payload.run).toBeNull();
          expect(payload.userErrors.map((e) => e.code)).toEqual(['NOT_FOUND']);
          expect(payload.userErrors[0].field).toEqual(['input', 'images', 'imageIds']);
        }
      }
      expect(await runCount(labB)).toBe(before);
      expect(await app.ds.query(`SELECT count(*)::int AS n FROM run_targets t JOIN images i ON i.id = t.target_id WHERE i.project_id = $1 AND t.run_id IN (SELECT id FROM runs WHERE project_id = $2)`, [labA.id, labB.id])).toEqual([{ n: 0 }]);

      // Positive controls: B over its own images, A over A's images.
      const ownB = await started(labB.keys.CURATOR, START_CLUSTERING, { images: { imageIds: imagesB }, k: 1 });
      const ownA = await started(labA.keys.CURATOR, START_GENERATION, { images: { imageIds: imagesA }, demonstrationsPerPrompt: 0 });
      for (const [key, id] of [[labB.keys.CURATOR, ownB], [labA.keys.CURATOR, ownA]]) {
        expect((await gql(app.graphqlUrl, key, CANCEL_RUN, { input: { runId: id } })).data!.cancelRun.run.status).toBe('CANCELLED');
      }
    });

    it("cannot rate A's generation run or A's candidates", async () => {
      const before = await runCount(labB);
      const byRun = await gql(app.graphqlUrl, labB.keys.CURATOR, START_RATING, { input: { generationRunId: a.generation } });
      expect(byRun.errors).toBeUndefined();
      expect(payloadOf(byRun)).toMatchObject({ run: null, userErrors: [{ code: 'NOT_FOUND', field: ['input', 'generationRunId'] }] });

      // A's candidates alone, or slipped in among B's own: refused, never silently dropped or rated.
      for (const candidateIds of [a.candidates!, [a.candidates![0]], [...bCandidates, a.candidates![0]]]) {
        const res = await gql(app.graphqlUrl, labB.keys.CURATOR, START_RATING, { input: { candidateIds } });
        expect(res.errors).toBeUndefined();
        expect(payloadOf(res)).toMatchObject({ run: null, userErrors: [{ code: 'NOT_FOUND', field: ['input', 'candidateIds'] }] });
      }
      expect(await runCount(labB)).toBe(before);
      expect(await app.ds.query(`SELECT count(*)::int AS n FROM run_targets t JOIN candidates c ON c.id = t.target_id WHERE c.project_id = $1 AND t.run_id IN (SELECT id FROM runs WHERE project_id = $2)`, [labA.id, labB.id])).toEqual([{ n: 0 }]);

      // Positive controls: B's curator rates B's candidates, A's curator rates A's.
      const ownB = await started(labB.keys.CURATOR, START_RATING, { candidateIds: bCandidates });
      expect((await gql(app.graphqlUrl, labB.keys.VIEWER, RUN_NODE, { id: ownB })).data!.node).toMatchObject({ kind: 'RATING', status: 'QUEUED' });
      expect((await gql(app.graphqlUrl, labB.keys.CURATOR, CANCEL_RUN, { input: { runId: ownB } })).data!.cancelRun.run.status).toBe('CANCELLED');
      const own = await started(labA.keys.CURATOR, START_RATING, { candidateIds: a.candidates!.slice(0, 2) });
      expect((await gql(app.graphqlUrl, labA.keys.VIEWER, RUN_NODE, { id: own })).data!.node).toMatchObject({ kind: 'RATING', status: 'QUEUED' });
      expect((await gql(app.graphqlUrl, labA.keys.CURATOR, CANCEL_RUN, { input: { runId: own } })).data!.cancelRun.run.status).toBe('CANCELLED');
    });

    it('see only their own images in imageClusters', async () => {
      const sizesA = await gql(app.graphqlUrl, labA.keys.VIEWER, CLUSTERS);
      expect(sizesA.data!.imageClusters).toHaveLength(2);
      expect(sizesA.data!.imageClusters.reduce((sum: number, c: any) => sum + c.size, 0)).toBe(5);
      for (const role of ALL_ROLES) {
        const sizesB = await gql(app.graphqlUrl, labB.keys[role], CLUSTERS);
        expect(sizesB.errors).toBeUndefined();
        expect(sizesB.data!.imageClusters).toEqual([{ clusterId: 0, size: 2 }]);
      }
      const inCluster = await gql(app.graphqlUrl, labB.keys.VIEWER, IMAGES_IN_CLUSTER, { c: 0 });
      expect(inCluster.data!.images.edges.map((e: any) => e.node.id).sort()).toEqual([...imagesB].sort());
    });
  });

  describe('roles', () => {
    const attempts = (): [string, string, () => Record<string, unknown>][] => [
      ['startGenerationRun', START_GENERATION, () => ({ images: { imageIds: imagesA }, demonstrationsPerPrompt: 0 })],
      ['startRatingRun', START_RATING, () => ({ generationRunId: a.generation })],
      ['startClusteringRun', START_CLUSTERING, () => ({ k: 2, seed: 1 })],
    ];

    it.each([Role.VIEWER, Role.CLINICIAN])('%s gets FORBIDDEN for starting and cancelling runs', async (role) => {
      const before = await runCount(labA);
      for (const [name, mutation, input] of attempts()) {
        const res = await gql(app.graphqlUrl, labA.keys[role], mutation, { input: input() });
        expect([name, errorCodes(res)]).toEqual([name, ['FORBIDDEN']]);
        expect(res.data?.[name] ?? null).toBeNull();
      }
      expect(await runCount(labA)).toBe(before);

      const queued = await started(labA.keys.CURATOR, START_GENERATION, { images: { imageIds: imagesA }, demonstrationsPerPrompt: 0 });
      const res = await gql(app.graphqlUrl, labA.keys[role], CANCEL_RUN, { input: { runId: queued } });
      expect(errorCodes(res)).toEqual(['FORBIDDEN']);
      expect(await runRow(queued)).toEqual({ status: 'QUEUED', cancel_requested_at: null });
      await gql(app.graphqlUrl, labA.keys.CURATOR, CANCEL_RUN, { input: { runId: queued } });
    });

    it.each([Role.CURATOR, Role.OWNER])('%s can start and cancel every kind of run', async (role) => {
      const before = await runCount(labA);
      for (const [name, mutation, input] of attempts()) {
        const res = await gql(app.graphqlUrl, labA.keys[role], mutation, { input: input() });
        expect([name, res.errors]).toEqual([name, undefined]);
        const payload = res.data![name];
        expect(payload.userErrors).toEqual([]);
        expect(payload.run).toMatchObject({ status: 'QUEUED' });
        const cancelled = await gql(app.graphqlUrl, labA.keys[role], CANCEL_RUN, { input: { runId: payload.run.id } });
        expect(cancelled.errors).toBeUndefined();
        expect(cancelled.data!.cancelRun).toEqual({ run: { id: payload.run.id, status: 'CANCELLED' }, userErrors: [] });
      }
      expect(await runCount(labA)).toBe(before + 3);
    });
  });
});
