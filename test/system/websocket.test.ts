import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';
import { WsClients, wsExecute } from '../support/ws-client';

/** graphql-ws shares the port and path of HTTP; the API key travels in connectionParams. */
describe('GraphQL over WebSocket', () => {
  let app: TestApp;
  let labA: TestProject;
  let labB: TestProject;
  const clients = new WsClients();

  beforeAll(async () => {
    app = await startTestApp();
    labA = await createTestProject(app, 'ws-lab-a');
    labB = await createTestProject(app, 'ws-lab-b');
  });
  afterAll(async () => {
    await clients.disposeAll();
    await app.stop();
  });

  it('runs operations in the project of the key given at connection_init', async () => {
    const a = clients.open(app, labA.keys.VIEWER);
    const b = clients.open(app, labB.keys.OWNER);
    expect(await wsExecute(a, '{ viewer { role project { slug } } }')).toEqual({ data: { viewer: { role: 'VIEWER', project: { slug: 'ws-lab-a' } } } });
    expect(await wsExecute(b, '{ viewer { role project { slug } } }')).toEqual({ data: { viewer: { role: 'OWNER', project: { slug: 'ws-lab-b' } } } });
  });

  it('refuses an unknown key at connection_init with close code 4403', async () => {
    const client = clients.open(app, 'bmv_unknown');
    const error = (await wsExecute(client, '{ viewer { role } }').catch((e) => e)) as { code?: number };
    expect(error.code).toBe(4403);
  });

  it('enforces roles on mutations sent over the socket', async () => {
    const client = clients.open(app, labA.keys.VIEWER);
    const result = (await wsExecute(client, 'mutation { createApiKey(input: { name: "ws" }) { secret } }')) as { errors: { extensions: { code: string } }[] };
    expect(result.errors.map((e) => e.extensions.code)).toEqual(['FORBIDDEN']);
  });
});
