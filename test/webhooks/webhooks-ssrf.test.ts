/**
 * Server-side request forgery: with private networks not allowed (the default), literal private,
 * loopback and link-local addresses are refused when an endpoint is registered, and names that
 * resolve to such addresses (`localhost`, the machine's own name from /etc/hosts) are refused when
 * the delivery connects; the refusal is logged as an attempt and the receiver never hears of it.
 */
import os from 'node:os';
import dns from 'node:dns/promises';
import net from 'node:net';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { eventually, WebhookReceiver } from '../support/webhook-receiver';
import { toGlobalId } from '../../src/platform/ids';

jest.setTimeout(60_000);

const CREATE = `mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { endpoint { id url } secret userErrors { field message code } }
}`;
const UPDATE = `mutation($input: UpdateWebhookEndpointInput!) { updateWebhookEndpoint(input: $input) { endpoint { id url } userErrors { field message code } } }`;
const DELIVERIES = `query($id: ID!) {
  node(id: $id) { ... on WebhookEndpoint { deliveries(first: 10) { edges { node { status attemptCount attempts(first: 10) { edges { node { outcome statusCode error nextAttemptAt } } } } } } } }
}`;

describe('webhooks: server-side request forgery', () => {
  let app: TestApp;
  let lab: TestProject;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    // WEBHOOK_ALLOW_PRIVATE_NETWORKS is left at its default (false).
    app = await startTestApp({ WEBHOOK_RETRY_SCHEDULE_MS: '50', WORKER_POLL_MS: '100' }, { worker: true });
    lab = await createTestProject(app, 'ssrf-lab');
    receiver = await WebhookReceiver.start('0.0.0.0');
  });
  afterAll(async () => {
    await receiver?.close();
    await app?.stop();
  });

  const create = (url: string) => gql(app.graphqlUrl, lab.keys.OWNER, CREATE, { input: { url, events: ['RUN_FINISHED'] } });

  it.each([
    ['loopback', () => receiver.url('127.0.0.1')],
    ['loopback, elsewhere in 127/8', () => receiver.url('127.1.2.3')],
    ['IPv6 loopback', () => receiver.url('[::1]')],
    ['IPv4-mapped IPv6 loopback', () => receiver.url('[::ffff:127.0.0.1]')],
    ['unspecified', () => receiver.url('0.0.0.0')],
    ['private 10/8', () => 'http://10.0.0.5/hooks'],
    ['private 172.16/12', () => 'https://172.20.1.1/hooks'],
    ['private 192.168/16', () => 'http://192.168.1.10:8080/hooks'],
    ['link-local (cloud metadata)', () => 'http://169.254.169.254/latest/meta-data/'],
    ['carrier-grade NAT', () => 'http://100.64.0.1/hooks'],
    ['IPv6 unique local', () => 'http://[fd00::1]/hooks'],
    ['IPv6 link-local', () => 'http://[fe80::1]/hooks'],
  ])('refuses a %s address at registration', async (_what, url) => {
    const res = await create(url());
    expect(res.errors).toBeUndefined();
    expect(res.data!.createWebhookEndpoint).toEqual({
      endpoint: null,
      secret: null,
      userErrors: [expect.objectContaining({ code: 'INVALID', field: ['input', 'url'], message: expect.stringMatching(/private, loopback or link-local/) })],
    });
  });

  it('accepts a public address, and refuses a private one in an update', async () => {
    const created = await create('https://203.0.113.10/hooks');
    expect(created.data!.createWebhookEndpoint.userErrors).toEqual([]);
    const id = created.data!.createWebhookEndpoint.endpoint.id;
    const updated = await gql(app.graphqlUrl, lab.keys.OWNER, UPDATE, { input: { id, url: 'http://127.0.0.1:9/hooks' } });
    expect(updated.data!.updateWebhookEndpoint.userErrors).toEqual([expect.objectContaining({ code: 'INVALID', field: ['input', 'url'] })]);
    await gql(app.graphqlUrl, lab.keys.OWNER, `mutation($input: WebhookEndpointIdInput!) { deleteWebhookEndpoint(input: $input) { deletedEndpointId } }`, { input: { id } });
  });

  it('refuses names that resolve to private addresses when it connects, logging the refusal', async () => {
    const names = ['localhost'];
    // The machine's own name, when /etc/hosts (or DNS) points it at a private or loopback address.
    const own = await dns.lookup(os.hostname()).catch(() => null);
    if (own && net.isIP(own.address) && (own.address.startsWith('127.') || own.address.startsWith('10.') || own.address.startsWith('192.168.'))) names.push(os.hostname());
    const endpoints: string[] = [];
    for (const name of names) {
      const res = await create(receiver.url(name));
      expect(res.data!.createWebhookEndpoint.userErrors).toEqual([]);
      endpoints.push(res.data!.createWebhookEndpoint.endpoint.id);
    }

    const [{ id: runId }]: { id: string }[] = await app.ds.query(`INSERT INTO runs (project_id, kind, status) VALUES ($1, 'CLUSTERING', 'QUEUED') RETURNING id`, [lab.id]);
    const cancel = await gql(app.graphqlUrl, lab.keys.CURATOR, `mutation($input: CancelRunInput!) { cancelRun(input: $input) { run { status } } }`, { input: { runId: toGlobalId('Run', runId) } });
    expect(cancel.data!.cancelRun.run.status).toBe('CANCELLED');

    for (const id of endpoints) {
      const deliveries = await eventually(
        'the refused delivery to end',
        async () => (await gql(app.graphqlUrl, lab.keys.OWNER, DELIVERIES, { id })).data!.node.deliveries.edges.map((e: any) => e.node),
        (ds: any[]) => ds.length === 1 && ds[0].status !== 'PENDING',
      );
      expect(deliveries[0]).toMatchObject({ status: 'FAILED', attemptCount: 2 });
      const attempts = deliveries[0].attempts.edges.map((e: any) => e.node);
      expect(attempts).toHaveLength(2);
      for (const attempt of attempts) {
        expect(attempt).toMatchObject({ outcome: 'REFUSED', statusCode: null });
        expect(attempt.error).toMatch(/127\.0\.0\.1.*not allowed/);
      }
    }
    expect(receiver.received).toEqual([]);
  });
});
