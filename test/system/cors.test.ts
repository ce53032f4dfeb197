import { startTestApp, TestApp } from '../support/test-app';

const preflight = (app: TestApp, origin: string) =>
  fetch(app.graphqlUrl, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
  });

/** Browser UIs on another origin call the API with their key in a header (no cookies). */
describe('cross-origin requests', () => {
  let open: TestApp;
  let restricted: TestApp;

  beforeAll(async () => {
    open = await startTestApp();
    restricted = await startTestApp({ CORS_ORIGINS: 'http://ui.lab.test, http://localhost:5173' });
  });
  afterAll(async () => {
    await open.stop();
    await restricted.stop();
  });

  it('answers a preflight from any origin by default, allowing the Authorization header', async () => {
    const res = await preflight(open, 'http://somewhere.test');
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('*');
    expect(res.headers.get('access-control-allow-headers')).toMatch(/authorization/);
  });

  it('allows only the configured origins when CORS_ORIGINS is set', async () => {
    const allowed = await preflight(restricted, 'http://localhost:5173');
    expect(allowed.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
    const other = await preflight(restricted, 'http://evil.test');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});
