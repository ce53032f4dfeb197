import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';
import { gql, gqlUpload, errorCodes, GraphQLResponse } from '../support/graphql-client';
import { readSharedImage } from '../support/shared-data';

/**
 * One error channel per mutation (DESIGN.md §4, issue 9 item 13): the schema's mutations are walked
 * over HTTP introspection, and each must take one `input` and answer a mistake in an input value
 * with a payload `userErrors` entry naming the field's path, never a GraphQL error.
 *
 * One row per mutation: an input whose only fault is one value out of its range, length or format
 * (class-validator's checks wherever the input has one), and the path the answer must name. A new
 * mutation fails the completeness test until it has its row.
 */
interface BadInput {
  input: Record<string, unknown>;
  field: string[];
  /** Multipart files, for inputs with a required Upload. */
  files?: { path: string; name: string; bytes: Buffer }[];
}

const tooLong = (n: number) => 'x'.repeat(n + 1);

const BAD_INPUTS: Record<string, BadInput> = {
  activateSelectorModel: { input: { selectorModelId: 'not-an-id' }, field: ['input', 'selectorModelId'] },
  addMember: { input: { email: 'not-an-email', displayName: 'New', role: 'VIEWER' }, field: ['input', 'email'] },
  cancelRun: { input: { runId: 'not-an-id' }, field: ['runId'] },
  createAnnotationCampaign: { input: { name: 'campaign', taskKind: 'ACCEPTANCE', items: {}, overlap: 0 }, field: ['input', 'overlap'] },
  createApiKey: { input: { name: '' }, field: ['input', 'name'] },
  createDataset: { input: { name: 'ranked', topFraction: 1.5 }, field: ['input', 'topFraction'] },
  createWebhookEndpoint: { input: { url: 'http://127.0.0.1/hooks', events: ['RUN_FINISHED'] }, field: ['input', 'url'] },
  deleteWebhookEndpoint: { input: { id: 'not-an-id' }, field: ['input', 'id'] },
  importRecords: { input: { records: [] }, field: ['records'] },
  nextAnnotationTask: { input: { campaignId: 'not-an-id' }, field: ['input', 'campaignId'] },
  promoteToDemonstration: { input: { itemId: 'not-an-id' }, field: ['input', 'itemId'] },
  redeliverWebhook: { input: { deliveryId: 'not-an-id' }, field: ['input', 'deliveryId'] },
  recordPreference: { input: { candidateId: 'not-checked-first', kind: 'RATING', rating: 11, rubricVersion: 'v1' }, field: ['input', 'rating'] },
  registerEncoderModel: { input: { name: tooLong(100) }, field: ['input', 'name'] },
  registerSelectorModel: { input: { name: tooLong(100) }, field: ['input', 'name'] },
  reparseRun: { input: { runId: 'not-an-id' }, field: ['runId'] },
  rotateWebhookSecret: { input: { id: 'not-an-id' }, field: ['input', 'id'] },
  revokeApiKey: { input: { id: 'not-an-id' }, field: ['id'] },
  skipAnnotationTask: { input: { itemId: 'not-an-id' }, field: ['input', 'itemId'] },
  submitAnnotation: { input: { itemId: 'not-an-id', comment: tooLong(10_000) }, field: ['input', 'comment'] },
  setDemonstrationActive: { input: { id: 'not-an-id', active: true }, field: ['id'] },
  startClusteringRun: { input: { k: 0 }, field: ['input', 'k'] },
  startEvaluationRun: { input: { bootstrapSamples: 0 }, field: ['input', 'bootstrapSamples'] },
  startGenerationRun: { input: { images: { imageIds: [] }, model: { temperature: 3 } }, field: ['input', 'model', 'temperature'] },
  startRatingRun: { input: { generationRunId: 'not-checked-first', limits: { concurrency: 0 } }, field: ['input', 'limits', 'concurrency'] },
  startScoringRun: { input: { batchSize: 0 }, field: ['input', 'batchSize'] },
  startTrainingRun: { input: { selectorName: 'trained', epochs: 0 }, field: ['input', 'epochs'] },
  updateWebhookEndpoint: { input: { id: 'not-an-id', description: tooLong(500) }, field: ['input', 'description'] },
  uploadImage: {
    input: { file: null, metadata: { caption: tooLong(20000) } },
    field: ['input', 'metadata', 'caption'],
    files: [{ path: 'input.file', name: 'xy_chromosome.jpg', bytes: readSharedImage('xy_chromosome.jpg') }],
  },
};

interface TypeRef {
  kind: string;
  name: string | null;
  ofType: TypeRef | null;
}
interface IntrospectedField {
  name: string;
  args: { name: string; type: TypeRef }[];
  type: TypeRef;
}

const TYPE_REF = 'kind name ofType { kind name ofType { kind name ofType { kind name } } }';
const named = (t: TypeRef): string => (t.ofType ? named(t.ofType) : t.name!);
const render = (t: TypeRef): string => (t.kind === 'NON_NULL' ? `${render(t.ofType!)}!` : t.kind === 'LIST' ? `[${render(t.ofType!)}]` : t.name!);

describe('mutation conventions: input mistakes are userErrors', () => {
  let app: TestApp;
  let lab: TestProject;
  let mutations: IntrospectedField[];
  const payloadFields = new Map<string, IntrospectedField[]>();

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'conventions-lab');
    const res = await gql(app.graphqlUrl, lab.keys.OWNER, `{ __schema { mutationType { fields { name args { name type { ${TYPE_REF} } } type { ${TYPE_REF} } } } } }`);
    expect(res.errors).toBeUndefined();
    mutations = res.data!.__schema.mutationType.fields;
    for (const m of mutations) {
      const type = named(m.type);
      if (payloadFields.has(type)) continue;
      const t = await gql(app.graphqlUrl, lab.keys.OWNER, `query($n: String!) { __type(name: $n) { fields { name args { name type { ${TYPE_REF} } } type { ${TYPE_REF} } } } }`, { n: type });
      payloadFields.set(type, t.data!.__type.fields);
    }
  });
  afterAll(() => app?.stop());

  it('has one bad-input row per mutation of the schema', () => {
    const names = mutations.map((m) => m.name).sort();
    const missing = names.filter((n) => !(n in BAD_INPUTS));
    const stale = Object.keys(BAD_INPUTS).filter((n) => !names.includes(n));
    expect({ missingFromTable: missing, notInSchema: stale }).toEqual({ missingFromTable: [], notInSchema: [] });
  });

  it('gives every mutation one `input` argument and a payload with userErrors: [UserError!]! whose other fields can be empty', () => {
    const problems: string[] = [];
    for (const m of mutations) {
      if (m.args.length !== 1 || m.args[0].name !== 'input' || m.args[0].type.kind !== 'NON_NULL') problems.push(`${m.name}: takes ${m.args.map((a) => `${a.name}: ${render(a.type)}`).join(', ')}`);
      const fields = payloadFields.get(named(m.type)) ?? [];
      const userErrors = fields.find((f) => f.name === 'userErrors');
      if (!userErrors || render(userErrors.type) !== '[UserError!]!') problems.push(`${m.name}: payload ${named(m.type)} has no userErrors: [UserError!]!`);
      for (const f of fields) {
        const emptiable = f.type.kind !== 'NON_NULL' || f.type.ofType!.kind === 'LIST';
        if (f.name !== 'userErrors' && !emptiable) problems.push(`${m.name}: payload field ${f.name} is ${render(f.type)}, so a failed mutation cannot leave it empty`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('answers a value mistake of every mutation with a userErrors entry on its path, and writes nothing', async () => {
    const before = await tableCounts(app);
    const problems: string[] = [];
    for (const m of mutations) {
      const bad = BAD_INPUTS[m.name];
      if (!bad) continue;
      const type = named(m.type);
      const others = (payloadFields.get(type) ?? []).filter((f) => f.name !== 'userErrors');
      const selection = others.map((f) => (['OBJECT', 'INTERFACE'].includes(kindOf(f.type)) ? `${f.name} { __typename }` : f.name)).join(' ');
      const query = `mutation($input: ${render(m.args[0].type)}) { ${m.name}(input: $input) { ${selection} userErrors { field code message } } }`;
      const res: GraphQLResponse = bad.files
        ? await gqlUpload(app.graphqlUrl, lab.keys.OWNER, query, { input: bad.input }, bad.files)
        : await gql(app.graphqlUrl, lab.keys.OWNER, query, { input: bad.input });
      if (res.errors) {
        problems.push(`${m.name}: GraphQL error ${errorCodes(res).join(',')} (${res.errors[0].message}) instead of userErrors`);
        continue;
      }
      const payload = res.data![m.name];
      const entry = payload.userErrors.find((e: { field: string[] | null }) => JSON.stringify(e.field) === JSON.stringify(bad.field));
      if (!entry) problems.push(`${m.name}: userErrors ${JSON.stringify(payload.userErrors)} has no entry on ${JSON.stringify(bad.field)}`);
      else if (entry.code !== 'INVALID' || !entry.message) problems.push(`${m.name}: entry ${JSON.stringify(entry)} is not INVALID with a message`);
      for (const f of others) {
        const value = payload[f.name];
        if (!(value === null || (Array.isArray(value) && value.length === 0))) problems.push(`${m.name}: ${f.name} is ${JSON.stringify(value)} beside userErrors`);
      }
    }
    expect(problems).toEqual([]);
    expect(await tableCounts(app)).toEqual(before);
  });

  it('names each failing field of a nested input once, with its full path', async () => {
    const res = await gql(
      app.graphqlUrl,
      lab.keys.CURATOR,
      `mutation($input: StartGenerationRunInput!) { startGenerationRun(input: $input) { run { id } userErrors { field code } } }`,
      { input: { images: { imageIds: [] }, samplesPerImage: 21, model: { temperature: -1, maxTokens: 1 }, limits: { concurrency: 500 } } },
    );
    expect(res.errors).toBeUndefined();
    const fields = res.data!.startGenerationRun.userErrors.map((e: { field: string[] }) => e.field.join('.')).sort();
    expect(fields).toEqual(['input.limits.concurrency', 'input.model.maxTokens', 'input.model.temperature', 'input.samplesPerImage']);
    expect(res.data!.startGenerationRun.run).toBeNull();
  });

  it('keeps what the GraphQL layer refuses itself, and authorization, as request errors', async () => {
    const wrongType = await gql(app.graphqlUrl, lab.keys.OWNER, 'mutation { createDataset(input: { name: "x", topFraction: "half" }) { userErrors { field } } }');
    expect(wrongType.status).toBe(400);
    expect(errorCodes(wrongType)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    const unknownField = await gql(app.graphqlUrl, lab.keys.OWNER, 'mutation { createDataset(input: { name: "x", topFraction: 0.5, best: true }) { userErrors { field } } }');
    expect(errorCodes(unknownField)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
    // A viewer's out-of-range input is refused for the role first: nothing about the input leaks.
    const viewer = await gql(app.graphqlUrl, lab.keys.VIEWER, 'mutation { createDataset(input: { name: "x", topFraction: 1.5 }) { userErrors { field } } }');
    expect(errorCodes(viewer)).toEqual(['FORBIDDEN']);
  });

  it('leaves query argument mistakes as BAD_USER_INPUT errors (queries have no payload)', async () => {
    const res = await gql(app.graphqlUrl, lab.keys.OWNER, '{ images(first: 0) { totalCount } }');
    expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
  });
});

function kindOf(t: TypeRef): string {
  return t.ofType ? kindOf(t.ofType) : t.kind;
}

/** Row counts of every table of the app (graphile-worker's queue included), to show nothing was written. */
async function tableCounts(app: TestApp): Promise<Record<string, number>> {
  const tables: { schema: string; name: string }[] = await app.ds.query(
    `SELECT table_schema AS schema, table_name AS name FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2`,
  );
  const counts: Record<string, number> = {};
  for (const t of tables) {
    if (t.name === 'rate_limits' || t.name.startsWith('_private_') || t.name === 'migrations') continue;
    const [{ n }] = await app.ds.query(`SELECT count(*)::int AS n FROM "${t.schema}"."${t.name}"`);
    counts[`${t.schema}.${t.name}`] = n;
  }
  return counts;
}
