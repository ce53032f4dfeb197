import crypto from 'node:crypto';
import sharp from 'sharp';
import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';
import { gql, gqlUpload, errorCodes, GraphQLResponse } from '../support/graphql-client';
import { Role } from '../../src/modules/projects/role';
import { fromGlobalId, toGlobalId } from '../../src/platform/ids';
import { Image } from '../../src/modules/images/image.entity';
import { Candidate, CandidateForm, CandidateStatus } from '../../src/modules/candidates/candidate.entity';
import { SelectorModel } from '../../src/modules/selectors/selector-model.entity';
import { Score } from '../../src/modules/scoring/score.entity';
import { Dataset } from '../../src/modules/datasets/dataset.entity';
import { DatasetItem } from '../../src/modules/datasets/dataset-item.entity';
import { Run, RunKind, RunStatus } from '../../src/modules/runs/run.entity';

/**
 * Strict tenancy: a key of project B never reads, finds or changes a row of project A, whatever id
 * it is handed. Both projects hold one row of every entity type, so every check below that B sees
 * "only its own rows" would fail if a single row of A leaked.
 */

const ROLES = [Role.OWNER, Role.CURATOR, Role.CLINICIAN, Role.VIEWER] as const;

const NODE_TYPES = ['Project', 'User', 'Membership', 'ApiKey', 'Image', 'Demonstration', 'Candidate', 'Preference', 'SelectorModel', 'Score', 'Dataset', 'DatasetItem', 'Run'] as const;
type NodeType = (typeof NODE_TYPES)[number];

/** Project-scoped tables, and the GraphQL type of their rows. */
const SCOPED_TABLES: Record<string, string> = {
  memberships: 'Membership',
  api_keys: 'ApiKey',
  images: 'Image',
  demonstrations: 'Demonstration',
  candidates: 'Candidate',
  preferences: 'Preference',
  selector_models: 'SelectorModel',
  scores: 'Score',
  datasets: 'Dataset',
  dataset_items: 'DatasetItem',
  runs: 'Run',
};

const CONVERSATION = [
  { from: 'human', value: 'What imaging modality is shown?' },
  { from: 'gpt', value: 'An axial CT scan of the chest.' },
];

/** One figure record in the LLaVA-Med shape. */
function figureRecord(pairId: string, fileName: string, caption: string) {
  return { id: 1, imgs: fileName, pair_id: pairId, pmid: '1', fig_caption: caption, domain: { ct_scan: true }, conversations: CONVERSATION };
}

const NODE_QUERY = 'query($id: ID!) { node(id: $id) { __typename id } }';

/** Every root list with its nested lists, one root per request to stay within the query cost limit. */
const LIST_QUERIES = [
  '{ viewer { project { id members(first: 20) { totalCount edges { node { id user { id } } } } } } }',
  '{ images(first: 20) { totalCount edges { node { id candidateCount candidates(first: 20) { totalCount edges { node { id } } } } } } }',
  '{ demonstrations(first: 20) { totalCount edges { node { id image { id } selectedBy { id } } } } }',
  '{ candidates(first: 20) { totalCount edges { node { id image { id } preferenceCount preferences(first: 20) { edges { node { id } } } } } } }',
  '{ candidates(first: 20) { edges { node { id scores(first: 20) { totalCount edges { node { id selectorModel { id } } } } } } } }',
  '{ candidates(first: 20) { edges { node { id scores(first: 20) { edges { node { candidate { id } } } } } } } }',
  '{ preferences(first: 20) { totalCount edges { node { id candidate { id } annotator { id } } } } }',
  '{ selectorModels(first: 20) { totalCount edges { node { id } } } }',
  '{ datasets(first: 20) { totalCount edges { node { id items(first: 20) { totalCount edges { node { id candidate { id } } } } } } } }',
  '{ runs(first: 20) { totalCount edges { node { id } } } }',
];

/** Runs the list queries with one key and merges what they answered (the two candidate queries field by field). */
async function listAll(url: string, key: string): Promise<Record<string, any>> {
  const merged: Record<string, any> = {};
  for (const query of LIST_QUERIES) {
    const res = await gql(url, key, query);
    expect({ query, errors: res.errors }).toEqual({ query, errors: undefined });
    for (const [field, value] of Object.entries(res.data!)) {
      if (field !== 'candidates' || !merged.candidates) merged[field] = value;
      else {
        merged.candidates.edges.forEach((e: { node: Record<string, unknown> }, i: number) => {
          expect(value.edges[i].node.id).toBe(e.node.id);
          const { scores, ...rest } = value.edges[i].node;
          Object.assign(e.node, rest);
          if (scores && !e.node.scores) e.node.scores = scores;
          else if (scores) (e.node.scores as { edges: { node: object }[] }).edges.forEach((se, j) => Object.assign(se.node, scores.edges[j].node));
        });
      }
    }
  }
  return merged;
}

const sorted = (ids: Iterable<string>) => [...ids].sort();
const nodesOf = (connection: { edges: { node: any }[] }) => connection.edges.map((e) => e.node);

async function solidPng(r: number, g: number, b: number): Promise<Buffer> {
  return sharp({ create: { width: 24, height: 16, channels: 3, background: { r, g, b } } })
    .png()
    .toBuffer();
}

describe('project isolation', () => {
  let app: TestApp;
  let a: TestProject;
  let b: TestProject;
  let pngA: Buffer;
  let pngB: Buffer;
  /** One global id per node type, taken from each project's own API responses. */
  const ids: Record<'a' | 'b', Record<NodeType, string>> = { a: {} as Record<NodeType, string>, b: {} as Record<NodeType, string> };
  /** The first-created image of each project (with bytes). */
  const imageUuid: Record<'a' | 'b', string> = { a: '', b: '' };

  const uuidOf = (globalId: string) => fromGlobalId(globalId)!.id;

  /** Global ids of every scoped row of a project, read straight from the database. */
  async function dbIds(projectId: string): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    for (const [table, type] of Object.entries(SCOPED_TABLES)) {
      const rows: { id: string }[] = await app.ds.query(`SELECT id FROM ${table} WHERE project_id = $1`, [projectId]);
      out[type] = sorted(rows.map((r) => toGlobalId(type, r.id)));
    }
    const users: { id: string }[] = await app.ds.query(`SELECT user_id AS id FROM memberships WHERE project_id = $1`, [projectId]);
    out.User = sorted(users.map((u) => toGlobalId('User', u.id)));
    return out;
  }

  /** Every row of a project (api key last-use times aside, which reads legitimately update), its users and its blobs. */
  async function snapshot(projectId: string): Promise<Record<string, unknown>> {
    const out: Record<string, unknown> = {};
    for (const table of Object.keys(SCOPED_TABLES)) {
      const rows: Record<string, unknown>[] = await app.ds.query(`SELECT * FROM ${table} WHERE project_id = $1 ORDER BY id`, [projectId]);
      out[table] = rows.map(({ last_used_at: _ignored, ...rest }) => rest);
    }
    out.projects = await app.ds.query(`SELECT * FROM projects WHERE id = $1`, [projectId]);
    out.users = await app.ds.query(`SELECT u.* FROM users u JOIN memberships m ON m.user_id = u.id WHERE m.project_id = $1 ORDER BY u.id`, [projectId]);
    out.blobs = await app.ds.query(`SELECT key, content_type, byte_size, md5(data) AS md5 FROM blob_objects WHERE key LIKE $1 ORDER BY key`, [`projects/${projectId}/%`]);
    return out;
  }

  /** Imports a figure with bytes and a demonstration, then adds a run, candidate, selector, score, dataset and item. */
  async function populate(p: TestProject, tag: 'a' | 'b', pairId: string, png: Buffer): Promise<void> {
    const ctx = p.ctx(Role.CURATOR);
    const imported = await app.services.recordsImport.import(ctx, [figureRecord(pairId, `${tag}.png`, `Axial CT of the chest, project ${tag}`)], [{ fileName: `${tag}.png`, bytes: png }], {
      createDemonstrations: true,
    });
    expect(imported).toMatchObject({ recordErrors: [], imagesCreated: 1, imagesWithBytes: 1, demonstrationsCreated: 1, unmatchedFiles: [] });
    const image = await app.ds.getRepository(Image).findOneByOrFail({ projectId: p.id, pairId });
    expect(image.contentHash).not.toBeNull();
    imageUuid[tag] = image.id;

    const run = await app.ds.getRepository(Run).save({
      projectId: p.id,
      kind: RunKind.GENERATION,
      status: RunStatus.SUCCEEDED,
      params: { tag },
      total: 1,
      done: 1,
      createdById: p.userIds[Role.CURATOR],
    });
    const candidate = await app.ds.getRepository(Candidate).save({
      projectId: p.id,
      imageId: image.id,
      runId: run.id,
      sampleIndex: 0,
      status: CandidateStatus.OK,
      form: CandidateForm.TWO_ANSWERS,
      rounds: [{ question: `What is shown (${tag})?`, answers: ['A CT scan.', 'An MRI scan.'] }],
      model: 'gpt-4o',
    });
    const selector = await app.ds.getRepository(SelectorModel).save({
      projectId: p.id,
      name: `selector-${tag}`,
      version: 1,
      filesHash: crypto.createHash('sha256').update(`selector-${tag}`).digest('hex'),
      manifest: { name: `selector-${tag}` },
      metrics: null,
      active: true,
    });
    const value = tag === 'a' ? 0.9 : 0.4;
    await app.ds.getRepository(Score).save({ projectId: p.id, candidateId: candidate.id, selectorModelId: selector.id, value, runId: null });
    const dataset = await app.ds.getRepository(Dataset).save({
      projectId: p.id,
      name: `dataset-${tag}`,
      version: 1,
      selectorModelId: selector.id,
      rule: { minScore: 0 },
      itemCount: 1,
      countsByModality: { CT: 1 },
      contentHash: crypto.createHash('sha256').update(`dataset-${tag}`).digest('hex'),
    });
    await app.ds.getRepository(DatasetItem).save({ projectId: p.id, datasetId: dataset.id, candidateId: candidate.id, rank: 1, score: value });

    // The preference goes through the API, as a clinician would record it.
    const candidateId = toGlobalId('Candidate', candidate.id);
    const pref = await gql(app.graphqlUrl, p.keys.CLINICIAN, `mutation($c: ID!) { recordPreference(input: { candidateId: $c, kind: ACCEPTANCE, roundIndex: 0, answerIndex: 0, accepted: true }) { preference { id } userErrors { code } } }`, {
      c: candidateId,
    });
    expect(pref.errors).toBeUndefined();
    expect(pref.data!.recordPreference.userErrors).toEqual([]);
  }

  /** One id of every node type, from the project's own API (OWNER key, so api keys are visible too). */
  async function collectIds(p: TestProject): Promise<Record<NodeType, string>> {
    const res = await gql(
      app.graphqlUrl,
      p.keys.OWNER,
      `{
        viewer { user { id } project { id members(first: 20) { edges { node { id role } } } apiKeys(first: 20) { edges { node { id name } } } } }
        images(first: 1) { edges { node { id } } }
        demonstrations(first: 1) { edges { node { id } } }
        candidates(first: 1) { edges { node { id scores(first: 1) { edges { node { id } } } } } }
        preferences(first: 1) { edges { node { id } } }
        selectorModels(first: 1) { edges { node { id } } }
        datasets(first: 1) { edges { node { id items(first: 1) { edges { node { id } } } } } }
        runs(first: 1) { edges { node { id } } }
      }`,
    );
    expect(res.errors).toBeUndefined();
    const d = res.data!;
    const project = d.viewer.project;
    const first = (c: { edges: { node: { id: string } }[] }) => {
      expect(c.edges).toHaveLength(1);
      return c.edges[0].node.id;
    };
    const candidate = d.candidates.edges[0].node;
    const dataset = d.datasets.edges[0].node;
    return {
      Project: project.id,
      User: d.viewer.user.id,
      Membership: nodesOf(project.members).find((m: { role: string }) => m.role === 'OWNER').id,
      ApiKey: nodesOf(project.apiKeys).find((k: { name: string }) => k.name === Role.CURATOR).id,
      Image: first(d.images),
      Demonstration: first(d.demonstrations),
      Candidate: first(d.candidates),
      Preference: first(d.preferences),
      SelectorModel: first(d.selectorModels),
      Score: first(candidate.scores),
      Dataset: first(d.datasets),
      DatasetItem: first(dataset.items),
      Run: first(d.runs),
    };
  }

  beforeAll(async () => {
    app = await startTestApp();
    a = await createTestProject(app, 'iso-a');
    b = await createTestProject(app, 'iso-b');
    pngA = await solidPng(200, 40, 40);
    pngB = await solidPng(40, 40, 200);
    await populate(a, 'a', 'p_1', pngA);
    await populate(b, 'b', 'b_1', pngB);
    ids.a = await collectIds(a);
    ids.b = await collectIds(b);
  });
  afterAll(() => app.stop());

  it('starts with one row of every entity type in each project, and the ids taken from the API are that project\'s rows', async () => {
    for (const [p, own] of [
      [a, ids.a],
      [b, ids.b],
    ] as const) {
      const rows = await dbIds(p.id);
      for (const type of NODE_TYPES) {
        const parsed = fromGlobalId(own[type]);
        expect(parsed?.type).toBe(type);
        if (type === 'Project') expect(parsed!.id).toBe(p.id);
        else expect(rows[type]).toContain(own[type]);
      }
      for (const [table, type] of Object.entries(SCOPED_TABLES)) {
        expect({ table, count: rows[type].length }).toEqual({ table, count: table === 'memberships' || table === 'api_keys' ? 4 : 1 });
      }
    }
    expect(ids.a.User).toBe(toGlobalId('User', a.ownerId));
    const bytes: { n: string }[] = await app.ds.query(`SELECT count(*) AS n FROM blob_objects WHERE key LIKE $1`, [`projects/${a.id}/images/%`]);
    expect(Number(bytes[0].n)).toBe(1);
  });

  describe('root lists', () => {
    /** Runs LIST_QUERY with a key and checks every list and nested list against the database. */
    async function expectOnlyOwnRows(key: string, own: TestProject, other: TestProject) {
      const d = await listAll(app.graphqlUrl, key);
      const mine = await dbIds(own.id);
      const theirs = await dbIds(other.id);
      expect(d.viewer.project.id).toBe(toGlobalId('Project', own.id));

      const roots: [string, { totalCount: number; edges: { node: { id: string } }[] }][] = [
        ['Membership', d.viewer.project.members],
        ['Image', d.images],
        ['Demonstration', d.demonstrations],
        ['Candidate', d.candidates],
        ['Preference', d.preferences],
        ['SelectorModel', d.selectorModels],
        ['Dataset', d.datasets],
        ['Run', d.runs],
      ];
      for (const [type, connection] of roots) {
        const listed = sorted(nodesOf(connection).map((n) => n.id));
        expect({ type, listed, totalCount: connection.totalCount }).toEqual({ type, listed: mine[type], totalCount: mine[type].length });
        expect(listed.filter((id) => theirs[type].includes(id))).toEqual([]);
      }

      // Nested lists and references resolve to the key's own project only.
      const nested: [string, string[]][] = [
        ['User', nodesOf(d.viewer.project.members).map((m) => m.user.id)],
        ['Candidate', nodesOf(d.images).flatMap((i) => nodesOf(i.candidates).map((c) => c.id))],
        ['Image', nodesOf(d.demonstrations).map((x) => x.image.id)],
        ['User', nodesOf(d.demonstrations).map((x) => x.selectedBy.id)],
        ['Image', nodesOf(d.candidates).map((c) => c.image.id)],
        ['Preference', nodesOf(d.candidates).flatMap((c) => nodesOf(c.preferences).map((p) => p.id))],
        ['Score', nodesOf(d.candidates).flatMap((c) => nodesOf(c.scores).map((s) => s.id))],
        ['SelectorModel', nodesOf(d.candidates).flatMap((c) => nodesOf(c.scores).map((s) => s.selectorModel.id))],
        ['Candidate', nodesOf(d.candidates).flatMap((c) => nodesOf(c.scores).map((s) => s.candidate.id))],
        ['Candidate', nodesOf(d.preferences).map((p) => p.candidate.id)],
        ['User', nodesOf(d.preferences).map((p) => p.annotator.id)],
        ['DatasetItem', nodesOf(d.datasets).flatMap((x) => nodesOf(x.items).map((i) => i.id))],
        ['Candidate', nodesOf(d.datasets).flatMap((x) => nodesOf(x.items).map((i) => i.candidate.id))],
      ];
      for (const [type, found] of nested) {
        expect(found.length).toBeGreaterThan(0);
        expect({ type, foreign: found.filter((id) => !mine[type].includes(id)) }).toEqual({ type, foreign: [] });
        expect(found.filter((id) => theirs[type].includes(id))).toEqual([]);
      }
      expect(nodesOf(d.images).map((i) => i.candidateCount)).toEqual([1]);
      expect(nodesOf(d.candidates).map((c) => c.preferenceCount)).toEqual([1]);
    }

    it.each(ROLES)("B's %s key lists only B's rows, in every root and nested list", async (role) => {
      await expectOnlyOwnRows(b.keys[role], b, a);
    });

    it.each(ROLES)("control: A's %s key lists exactly A's rows", async (role) => {
      await expectOnlyOwnRows(a.keys[role], a, b);
    });

    it("lists only B's api keys to B's owner, and A's to A's owner", async () => {
      const query = '{ viewer { project { apiKeys(first: 20) { totalCount edges { node { id user { id } } } } } } }';
      for (const [p, other] of [
        [b, a],
        [a, b],
      ] as const) {
        const res = await gql(app.graphqlUrl, p.keys.OWNER, query);
        expect(res.errors).toBeUndefined();
        const keys = res.data!.viewer.project.apiKeys;
        const mine = await dbIds(p.id);
        const theirs = await dbIds(other.id);
        expect(keys.totalCount).toBe(4);
        expect(sorted(nodesOf(keys).map((k) => k.id))).toEqual(mine.ApiKey);
        expect(nodesOf(keys).filter((k) => theirs.ApiKey.includes(k.id))).toEqual([]);
        expect(nodesOf(keys).every((k) => mine.User.includes(k.user.id))).toBe(true);
      }
    });

    const CANDIDATE_IDS = `query($filter: CandidateFilter, $orderBy: CandidateOrder) {
      candidates(first: 20, filter: $filter, orderBy: $orderBy) { totalCount edges { node { id } } }
    }`;
    const PREFERENCE_IDS = `query($filter: PreferenceFilter) { preferences(first: 20, filter: $filter) { totalCount edges { node { id } } } }`;

    type Filtered = { name: string; query: string; field: string; vars: (own: Record<NodeType, string>) => Record<string, unknown>; expected: NodeType };
    const FILTERS: Filtered[] = [
      { name: 'candidates(filter: { imageId })', query: CANDIDATE_IDS, field: 'candidates', vars: (x) => ({ filter: { imageId: x.Image } }), expected: 'Candidate' },
      { name: 'candidates(filter: { runId })', query: CANDIDATE_IDS, field: 'candidates', vars: (x) => ({ filter: { runId: x.Run } }), expected: 'Candidate' },
      {
        name: 'candidates(filter: { score: { selectorModelId } })',
        query: CANDIDATE_IDS,
        field: 'candidates',
        vars: (x) => ({ filter: { score: { selectorModelId: x.SelectorModel, min: 0 } } }),
        expected: 'Candidate',
      },
      {
        name: 'candidates(orderBy: { field: SCORE, selectorModelId })',
        query: CANDIDATE_IDS,
        field: 'candidates',
        vars: (x) => ({ orderBy: { field: 'SCORE', direction: 'DESC', selectorModelId: x.SelectorModel } }),
        expected: 'Candidate',
      },
      { name: 'preferences(filter: { candidateId })', query: PREFERENCE_IDS, field: 'preferences', vars: (x) => ({ filter: { candidateId: x.Candidate } }), expected: 'Preference' },
    ];

    it.each(FILTERS.map((f) => [f.name, f] as const))("%s with an id of A finds nothing for any key of B, and A's row for A", async (_name, f) => {
      for (const role of ROLES) {
        const foreign = await gql(app.graphqlUrl, b.keys[role], f.query, f.vars(ids.a));
        expect(foreign.errors).toBeUndefined();
        expect(foreign.data![f.field]).toEqual({ totalCount: 0, edges: [] });
      }
      // Controls: the same filter with the key's own ids finds the row, so the filter itself works.
      const ownA = await gql(app.graphqlUrl, a.keys.VIEWER, f.query, f.vars(ids.a));
      expect(ownA.data![f.field]).toEqual({ totalCount: 1, edges: [{ node: { id: ids.a[f.expected] } }] });
      const ownB = await gql(app.graphqlUrl, b.keys.VIEWER, f.query, f.vars(ids.b));
      expect(ownB.data![f.field]).toEqual({ totalCount: 1, edges: [{ node: { id: ids.b[f.expected] } }] });
    });

    it("preferences(filter: { annotatorId }) with A's clinician finds nothing in B", async () => {
      const annotatorA = toGlobalId('User', a.userIds.CLINICIAN);
      const foreign = await gql(app.graphqlUrl, b.keys.OWNER, PREFERENCE_IDS, { filter: { annotatorId: annotatorA } });
      expect(foreign.data!.preferences).toEqual({ totalCount: 0, edges: [] });
      const own = await gql(app.graphqlUrl, a.keys.OWNER, PREFERENCE_IDS, { filter: { annotatorId: annotatorA } });
      expect(own.data!.preferences).toEqual({ totalCount: 1, edges: [{ node: { id: ids.a.Preference } }] });
    });

    it("Candidate.score(selectorModelId:) of A's selector is null on B's candidate", async () => {
      const query = 'query($sel: ID!) { candidates(first: 10) { edges { node { id score(selectorModelId: $sel) } } } }';
      const foreign = await gql(app.graphqlUrl, b.keys.OWNER, query, { sel: ids.a.SelectorModel });
      expect(foreign.errors).toBeUndefined();
      expect(foreign.data!.candidates.edges).toEqual([{ node: { id: ids.b.Candidate, score: null } }]);
      const own = await gql(app.graphqlUrl, b.keys.OWNER, query, { sel: ids.b.SelectorModel });
      expect(own.data!.candidates.edges).toEqual([{ node: { id: ids.b.Candidate, score: 0.4 } }]);
    });
  });

  describe('node(id:)', () => {
    it.each(NODE_TYPES)("answers null with NOT_FOUND for A's %s to every key of B", async (type) => {
      for (const role of ROLES) {
        const res = await gql(app.graphqlUrl, b.keys[role], NODE_QUERY, { id: ids.a[type] });
        expect({ role, data: res.data ?? null, codes: errorCodes(res) }).toEqual({ role, data: { node: null }, codes: ['NOT_FOUND'] });
      }
    });

    it.each(NODE_TYPES)("answers for A's %s exactly as for an id that does not exist", async (type) => {
      const foreign = await gql(app.graphqlUrl, b.keys.OWNER, NODE_QUERY, { id: ids.a[type] });
      const missing = await gql(app.graphqlUrl, b.keys.OWNER, NODE_QUERY, { id: toGlobalId(type, crypto.randomUUID()) });
      const shape = (r: GraphQLResponse) => ({ status: r.status, data: r.data, errors: r.errors?.map((e) => ({ message: e.message, code: e.extensions?.code })) });
      expect(shape(foreign)).toEqual(shape(missing));
      expect(errorCodes(missing)).toEqual(['NOT_FOUND']);
    });

    it.each(NODE_TYPES)("control: A's owner finds A's %s, and B's owner finds B's", async (type) => {
      for (const [p, own] of [
        [a, ids.a],
        [b, ids.b],
      ] as const) {
        const res = await gql(app.graphqlUrl, p.keys.OWNER, NODE_QUERY, { id: own[type] });
        expect(res.errors).toBeUndefined();
        expect(res.data!.node).toEqual({ __typename: type, id: own[type] });
      }
    });

    it.each(ROLES.filter((r) => r !== Role.OWNER))("control: A's %s key finds every type of A except ApiKey (OWNER only)", async (role) => {
      for (const type of NODE_TYPES) {
        const res = await gql(app.graphqlUrl, a.keys[role], NODE_QUERY, { id: ids.a[type] });
        if (type === 'ApiKey') expect(errorCodes(res)).toEqual(['NOT_FOUND']);
        else expect({ type, node: res.data?.node }).toEqual({ type, node: { __typename: type, id: ids.a[type] } });
      }
    });
  });

  describe('mutations with B\'s keys aimed at A', () => {
    let before: Record<string, unknown>;
    beforeAll(async () => {
      before = await snapshot(a.id);
    });

    it("revokeApiKey of A's key answers NOT_FOUND and leaves it working", async () => {
      const res = await gql(app.graphqlUrl, b.keys.OWNER, 'mutation($id: ID!) { revokeApiKey(input: { id: $id }) { apiKey { id revokedAt } userErrors { code field } } }', { id: ids.a.ApiKey });
      expect(res.errors).toBeUndefined();
      expect(res.data!.revokeApiKey).toEqual({ apiKey: null, userErrors: [{ code: 'NOT_FOUND', field: ['id'] }] });
      const rows: { revoked_at: Date | null }[] = await app.ds.query(`SELECT revoked_at FROM api_keys WHERE project_id = $1`, [a.id]);
      expect(rows).toHaveLength(4);
      expect(rows.every((r) => r.revoked_at === null)).toBe(true);
      const still = await gql(app.graphqlUrl, a.keys.CURATOR, '{ viewer { role project { slug } } }');
      expect(still.data!.viewer).toEqual({ role: 'CURATOR', project: { slug: 'iso-a' } });
    });

    it("createApiKey for A's membership answers NOT_FOUND and creates no key; for B's own member it works inside B", async () => {
      const count = async () => Number((await app.ds.query(`SELECT count(*) AS n FROM api_keys`))[0].n);
      const total = await count();
      const mutation = 'mutation($m: ID) { createApiKey(input: { name: "cross", memberId: $m }) { secret apiKey { id } userErrors { code field } } }';
      const res = await gql(app.graphqlUrl, b.keys.OWNER, mutation, { m: ids.a.Membership });
      expect(res.errors).toBeUndefined();
      expect(res.data!.createApiKey).toEqual({ secret: null, apiKey: null, userErrors: [{ code: 'NOT_FOUND', field: ['memberId'] }] });
      expect(await count()).toBe(total);

      // Control: a key for B's own clinician acts as that clinician in B, and B can revoke it.
      const members = await gql(app.graphqlUrl, b.keys.OWNER, '{ viewer { project { members(first: 20) { edges { node { id role } } } } } }');
      const clinicianB = nodesOf(members.data!.viewer.project.members).find((m) => m.role === 'CLINICIAN').id;
      const own = await gql(app.graphqlUrl, b.keys.OWNER, mutation, { m: clinicianB });
      expect(own.data!.createApiKey.userErrors).toEqual([]);
      expect(await count()).toBe(total + 1);
      const who = await gql(app.graphqlUrl, own.data!.createApiKey.secret, '{ viewer { role project { slug } } }');
      expect(who.data!.viewer).toEqual({ role: 'CLINICIAN', project: { slug: 'iso-b' } });
      const revoked = await gql(app.graphqlUrl, b.keys.OWNER, 'mutation($id: ID!) { revokeApiKey(input: { id: $id }) { apiKey { revokedAt } userErrors { code } } }', {
        id: own.data!.createApiKey.apiKey.id,
      });
      expect(revoked.data!.revokeApiKey.userErrors).toEqual([]);
      expect(revoked.data!.revokeApiKey.apiKey.revokedAt).not.toBeNull();
    });

    it("addMember with the email of A's member adds them to B only, leaving A's membership and the user as they were", async () => {
      const res = await gql(
        app.graphqlUrl,
        b.keys.OWNER,
        'mutation { addMember(input: { email: "clinician@iso-a.test", displayName: "Renamed by B", role: OWNER }) { membership { id role user { id email displayName } } userErrors { code } } }',
      );
      expect(res.errors).toBeUndefined();
      const { membership, userErrors } = res.data!.addMember;
      expect(userErrors).toEqual([]);
      expect(membership.role).toBe('OWNER');
      // B knows the member by the name B gave (issue 9: the answer does not reveal A's name for them).
      expect(membership.user).toEqual({ id: toGlobalId('User', a.userIds.CLINICIAN), email: 'clinician@iso-a.test', displayName: 'Renamed by B' });
      const row: { project_id: string }[] = await app.ds.query(`SELECT project_id FROM memberships WHERE id = $1`, [uuidOf(membership.id)]);
      expect(row).toEqual([{ project_id: b.id }]);

      const inA: { role: string }[] = await app.ds.query(`SELECT role FROM memberships WHERE project_id = $1 AND user_id = $2`, [a.id, a.userIds.CLINICIAN]);
      expect(inA).toEqual([{ role: 'CLINICIAN' }]);
      const viewerA = await gql(app.graphqlUrl, a.keys.CLINICIAN, '{ viewer { role project { slug } user { displayName } } }');
      expect(viewerA.data!.viewer).toEqual({ role: 'CLINICIAN', project: { slug: 'iso-a' }, user: { displayName: 'CLINICIAN' } });
      const membersA = await gql(app.graphqlUrl, a.keys.OWNER, '{ viewer { project { members(first: 20) { totalCount edges { node { id } } } } } }');
      expect(membersA.data!.viewer.project.members.totalCount).toBe(4);
      expect(nodesOf(membersA.data!.viewer.project.members).map((m) => m.id)).not.toContain(membership.id);
    });

    it.each([Role.OWNER, Role.CURATOR, Role.CLINICIAN])("setDemonstrationActive on A's demonstration answers NOT_FOUND to B's %s and leaves it active", async (role) => {
      const res = await gql(
        app.graphqlUrl,
        b.keys[role],
        'mutation($id: ID!) { setDemonstrationActive(input: { id: $id, active: false }) { demonstration { id active } userErrors { code field } } }',
        { id: ids.a.Demonstration },
      );
      expect(res.errors).toBeUndefined();
      expect(res.data!.setDemonstrationActive).toEqual({ demonstration: null, userErrors: [{ code: 'NOT_FOUND', field: ['id'] }] });
      const rows: { active: boolean; selected_by_id: string }[] = await app.ds.query(`SELECT active, selected_by_id FROM demonstrations WHERE id = $1`, [uuidOf(ids.a.Demonstration)]);
      expect(rows).toEqual([{ active: true, selected_by_id: a.userIds.CURATOR }]);
    });

    it("control: B's clinician can retire and reselect B's own demonstration", async () => {
      const mutation = 'mutation($id: ID!, $on: Boolean!) { setDemonstrationActive(input: { id: $id, active: $on }) { demonstration { id active } userErrors { code } } }';
      const off = await gql(app.graphqlUrl, b.keys.CLINICIAN, mutation, { id: ids.b.Demonstration, on: false });
      expect(off.data!.setDemonstrationActive).toEqual({ demonstration: { id: ids.b.Demonstration, active: false }, userErrors: [] });
      const rows: { active: boolean }[] = await app.ds.query(`SELECT active FROM demonstrations WHERE id = $1`, [uuidOf(ids.b.Demonstration)]);
      expect(rows).toEqual([{ active: false }]);
      const on = await gql(app.graphqlUrl, b.keys.CLINICIAN, mutation, { id: ids.b.Demonstration, on: true });
      expect(on.data!.setDemonstrationActive.demonstration.active).toBe(true);
    });

    it.each([Role.OWNER, Role.CURATOR, Role.CLINICIAN])("recordPreference on A's candidate answers NOT_FOUND to B's %s and adds nothing", async (role) => {
      const count = async () => Number((await app.ds.query(`SELECT count(*) AS n FROM preferences`))[0].n);
      const total = await count();
      const mutation = 'mutation($input: RecordPreferenceInput!) { recordPreference(input: $input) { preference { id } userErrors { code field } } }';
      const attempts: [Record<string, unknown>, string][] = [
        [{ candidateId: ids.a.Candidate, kind: 'ACCEPTANCE', roundIndex: 0, answerIndex: 0, accepted: false }, 'candidateId'],
        [{ candidateId: ids.a.Candidate, kind: 'RATING', rating: 1, rubricVersion: 'v1' }, 'candidateId'],
        [{ candidateId: ids.a.Candidate, kind: 'PAIRWISE', roundIndex: 0, choice: 'B' }, 'candidateId'],
        [{ candidateId: ids.b.Candidate, otherCandidateId: ids.a.Candidate, kind: 'PAIRWISE', choice: 'A' }, 'otherCandidateId'],
      ];
      for (const [input, field] of attempts) {
        const res = await gql(app.graphqlUrl, b.keys[role], mutation, { input });
        expect(res.errors).toBeUndefined();
        expect(res.data!.recordPreference).toEqual({ preference: null, userErrors: [{ code: 'NOT_FOUND', field: [field] }] });
      }
      expect(await count()).toBe(total);
      const onA: { n: string }[] = await app.ds.query(`SELECT count(*) AS n FROM preferences WHERE candidate_id = $1 OR other_candidate_id = $1`, [uuidOf(ids.a.Candidate)]);
      expect(Number(onA[0].n)).toBe(1);
    });

    it("control: B's clinician records a preference on B's own candidate, in B", async () => {
      const res = await gql(
        app.graphqlUrl,
        b.keys.CLINICIAN,
        'mutation($c: ID!) { recordPreference(input: { candidateId: $c, kind: RATING, rating: 7, rubricVersion: "v1" }) { preference { id candidate { id } } userErrors { code } } }',
        { c: ids.b.Candidate },
      );
      expect(res.data!.recordPreference.userErrors).toEqual([]);
      expect(res.data!.recordPreference.preference.candidate.id).toBe(ids.b.Candidate);
      const row: { project_id: string }[] = await app.ds.query(`SELECT project_id FROM preferences WHERE id = $1`, [uuidOf(res.data!.recordPreference.preference.id)]);
      expect(row).toEqual([{ project_id: b.id }]);
    });

    const UPLOAD = 'mutation($input: UploadImageInput!) { uploadImage(input: $input) { image { id pairId contentHash caption } userErrors { code field message } } }';
    let uploadedB = '';

    it("uploadImage of A's bytes and pair id makes a new image in B, not a duplicate of A's", async () => {
      const res = await gqlUpload(app.graphqlUrl, b.keys.OWNER, UPLOAD, { input: { file: null, metadata: { pairId: 'p_1', caption: 'Uploaded in B' } } }, [
        { path: 'input.file', name: 'a.png', bytes: pngA, type: 'image/png' },
      ]);
      expect(res.errors).toBeUndefined();
      const { image, userErrors } = res.data!.uploadImage;
      expect(userErrors).toEqual([]);
      uploadedB = image.id;
      expect(image.id).not.toBe(ids.a.Image);
      expect(image).toMatchObject({ pairId: 'p_1', caption: 'Uploaded in B', contentHash: crypto.createHash('sha256').update(pngA).digest('hex') });
      const row: { project_id: string }[] = await app.ds.query(`SELECT project_id FROM images WHERE id = $1`, [uuidOf(image.id)]);
      expect(row).toEqual([{ project_id: b.id }]);
    });

    it("importRecords of A's record (same pair id, bytes and conversation) writes only inside B", async () => {
      expect(uploadedB).not.toBe('');
      const res = await gqlUpload(
        app.graphqlUrl,
        b.keys.CURATOR,
        'mutation($input: ImportRecordsInput!) { importRecords(input: $input) { summary { imagesCreated imagesUpdated imagesWithBytes demonstrationsCreated unmatchedFiles } recordErrors { message } userErrors { code } } }',
        { input: { records: [figureRecord('p_1', 'a.png', 'Re-imported by B')], images: [null] } },
        [{ path: 'input.images.0', name: 'a.png', bytes: pngA, type: 'image/png' }],
      );
      expect(res.errors).toBeUndefined();
      // The pair id already exists in B (the upload above), so B's image is updated; A's is not touched.
      expect(res.data!.importRecords).toEqual({
        summary: { imagesCreated: 0, imagesUpdated: 1, imagesWithBytes: 1, demonstrationsCreated: 1, unmatchedFiles: [] },
        recordErrors: [],
        userErrors: [],
      });
      const rows: { project_id: string; caption: string }[] = await app.ds.query(`SELECT project_id, caption FROM images WHERE pair_id = 'p_1' ORDER BY project_id = $1`, [a.id]);
      expect(rows).toEqual([
        { project_id: b.id, caption: 'Re-imported by B' },
        { project_id: a.id, caption: 'Axial CT of the chest, project a' },
      ]);
      const demos: { project_id: string }[] = await app.ds.query(`SELECT project_id FROM demonstrations WHERE image_id = $1`, [uuidOf(uploadedB)]);
      expect(demos).toEqual([{ project_id: b.id }]);
    });

    it("uploadImage of the same bytes again is a DUPLICATE of B's image, naming B's id and never A's", async () => {
      const res = await gqlUpload(app.graphqlUrl, b.keys.CURATOR, UPLOAD, { input: { file: null } }, [{ path: 'input.file', name: 'again.png', bytes: pngA, type: 'image/png' }]);
      expect(res.errors).toBeUndefined();
      const { image, userErrors } = res.data!.uploadImage;
      expect(image).toBeNull();
      expect(userErrors).toHaveLength(1);
      expect(userErrors[0]).toMatchObject({ code: 'DUPLICATE', field: ['input', 'file'] });
      expect(userErrors[0].message).toContain(uploadedB);
      expect(userErrors[0].message).not.toContain(ids.a.Image);
    });

    it("leaves every row of A exactly as it was", async () => {
      const after = await snapshot(a.id);
      expect(after).toEqual(before);
      // And the snapshot is not vacuous.
      expect((before.images as unknown[]).length).toBe(1);
      expect((before.demonstrations as unknown[]).length).toBe(1);
      expect((before.preferences as unknown[]).length).toBe(1);
      expect((before.api_keys as unknown[]).length).toBe(4);
      expect((before.blobs as unknown[]).length).toBe(1);
    });
  });

  describe('image files', () => {
    const fileUrl = (uuid: string, variant: string) => `${app.url}/files/images/${uuid}/${variant}`;
    const get = (url: string, key?: string) => fetch(url, key ? { headers: { authorization: `Bearer ${key}` } } : {});
    const urlsOf = async (p: TestProject, imageId: string) => {
      const res = await gql(app.graphqlUrl, p.keys.VIEWER, 'query($id: ID!) { node(id: $id) { ... on Image { url thumbnailUrl } } }', { id: imageId });
      expect(res.errors).toBeUndefined();
      return res.data!.node as { url: string; thumbnailUrl: string };
    };

    it.each(['original', 'thumbnail'])("answers 404 for A's %s to every key of B", async (variant) => {
      for (const role of ROLES) {
        const res = await get(fileUrl(imageUuid.a, variant), b.keys[role]);
        expect({ role, status: res.status, body: await res.json() }).toEqual({ role, status: 404, body: { error: 'NOT_FOUND' } });
      }
    });

    it("answers A's own key with the bytes: the original as stored, a WebP thumbnail", async () => {
      const original = await get(fileUrl(imageUuid.a, 'original'), a.keys.VIEWER);
      expect(original.status).toBe(200);
      expect(original.headers.get('content-type')).toBe('image/png');
      expect(Buffer.from(await original.arrayBuffer()).equals(pngA)).toBe(true);
      const thumbnail = await get(fileUrl(imageUuid.a, 'thumbnail'), a.keys.VIEWER);
      expect(thumbnail.status).toBe(200);
      expect(thumbnail.headers.get('content-type')).toBe('image/webp');
      expect((await sharp(Buffer.from(await thumbnail.arrayBuffer())).metadata()).format).toBe('webp');
      // Control for the 404s above: B's key does get B's own file.
      const own = await get(fileUrl(imageUuid.b, 'original'), b.keys.VIEWER);
      expect(own.status).toBe(200);
      expect(Buffer.from(await own.arrayBuffer()).equals(pngB)).toBe(true);
    });

    it('answers 401 without a key or a signature', async () => {
      const res = await get(fileUrl(imageUuid.a, 'original'));
      expect(res.status).toBe(401);
    });

    it("serves A's signed URLs without any header", async () => {
      const { url, thumbnailUrl } = await urlsOf(a, ids.a.Image);
      expect(url).toContain(`/files/images/${imageUuid.a}/original?`);
      const original = await get(url);
      expect(original.status).toBe(200);
      expect(Buffer.from(await original.arrayBuffer()).equals(pngA)).toBe(true);
      const thumbnail = await get(thumbnailUrl);
      expect(thumbnail.status).toBe(200);
      expect(thumbnail.headers.get('content-type')).toBe('image/webp');
    });

    it('refuses a signed URL whose signature, expiry, image or variant was changed', async () => {
      const { url } = await urlsOf(a, ids.a.Image);
      const signed = new URL(url);
      const signature = signed.searchParams.get('signature')!;
      const expires = signed.searchParams.get('expires')!;
      const query = signed.search;

      const flipped = signature[0] === 'A' ? `B${signature.slice(1)}` : `A${signature.slice(1)}`;
      const badSignature = new URL(url);
      badSignature.searchParams.set('signature', flipped);
      const laterExpiry = new URL(url);
      laterExpiry.searchParams.set('expires', String(Number(expires) + 3600));

      const refused: [string, string][] = [
        ['altered signature', badSignature.toString()],
        ['extended expiry', laterExpiry.toString()],
        ["A's signature on B's image", `${fileUrl(imageUuid.b, 'original')}${query}`],
        ["A's signature on an unknown image", `${fileUrl(crypto.randomUUID(), 'original')}${query}`],
        ["A's original signature on the thumbnail", `${fileUrl(imageUuid.a, 'thumbnail')}${query}`],
      ];
      for (const [label, target] of refused) {
        const res = await get(target);
        expect({ label, status: res.status }).toEqual({ label, status: 403 });
        expect((await res.arrayBuffer()).byteLength).toBeLessThan(200);
      }

      // B's own valid signature does not open A's image either.
      const bSigned = new URL((await urlsOf(b, ids.b.Image)).url);
      const swapped = await get(`${fileUrl(imageUuid.a, 'original')}${bSigned.search}`);
      expect(swapped.status).toBe(403);
      // Control: B's signed URL does serve B's image.
      const bOwn = await get(bSigned.toString());
      expect(bOwn.status).toBe(200);
      expect(Buffer.from(await bOwn.arrayBuffer()).equals(pngB)).toBe(true);
    });
  });

  /**
   * The API never lets a row point into another project, but a buggy worker or a hand-made fix could.
   * Nested fields and per-parent pages must still resolve within the caller's project only.
   */
  describe('rows that point across projects (defense in depth)', () => {
    const inserted: [string, string][] = [];
    const insert = async (table: string, row: Record<string, unknown>) => {
      const columns = Object.keys(row);
      const rows: { id: string }[] = await app.ds.query(
        `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((_c, i) => `$${i + 1}`).join(', ')}) RETURNING id`,
        Object.values(row),
      );
      inserted.push([table, rows[0].id]);
      return rows[0].id;
    };
    const noIdOfA = (res: GraphQLResponse) => {
      const text = JSON.stringify(res);
      const leaked = [...NODE_TYPES.map((t) => ids.a[t]), ...NODE_TYPES.filter((t) => t !== 'Project').map((t) => uuidOf(ids.a[t])), a.id].filter((x) => text.includes(x));
      expect(leaked).toEqual([]);
    };

    beforeAll(async () => {
      // In B: a preference whose annotator and other candidate are A's.
      await insert('preferences', {
        project_id: b.id,
        candidate_id: uuidOf(ids.b.Candidate),
        source: 'CLINICIAN',
        kind: 'PAIRWISE',
        // Not A's clinician: the addMember test above made that user a member of B as well.
        annotator_id: a.userIds.CURATOR,
        other_candidate_id: uuidOf(ids.a.Candidate),
        choice: 'A',
      });
      // In A: a candidate of B's image, and a preference and a score of B's candidate.
      await insert('candidates', { project_id: a.id, image_id: imageUuid.b, status: 'OK', rounds: JSON.stringify([{ question: 'q', answers: ['x'] }]) });
      await insert('preferences', { project_id: a.id, candidate_id: uuidOf(ids.b.Candidate), source: 'MODEL', kind: 'RATING', judge_model: 'judge-a', rating: 9, rubric_version: 'v1' });
      await insert('scores', { project_id: a.id, candidate_id: uuidOf(ids.b.Candidate), selector_model_id: uuidOf(ids.a.SelectorModel), value: 0.99 });
    });
    afterAll(async () => {
      for (const [table, id] of inserted.reverse()) await app.ds.query(`DELETE FROM ${table} WHERE id = $1`, [id]);
    });

    it("B's preference resolves A's annotator and other candidate to null", async () => {
      const prefId = toGlobalId('Preference', inserted[0][1]);
      const res = await gql(app.graphqlUrl, b.keys.VIEWER, 'query($id: ID!) { node(id: $id) { ... on Preference { id annotator { id } otherCandidate { id } candidate { id } } } }', { id: prefId });
      expect(res.errors).toBeUndefined();
      expect(res.data!.node).toEqual({ id: prefId, annotator: null, otherCandidate: null, candidate: { id: ids.b.Candidate } });
      noIdOfA(res);
      // Control: the same fields resolve A's rows for A's own preference.
      const own = await gql(app.graphqlUrl, a.keys.VIEWER, 'query($id: ID!) { node(id: $id) { ... on Preference { annotator { id } candidate { id } } } }', { id: ids.a.Preference });
      expect(own.data!.node).toEqual({ annotator: { id: toGlobalId('User', a.userIds.CLINICIAN) }, candidate: { id: ids.a.Candidate } });
    });

    it("B's image and candidate count and page only B's children, not A's rows that point at them", async () => {
      const res = await gql(
        app.graphqlUrl,
        b.keys.VIEWER,
        `query($img: ID!, $cand: ID!, $selA: ID!) {
          image: node(id: $img) { ... on Image { candidateCount candidates(first: 20) { totalCount edges { node { id } } } } }
          candidate: node(id: $cand) {
            ... on Candidate {
              preferenceCount
              preferences(first: 20) { totalCount edges { node { id } } }
              scores(first: 20) { totalCount edges { node { id } } }
              score(selectorModelId: $selA)
            }
          }
        }`,
        { img: ids.b.Image, cand: ids.b.Candidate, selA: ids.a.SelectorModel },
      );
      expect(res.errors).toBeUndefined();
      const own = async (type: string, sql: string) => sorted((await app.ds.query(sql, [b.id, uuidOf(ids.b.Candidate)])).map((r: { id: string }) => toGlobalId(type, r.id)));
      const prefs = await own('Preference', `SELECT id FROM preferences WHERE project_id = $1 AND candidate_id = $2`);
      const scores = await own('Score', `SELECT id FROM scores WHERE project_id = $1 AND candidate_id = $2`);
      expect(res.data!.image).toEqual({ candidateCount: 1, candidates: { totalCount: 1, edges: [{ node: { id: ids.b.Candidate } }] } });
      const { candidate } = res.data!;
      expect(candidate.score).toBeNull();
      expect(candidate.preferenceCount).toBe(prefs.length);
      expect({ totalCount: candidate.preferences.totalCount, ids: sorted(nodesOf(candidate.preferences).map((p) => p.id)) }).toEqual({ totalCount: prefs.length, ids: prefs });
      expect({ totalCount: candidate.scores.totalCount, ids: sorted(nodesOf(candidate.scores).map((s) => s.id)) }).toEqual({ totalCount: 1, ids: scores });
      noIdOfA(res);
      // The rows of A really are there, pointing at B's image and candidate.
      const planted: { n: string }[] = await app.ds.query(
        `SELECT (SELECT count(*) FROM candidates WHERE project_id = $1 AND image_id = $2) + (SELECT count(*) FROM preferences WHERE project_id = $1 AND candidate_id = $3) + (SELECT count(*) FROM scores WHERE project_id = $1 AND candidate_id = $3) AS n`,
        [a.id, imageUuid.b, uuidOf(ids.b.Candidate)],
      );
      expect(Number(planted[0].n)).toBe(3);
    });
  });
});
