import { Client } from 'graphql-ws';
import { FakeOpenAIServer } from '../fakes/openai-server';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { seedPipeline, START_GENERATION } from '../support/pipeline-fixture';
import { WsClients, wsExecute } from '../support/ws-client';
import { loadConfig } from '../../src/platform/config';
import { RunningServer, startServer } from '../../src/app/server';

const RUN_UPDATED = `subscription($id: ID!) { runUpdated(id: $id) { id status } }`;

interface Followed {
  /** Resolves with the first event. */
  first: Promise<unknown>;
  /** Resolves when the subscription ends: the close code when the socket was closed on it. */
  ended: Promise<{ outcome: string; code?: number }>;
  eventsAfter(): number;
}

/** A subscription that stays open (a queued run, no worker) until the server closes it. */
function follow(client: Client, runId: string): Followed {
  let events = 0;
  let resolveFirst: (v: unknown) => void;
  const first = new Promise((r) => (resolveFirst = r));
  const ended = new Promise<{ outcome: string; code?: number }>((resolve) => {
    client.subscribe(
      { query: RUN_UPDATED, variables: { id: runId } },
      {
        next: (value) => {
          events++;
          resolveFirst(value);
        },
        error: (error) => resolve({ outcome: 'error', code: (error as { code?: number }).code }),
        complete: () => resolve({ outcome: 'complete' }),
      },
    );
  });
  let endedAt = -1;
  void ended.then(() => (endedAt = events));
  return { first, ended, eventsAfter: () => (endedAt < 0 ? 0 : events - endedAt) };
}

/** The subscription must end by itself; a hang is a failure, not a jest timeout. */
async function within<T>(promise: Promise<T>, ms = 15_000): Promise<T | 'still open'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'still open'>((resolve) => (timer = setTimeout(() => resolve('still open'), ms)));
  const result = await Promise.race([promise, timeout]);
  clearTimeout(timer);
  return result;
}

/** Revoking a key, or changing its member's role, closes its WebSocket connections on every api process. */
describe('key revocation and role changes end WebSocket sessions', () => {
  let fake: FakeOpenAIServer;
  let app: TestApp;
  let second: RunningServer;
  let lab: TestProject;
  let other: TestProject;
  let runId: string;
  const clients = new WsClients();
  const client = (graphqlUrl: string, key: string) => clients.open(graphqlUrl, key);

  beforeAll(async () => {
    fake = await FakeOpenAIServer.start({ latencyMs: 10 });
    app = await startTestApp({ OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.baseUrl });
    // A second api process on the same database: the change must reach it through Postgres.
    second = await startServer(app.ds, loadConfig({ NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'error' }));
    lab = await createTestProject(app, 'revoke-lab');
    other = await createTestProject(app, 'revoke-other');
    const images = await seedPipeline(app, lab);
    const started = await gql(app.graphqlUrl, lab.keys.CURATOR, START_GENERATION, { input: { images: { imageIds: images.imageGlobalIds }, seed: 1 } });
    expect(started.errors).toBeUndefined();
    runId = started.data!.startGenerationRun.run.id;
  });
  afterAll(async () => {
    await clients.disposeAll();
    await second?.close();
    await app?.stop();
    await fake?.close();
  });

  it("closes the revoked key's connections on both api processes with 4403, and only those", async () => {
    const created = await gql(app.graphqlUrl, lab.keys.OWNER, 'mutation { createApiKey(input: { name: "notebook" }) { apiKey { id } secret userErrors { code } } }');
    const { apiKey, secret } = created.data!.createApiKey;
    const onFirst = follow(client(app.graphqlUrl, secret), runId);
    const onSecond = follow(client(second.graphqlUrl, secret), runId);
    const bystander = client(second.graphqlUrl, lab.keys.VIEWER);
    const bystanderFollow = follow(bystander, runId);
    const otherProject = client(second.graphqlUrl, other.keys.OWNER);
    await Promise.all([onFirst.first, onSecond.first, bystanderFollow.first, wsExecute(otherProject, '{ viewer { role } }')]);

    const revoked = await gql(app.graphqlUrl, lab.keys.OWNER, 'mutation($id: ID!) { revokeApiKey(input: { id: $id }) { userErrors { code } } }', { id: apiKey.id });
    expect(revoked.data!.revokeApiKey.userErrors).toEqual([]);

    expect(await within(onFirst.ended)).toEqual({ outcome: 'error', code: 4403 });
    expect(await within(onSecond.ended)).toEqual({ outcome: 'error', code: 4403 });
    expect(onFirst.eventsAfter() + onSecond.eventsAfter()).toBe(0);
    // Other keys' connections, of this project and another, stay open and keep working.
    expect(await wsExecute(bystander, '{ viewer { role } }')).toEqual({ data: { viewer: { role: 'VIEWER' } } });
    expect(await wsExecute(otherProject, '{ viewer { role } }')).toEqual({ data: { viewer: { role: 'OWNER' } } });
    // And the key cannot reconnect.
    const again = (await wsExecute(client(second.graphqlUrl, secret), '{ viewer { role } }').catch((e) => e)) as { code?: number };
    expect(again.code).toBe(4403);
  });

  it("closes a member's connections when an owner changes their role; a new connection has the new role", async () => {
    const followed = follow(client(second.graphqlUrl, lab.keys.CLINICIAN), runId);
    await followed.first;
    const changed = await gql(app.graphqlUrl, lab.keys.OWNER, `mutation { addMember(input: { email: "clinician@revoke-lab.test", displayName: "C", role: VIEWER }) { membership { role } userErrors { code } } }`);
    expect(changed.data!.addMember).toEqual({ membership: { role: 'VIEWER' }, userErrors: [] });
    expect(await within(followed.ended)).toEqual({ outcome: 'error', code: 4403 });
    expect(await wsExecute(client(second.graphqlUrl, lab.keys.CLINICIAN), '{ viewer { role } }')).toEqual({ data: { viewer: { role: 'VIEWER' } } });
  });
});
