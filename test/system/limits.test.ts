import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';
import { wsClient } from '../support/ws-client';
import { gql, errorCodes } from '../support/graphql-client';

const deepQuery = (levels: number) => {
  let selection = 'id';
  for (let i = 0; i < levels; i++) selection = `candidates(first: 1) { edges { node { image { ${selection} } } } }`;
  return `{ images(first: 1) { edges { node { ${selection} } } } }`;
};

/** Query-shape limits protect the service from one expensive request, over HTTP and WebSocket alike. */
describe('request limits', () => {
  let app: TestApp;
  let lab: TestProject;

  beforeAll(async () => {
    app = await startTestApp({ QUERY_MAX_DEPTH: '12', QUERY_MAX_ALIASES: '5' });
    lab = await createTestProject(app, 'limits-lab');
  });
  afterAll(() => app.stop());

  it('accepts a query within the depth limit and refuses a deeper one before running it', async () => {
    const ok = await gql(app.graphqlUrl, lab.keys.VIEWER, deepQuery(1));
    expect(ok.errors).toBeUndefined();
    const tooDeep = await gql(app.graphqlUrl, lab.keys.VIEWER, deepQuery(4));
    expect(tooDeep.status).toBe(400);
    expect(errorCodes(tooDeep)).toContain('GRAPHQL_VALIDATION_FAILED');
    expect(tooDeep.errors![0].message).toMatch(/depth/i);
  });

  it('refuses too many aliases', async () => {
    const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: viewer { role }`).join(' ')} }`;
    expect((await gql(app.graphqlUrl, lab.keys.VIEWER, aliases(5))).errors).toBeUndefined();
    const res = await gql(app.graphqlUrl, lab.keys.VIEWER, aliases(6));
    expect(errorCodes(res)).toContain('GRAPHQL_VALIDATION_FAILED');
    expect(res.errors![0].message).toMatch(/alias/i);
  });

  it('refuses batched HTTP requests', async () => {
    const res = await fetch(app.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${lab.keys.VIEWER}` },
      body: JSON.stringify([{ query: '{ viewer { role } }' }, { query: '{ viewer { role } }' }]),
    });
    expect(res.status).toBe(400);
  });

  it('applies the same depth limit over WebSocket', async () => {
    const client = wsClient(app, lab.keys.VIEWER);
    const errors = await new Promise<any>((resolve) => client.subscribe({ query: deepQuery(4) }, { next: () => resolve('no error'), error: resolve, complete: () => resolve('completed') }));
    await client.dispose();
    expect(Array.isArray(errors)).toBe(true);
    expect(errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });
});
