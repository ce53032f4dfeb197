/**
 * What the Python client's authors found missing in the API (issue 13): a `run(id:)` query, a
 * selector lookup by name and version, and enum values documented in the schema itself. Each is
 * checked over real HTTP, with every role and with another project's key.
 */
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { errorCodes, gql } from '../support/graphql-client';
import { seedPipeline } from '../support/pipeline-fixture';
import { referenceSelectorUpload, registerSelector, seedCandidates, START_SCORING } from '../support/scoring-fixture';
import { toGlobalId } from '../../src/platform/ids';

jest.setTimeout(60_000);

const RUN = `query($id: ID!) { run(id: $id) { id kind status total } }`;
const SELECTOR = `query($name: String!, $version: Int) { selectorModel(name: $name, version: $version) { id name version filesHash } }`;
const ROLES = ['VIEWER', 'CLINICIAN', 'CURATOR', 'OWNER'] as const;

describe('API friction found by the Python client', () => {
  let app: TestApp;
  let lab: TestProject;
  let other: TestProject;
  let runId: string;
  const selectors: Record<number, { id: string; filesHash: string }> = {};

  beforeAll(async () => {
    // No worker: the scoring run stays QUEUED, which is all run(id:) needs.
    app = await startTestApp();
    lab = await createTestProject(app, 'friction');
    other = await createTestProject(app, 'friction-other');
    for (const [version, seed] of [[1, undefined], [2, 8]] as const) {
      const res = await registerSelector(app, lab.keys.CURATOR, 'reference', referenceSelectorUpload(seed ? { seed } : {}), { activate: version === 1 });
      const model = res.data!.registerSelectorModel.selectorModel;
      expect(model.version).toBe(version);
      selectors[version] = model;
    }
    const { imageIds } = await seedPipeline(app, lab, { demonstrations: false });
    await seedCandidates(app, lab, imageIds.slice(0, 2), 2);
    const started = await gql(app.graphqlUrl, lab.keys.CURATOR, START_SCORING, { input: {} });
    runId = started.data!.startScoringRun.run.id;
  });

  afterAll(async () => {
    await app?.stop();
  });

  describe('run(id:)', () => {
    it.each(ROLES)('answers the run to a %s of its project', async (role) => {
      const res = await gql(app.graphqlUrl, lab.keys[role], RUN, { id: runId });
      expect(res.errors).toBeUndefined();
      expect(res.data!.run).toEqual({ id: runId, kind: 'SCORING', status: 'QUEUED', total: 4 });
    });

    it('answers null and NOT_FOUND to another project, as node(id:) does', async () => {
      const res = await gql(app.graphqlUrl, other.keys.OWNER, RUN, { id: runId });
      expect(res.data).toEqual({ run: null });
      expect(errorCodes(res)).toEqual(['NOT_FOUND']);
      const node = await gql(app.graphqlUrl, other.keys.OWNER, `query($id: ID!) { node(id: $id) { id } }`, { id: runId });
      expect(errorCodes(node)).toEqual(['NOT_FOUND']);
    });

    it('answers NOT_FOUND for a run id that does not exist, and BAD_USER_INPUT for an id of another type', async () => {
      const missing = await gql(app.graphqlUrl, lab.keys.VIEWER, RUN, { id: toGlobalId('Run', '00000000-0000-4000-8000-000000000000') });
      expect(missing.data).toEqual({ run: null });
      expect(errorCodes(missing)).toEqual(['NOT_FOUND']);
      const selector = await gql(app.graphqlUrl, lab.keys.VIEWER, RUN, { id: selectors[1].id });
      expect(errorCodes(selector)).toEqual(['BAD_USER_INPUT']);
    });

    it('refuses a request without a key', async () => {
      const res = await gql(app.graphqlUrl, null, RUN, { id: runId });
      expect(errorCodes(res)).toEqual(['UNAUTHENTICATED']);
    });
  });

  describe('selectorModel(name:, version:)', () => {
    it.each(ROLES)('finds the latest version by name, or the version asked for, for a %s', async (role) => {
      const latest = await gql(app.graphqlUrl, lab.keys[role], SELECTOR, { name: 'reference' });
      expect(latest.errors).toBeUndefined();
      expect(latest.data!.selectorModel).toEqual({ id: selectors[2].id, name: 'reference', version: 2, filesHash: selectors[2].filesHash });
      const first = await gql(app.graphqlUrl, lab.keys[role], SELECTOR, { name: 'reference', version: 1 });
      expect(first.data!.selectorModel).toEqual({ id: selectors[1].id, name: 'reference', version: 1, filesHash: selectors[1].filesHash });
    });

    it('answers NOT_FOUND for an unknown name or version', async () => {
      for (const variables of [{ name: 'reference', version: 3 }, { name: 'nope' }]) {
        const res = await gql(app.graphqlUrl, lab.keys.VIEWER, SELECTOR, variables);
        expect(res.data).toEqual({ selectorModel: null });
        expect(errorCodes(res)).toEqual(['NOT_FOUND']);
      }
    });

    it("never finds another project's selector", async () => {
      for (const variables of [{ name: 'reference' }, { name: 'reference', version: 1 }]) {
        const res = await gql(app.graphqlUrl, other.keys.OWNER, SELECTOR, variables);
        expect(res.data).toEqual({ selectorModel: null });
        expect(errorCodes(res)).toEqual(['NOT_FOUND']);
      }
    });
  });

  it('documents every public enum and each of its values in the schema', async () => {
    const res = await gql(
      app.graphqlUrl,
      lab.keys.VIEWER,
      `{ __schema { types { kind name description enumValues { name description } } } }`,
    );
    const enums = (res.data!.__schema.types as { kind: string; name: string; description: string | null; enumValues: { name: string; description: string | null }[] }[]).filter(
      (t) => t.kind === 'ENUM' && !t.name.startsWith('__'),
    );
    expect(enums.map((e) => e.name)).toEqual(expect.arrayContaining(['RunKind', 'RunStatus', 'Role', 'Modality', 'CandidateStatus', 'PreferenceKind', 'PreferenceSource', 'DatasetExportFormat', 'UserErrorCode']));
    const undocumented = enums.flatMap((e) => [...(e.description ? [] : [e.name]), ...e.enumValues.filter((v) => !v.description).map((v) => `${e.name}.${v.name}`)]);
    expect(undocumented).toEqual([]);
  });
});
