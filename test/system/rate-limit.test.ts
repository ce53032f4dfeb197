import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';
import { gql, errorCodes } from '../support/graphql-client';
import { startServer, RunningServer } from '../../src/app/server';
import { loadConfig } from '../../src/platform/config';

/** Requests per minute per API key, counted in Postgres: every api process spends from one budget. */
describe('per-key rate limit', () => {
  let app: TestApp;
  let secondProcess: RunningServer;
  let lab: TestProject;
  const query = '{ viewer { role } }';

  beforeAll(async () => {
    app = await startTestApp({ RATE_LIMIT_PER_MINUTE: '4' });
    // A second api server on the same database stands in for a second api process.
    secondProcess = await startServer(app.ds, loadConfig({ NODE_ENV: 'test', PORT: '0', LOG_LEVEL: 'error', RATE_LIMIT_PER_MINUTE: '4' }));
    lab = await createTestProject(app, 'rate-lab');
  });
  afterAll(async () => {
    await secondProcess.close();
    await app.stop();
  });

  it('answers RATE_LIMITED with HTTP 429 and Retry-After once a key spends its budget across both processes', async () => {
    const key = lab.keys.VIEWER;
    expect((await gql(app.graphqlUrl, key, query)).errors).toBeUndefined();
    expect((await gql(secondProcess.graphqlUrl, key, query)).errors).toBeUndefined();
    expect((await gql(app.graphqlUrl, key, query)).errors).toBeUndefined();
    expect((await gql(secondProcess.graphqlUrl, key, query)).errors).toBeUndefined();

    const res = await fetch(app.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ query }),
    });
    expect(res.status).toBe(429);
    const retryAfter = Number(res.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const body = (await res.json()) as { errors: { extensions: { code: string; retryAfterSeconds: number } }[] };
    expect(body.errors[0].extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfterSeconds: retryAfter });
    expect(errorCodes(await gql(secondProcess.graphqlUrl, key, query))).toEqual(['RATE_LIMITED']);
  });

  it('keeps separate budgets for separate keys', async () => {
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, query);
    expect(res.errors).toBeUndefined();
    expect(res.data!.viewer.role).toBe('CURATOR');
  });

  it('leaves health probes unlimited', async () => {
    for (let i = 0; i < 6; i++) expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
  });
});
