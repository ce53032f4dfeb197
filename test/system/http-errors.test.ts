import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';
import { gql, errorCodes } from '../support/graphql-client';

/** A raw request to the GraphQL endpoint: status, content type and the body as text and JSON. */
async function post(app: TestApp, key: string, body: RequestInit["body"], headers: Record<string, string> = { 'content-type': 'application/json' }) {
  const res = await fetch(app.graphqlUrl, { method: 'POST', headers: { authorization: `Bearer ${key}`, ...headers }, body });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    // an HTML page, say: the assertions below say so
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', text, json };
}

/** What every refusal looks like: JSON in the GraphQL response shape, a code, no stack trace. */
function expectRefusal(res: Awaited<ReturnType<typeof post>>, status: number, code: string): void {
  expect({ status: res.status, contentType: res.contentType.split(';')[0], code: res.json?.errors?.[0]?.extensions?.code }).toEqual({ status, contentType: 'application/json', code });
  expect(res.text).not.toMatch(/\n\s+at |node_modules|<html|<pre/i);
  expect(res.json.errors[0].message).toEqual(expect.any(String));
}

function multipart(operations: unknown, map: unknown, files: Record<string, Buffer> = {}): FormData {
  const form = new FormData();
  form.append('operations', typeof operations === 'string' ? operations : JSON.stringify(operations));
  form.append('map', typeof map === 'string' ? map : JSON.stringify(map));
  for (const [name, bytes] of Object.entries(files)) form.append(name, new Blob([new Uint8Array(bytes)]), `${name}.jpg`);
  return form;
}

const UPLOAD = 'mutation($input: UploadImageInput!) { uploadImage(input: $input) { image { id } userErrors { code field message } } }';
const IMPORT = 'mutation($input: ImportRecordsInput!) { importRecords(input: $input) { summary { imagesCreated } recordErrors { index field message } userErrors { code field } } }';

describe.each([
  ['development', {}],
  ['production', { NODE_ENV: 'production' }],
])('HTTP edge, %s: a client mistake is a 4xx in the GraphQL shape, never a 500 or a stack', (_mode, env) => {
  let app: TestApp;
  let lab: TestProject;

  beforeAll(async () => {
    app = await startTestApp({ ...env, QUERY_MAX_TOKENS: '200', MAX_UPLOAD_FILES: '2', MAX_JSON_BODY_BYTES: '65536' });
    lab = await createTestProject(app, `edge-${_mode}`);
  });
  afterAll(() => app.stop());

  it('answers a syntax error with 400 GRAPHQL_PARSE_FAILED', async () => {
    const res = await post(app, lab.keys.VIEWER, JSON.stringify({ query: '{ viewer { role ' }));
    expectRefusal(res, 400, 'GRAPHQL_PARSE_FAILED');
  });

  it('answers a document over the token limit with 400 GRAPHQL_PARSE_FAILED, over HTTP and never runs it', async () => {
    const long = `{ ${Array.from({ length: 120 }, () => 'viewer { role }').join(' ')} }`;
    const res = await post(app, lab.keys.VIEWER, JSON.stringify({ query: long }));
    expectRefusal(res, 400, 'GRAPHQL_PARSE_FAILED');
    expect(res.json.errors[0].message).toMatch(/200 tokens/);
  });

  it('answers a malformed JSON body with 400 BAD_REQUEST', async () => {
    expectRefusal(await post(app, lab.keys.VIEWER, '{ "query": "{ viewer { role } }'), 400, 'BAD_REQUEST');
  });

  it('answers a JSON body over MAX_JSON_BODY_BYTES with 413 PAYLOAD_TOO_LARGE', async () => {
    const body = JSON.stringify({ query: '{ viewer { role } }', variables: { padding: 'x'.repeat(70_000) } });
    expectRefusal(await post(app, lab.keys.VIEWER, body), 413, 'PAYLOAD_TOO_LARGE');
  });

  it('answers a NUL byte in a search, a display name or a literal with 400 BAD_USER_INPUT naming the input', async () => {
    const search = await gql(app.graphqlUrl, lab.keys.VIEWER, 'query($s: String) { images(first: 5, filter: { captionSearch: $s }) { totalCount } }', { s: 'chest\u0000x-ray' });
    expect({ status: search.status, codes: errorCodes(search), field: search.errors?.[0]?.extensions?.field }).toEqual({ status: 400, codes: ['BAD_USER_INPUT'], field: 's' });

    const member = await gql(app.graphqlUrl, lab.keys.OWNER, 'mutation($input: AddMemberInput!) { addMember(input: $input) { membership { id } userErrors { code } } }', {
      input: { email: 'nul@edge.test', displayName: 'Ada\u0000', role: 'VIEWER' },
    });
    expect({ status: member.status, codes: errorCodes(member), field: member.errors?.[0]?.extensions?.field }).toEqual({ status: 400, codes: ['BAD_USER_INPUT'], field: 'input.displayName' });
    const [{ count }] = await app.ds.query(`SELECT count(*)::int AS count FROM users WHERE email = 'nul@edge.test'`);
    expect(count).toBe(0);

    const literal = await gql(app.graphqlUrl, lab.keys.VIEWER, '{ images(first: 5, filter: { captionSearch: "a\\u0000b" }) { totalCount } }');
    expect({ status: literal.status, codes: errorCodes(literal) }).toEqual({ status: 400, codes: ['BAD_USER_INPUT'] });
  });

  it('reports a NUL byte in an imported record as a recordErrors entry at its field, inline or as a file, and writes nothing', async () => {
    const record = { pair_id: 'nul-1', pmid: '1', fig_caption: 'caption with \u0000 inside' };
    const inline = await gql(app.graphqlUrl, lab.keys.CURATOR, IMPORT, { input: { records: [record] } });
    expect(inline.errors).toBeUndefined();
    expect(inline.data!.importRecords).toEqual({ summary: null, recordErrors: [{ index: 0, field: 'fig_caption', message: expect.stringMatching(/NUL/) }], userErrors: [] });

    const form = multipart({ query: IMPORT, variables: { input: { recordsFile: null } } }, { 0: ['variables.input.recordsFile'] }, { 0: Buffer.from(JSON.stringify([record])) });
    const file = await post(app, lab.keys.CURATOR, form, { 'apollo-require-preflight': 'true' });
    expect(file.status).toBe(200);
    expect(file.json.data.importRecords.recordErrors).toEqual([{ index: 0, field: 'fig_caption', message: expect.stringMatching(/NUL/) }]);
    const [{ count }] = await app.ds.query(`SELECT count(*)::int AS count FROM images WHERE project_id = $1`, [lab.id]);
    expect(count).toBe(0);
  });

  it('answers a multipart map naming a file part that is not there with a userErrors entry on the field', async () => {
    const form = multipart({ query: UPLOAD, variables: { input: { file: null } } }, { 0: ['variables.input.file'] });
    const res = await post(app, lab.keys.CURATOR, form, { 'apollo-require-preflight': 'true' });
    expect(res.status).toBe(200);
    expect(res.json.errors).toBeUndefined();
    expect(res.json.data.uploadImage).toEqual({ image: null, userErrors: [{ code: 'INVALID', field: ['input', 'file'], message: expect.stringMatching(/file/i) }] });
  });

  it('answers a malformed multipart map with 400 BAD_REQUEST', async () => {
    const form = multipart({ query: UPLOAD, variables: { input: { file: null } } }, '{ not json');
    expectRefusal(await post(app, lab.keys.CURATOR, form, { 'apollo-require-preflight': 'true' }), 400, 'BAD_REQUEST');
  });

  it('answers more files than MAX_UPLOAD_FILES with 413 PAYLOAD_TOO_LARGE', async () => {
    const files = { 0: Buffer.from('a'), 1: Buffer.from('b'), 2: Buffer.from('c') };
    const form = multipart({ query: UPLOAD, variables: { input: { file: null } } }, { 0: ['variables.input.file'], 1: ['variables.x'], 2: ['variables.y'] }, files);
    expectRefusal(await post(app, lab.keys.CURATOR, form, { 'apollo-require-preflight': 'true' }), 413, 'PAYLOAD_TOO_LARGE');
  });
});
