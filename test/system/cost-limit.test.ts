import { parse, validate } from 'graphql';
import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit';
import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';
import { wsClient } from '../support/ws-client';
import { CANDIDATE_PAGE_QUERY } from '../support/candidate-page';
import { gql, errorCodes } from '../support/graphql-client';
import { operationCost } from '../../src/platform/query-cost';
import { buildAppSchema } from '../../src/app/schema';

const PAGE = CANDIDATE_PAGE_QUERY;

const SMALL = 'query($n: Int!) { candidates(first: $n) { edges { node { id image { caption } } } } }';

/** The cost limit counts page sizes given in variables as it counts literal ones; aliases of __typename count too. */
describe('query cost with variables', () => {
  let app: TestApp;
  let lab: TestProject;

  beforeAll(async () => {
    app = await startTestApp({ QUERY_MAX_COST: '20000', QUERY_MAX_ALIASES: '5' });
    lab = await createTestProject(app, 'cost-lab');
  });
  afterAll(() => app.stop());

  it('refuses first: $n = 1000 exactly as it refuses first: 1000, before anything runs', async () => {
    const literal = await gql(app.graphqlUrl, lab.keys.VIEWER, SMALL.replace('query($n: Int!) ', '').replace('$n', '1000'));
    const variable = await gql(app.graphqlUrl, lab.keys.VIEWER, SMALL, { n: 1000 });
    for (const res of [literal, variable]) {
      expect({ status: res.status, codes: errorCodes(res), data: res.data }).toEqual({ status: 400, codes: ['GRAPHQL_VALIDATION_FAILED'], data: undefined });
      expect(res.errors![0].message).toMatch(/Cost limit of 20000 exceeded, found 24688/);
    }
    const small = await gql(app.graphqlUrl, lab.keys.VIEWER, SMALL, { n: 10 });
    expect(small.errors).toBeUndefined();
  });

  it('refuses the same over WebSocket', async () => {
    const client = wsClient(app, lab.keys.VIEWER);
    const outcome = await new Promise<any>((resolve) => client.subscribe({ query: SMALL, variables: { n: 1000 } }, { next: resolve, error: resolve, complete: () => resolve('completed') }));
    await client.dispose();
    expect(Array.isArray(outcome)).toBe(true);
    expect(outcome[0]).toMatchObject({ message: expect.stringMatching(/Cost limit/), extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
    expect(outcome[0].extensions.http).toBeUndefined();
  });

  it('counts aliases of __typename toward the alias limit', async () => {
    const aliases = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `t${i}: __typename`).join(' ')} }`;
    expect((await gql(app.graphqlUrl, lab.keys.VIEWER, aliases(5))).errors).toBeUndefined();
    const res = await gql(app.graphqlUrl, lab.keys.VIEWER, aliases(1600));
    expect({ status: res.status, codes: errorCodes(res) }).toEqual({ status: 400, codes: ['GRAPHQL_VALIDATION_FAILED'] });
    expect(res.errors![0].message).toMatch(/alias/i);
  });

  it("keeps QUERY_MAX_COST's meaning: a page of 100 candidates costs what graphql-armor's rule gives the same page with literal sizes", async () => {
    const schema = await buildAppSchema(app.services);
    const ours = operationCost(schema, parse(PAGE), { first: 100, sel: 'U2VsZWN0b3JNb2RlbDox' });
    let armor = -1;
    const literal = parse(PAGE.replace('candidates(first: $first)', 'candidates(first: 100)'));
    validate(schema, literal, [costLimitRule({ maxCost: 1e9, onAccept: [(_ctx, { n }) => (armor = n)] })]);
    console.log(`cost of a page of 100 candidates with image, scores and preferences: ${ours} (graphql-armor, literal first: 100: ${armor})`);
    expect(ours).toBe(armor);
    expect(ours!).toBeLessThan(500_000);
  });
});
