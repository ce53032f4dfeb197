import WebSocket from 'ws';
import { createClient, Client } from 'graphql-ws';
import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';

function wsClient(app: TestApp, key: string): Client {
  return createClient({
    url: app.graphqlUrl.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${key}` },
    retryAttempts: 0,
    lazy: true,
  });
}

function execute(client: Client, query: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let result: unknown;
    client.subscribe({ query }, { next: (value) => (result = value), error: reject, complete: () => resolve(result) });
  });
}

/** graphql-ws shares the port and path of HTTP; the API key travels in connectionParams. */
describe('GraphQL over WebSocket', () => {
  let app: TestApp;
  let labA: TestProject;
  let labB: TestProject;
  const clients: Client[] = [];

  beforeAll(async () => {
    app = await startTestApp();
    labA = await createTestProject(app, 'ws-lab-a');
    labB = await createTestProject(app, 'ws-lab-b');
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.dispose()));
    await app.stop();
  });

  it('runs operations in the project of the key given at connection_init', async () => {
    const a = wsClient(app, labA.keys.VIEWER);
    const b = wsClient(app, labB.keys.OWNER);
    clients.push(a, b);
    expect(await execute(a, '{ viewer { role project { slug } } }')).toEqual({ data: { viewer: { role: 'VIEWER', project: { slug: 'ws-lab-a' } } } });
    expect(await execute(b, '{ viewer { role project { slug } } }')).toEqual({ data: { viewer: { role: 'OWNER', project: { slug: 'ws-lab-b' } } } });
  });

  it('refuses an unknown key at connection_init with close code 4403', async () => {
    const client = wsClient(app, 'bmv_unknown');
    clients.push(client);
    const error = (await execute(client, '{ viewer { role } }').catch((e) => e)) as { code?: number };
    expect(error.code).toBe(4403);
  });

  it('enforces roles on mutations sent over the socket', async () => {
    const client = wsClient(app, labA.keys.VIEWER);
    clients.push(client);
    const result = (await execute(client, 'mutation { createApiKey(input: { name: "ws" }) { secret } }')) as { errors: { extensions: { code: string } }[] };
    expect(result.errors.map((e) => e.extensions.code)).toEqual(['FORBIDDEN']);
  });
});
