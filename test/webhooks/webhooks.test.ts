/**
 * Webhooks on the real server: deliveries through the job queue to a local receiver that verifies
 * every signature with the standardwebhooks package, retries on the (shortened) schedule,
 * Retry-After, 410 Gone, the failure streak, manual redelivery, secret rotation, isolation and roles.
 */
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { errorCodes, gql } from '../support/graphql-client';
import { seedPipeline } from '../support/pipeline-fixture';
import { referenceSelectorUpload, registerSelector, seedCandidates } from '../support/scoring-fixture';
import { eventually, WebhookReceiver } from '../support/webhook-receiver';
import { acceptance, addClinicians, AnnotationApi, gid, seedAnnotationFixture } from '../annotation/annotation-fixture';
import { fromGlobalId, toGlobalId } from '../../src/platform/ids';

jest.setTimeout(90_000);

const CREATE = `mutation($input: CreateWebhookEndpointInput!) {
  createWebhookEndpoint(input: $input) { endpoint { id url events enabled } secret userErrors { field message code } }
}`;
const UPDATE = `mutation($input: UpdateWebhookEndpointInput!) {
  updateWebhookEndpoint(input: $input) { endpoint { id enabled disabledReason consecutiveFailedDeliveries } userErrors { field message code } }
}`;
const ROTATE = `mutation($input: WebhookEndpointIdInput!) {
  rotateWebhookSecret(input: $input) { endpoint { id previousSecretExpiresAt } secret userErrors { field message code } }
}`;
const DELETE = `mutation($input: WebhookEndpointIdInput!) { deleteWebhookEndpoint(input: $input) { deletedEndpointId userErrors { field message code } } }`;
const REDELIVER = `mutation($input: RedeliverWebhookInput!) { redeliverWebhook(input: $input) { delivery { id status } userErrors { field message code } } }`;
const CANCEL = `mutation($input: CancelRunInput!) { cancelRun(input: $input) { run { id status } userErrors { field message code } } }`;
const ENDPOINT = `query($id: ID!) {
  node(id: $id) { ... on WebhookEndpoint {
    id enabled disabledReason consecutiveFailedDeliveries
    deliveries(first: 10) { totalCount edges { node {
      id webhookId eventType status attemptCount payload nextAttemptAt
      attempts(first: 10) { edges { node { id attemptNumber manual outcome statusCode latencyMs responseExcerpt error nextAttemptAt createdAt } } }
    } } }
  } }
}`;

interface Attempt {
  id: string;
  attemptNumber: number;
  manual: boolean;
  outcome: string;
  statusCode: number | null;
  latencyMs: number;
  responseExcerpt: string | null;
  error: string | null;
  nextAttemptAt: string | null;
  createdAt: string;
}
interface Delivery {
  id: string;
  webhookId: string;
  eventType: string;
  status: string;
  attemptCount: number;
  payload: { type: string; timestamp: string; data: Record<string, any> };
  attempts: Attempt[];
}
interface EndpointState {
  enabled: boolean;
  disabledReason: string | null;
  consecutiveFailedDeliveries: number;
  deliveries: Delivery[];
}

describe('webhooks', () => {
  let app: TestApp;
  let receiver: WebhookReceiver;
  let projectCount = 0;

  beforeAll(async () => {
    app = await startTestApp(
      {
        WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
        // Three retries: the last delay is the longest, so Retry-After has room below the cap.
        WEBHOOK_RETRY_SCHEDULE_MS: '100,100,1500',
        WEBHOOK_DISABLE_AFTER_FAILED_DELIVERIES: '2',
        WORKER_POLL_MS: '100',
      },
      { worker: true },
    );
  });
  beforeEach(async () => {
    receiver = await WebhookReceiver.start();
  });
  afterEach(async () => {
    await receiver?.close();
  });
  afterAll(async () => {
    await app?.stop();
  });

  const newProject = () => createTestProject(app, `hooks-${++projectCount}`);

  async function createEndpoint(project: TestProject, events = ['RUN_FINISHED', 'DATASET_CREATED'], url = receiver.url()): Promise<{ id: string; secret: string }> {
    const res = await gql(app.graphqlUrl, project.keys.OWNER, CREATE, { input: { url, events, description: 'partner lab' } });
    expect(res.errors).toBeUndefined();
    expect(res.data!.createWebhookEndpoint.userErrors).toEqual([]);
    const { endpoint, secret } = res.data!.createWebhookEndpoint;
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    receiver.verifyWith(secret);
    return { id: endpoint.id, secret };
  }

  async function endpointState(project: TestProject, endpointId: string): Promise<EndpointState> {
    const res = await gql(app.graphqlUrl, project.keys.OWNER, ENDPOINT, { id: endpointId });
    expect(res.errors).toBeUndefined();
    const node = res.data!.node;
    return {
      ...node,
      deliveries: node.deliveries.edges.map((e: any) => ({ ...e.node, attempts: e.node.attempts.edges.map((a: any) => a.node) })),
    };
  }

  /** A queued run with no job (no worker will take it), ended by cancelRun: `run.finished` without a worker run. */
  async function finishRun(project: TestProject): Promise<string> {
    const [{ id }]: { id: string }[] = await app.ds.query(`INSERT INTO runs (project_id, kind, status, total) VALUES ($1, 'CLUSTERING', 'QUEUED', 3) RETURNING id`, [project.id]);
    const runId = toGlobalId('Run', id);
    const res = await gql(app.graphqlUrl, project.keys.CURATOR, CANCEL, { input: { runId } });
    expect(res.data!.cancelRun).toEqual({ run: { id: runId, status: 'CANCELLED' }, userErrors: [] });
    return runId;
  }

  const settled = (state: EndpointState, count = 1) => state.deliveries.length >= count && state.deliveries.every((d) => d.status !== 'PENDING');

  /**
   * The endpoint once its deliveries are settled, read again: one read of `endpointState` takes the
   * endpoint and its deliveries in separate statements, so under load it could see a delivery
   * recorded by a transaction whose endpoint update it read just before that transaction committed.
   */
  async function settledState(what: string, project: TestProject, endpointId: string, count = 1): Promise<EndpointState> {
    await eventually(what, () => endpointState(project, endpointId), (s) => settled(s, count));
    return endpointState(project, endpointId);
  }

  it('delivers run.finished signed per Standard Webhooks, once per event', async () => {
    const lab = await newProject();
    const endpoint = await createEndpoint(lab);
    const runId = await finishRun(lab);
    await eventually('a delivery', () => receiver.received.length, (n) => n >= 1);
    const [got] = receiver.received;
    expect(got.verifiedBy).toEqual([true]);
    expect(got.headers['webhook-id']).toMatch(/^msg_/);
    expect(got.headers['webhook-timestamp']).toMatch(/^\d+$/);
    expect(got.verified).toMatchObject({
      type: 'run.finished',
      data: { runId, projectId: toGlobalId('Project', lab.id), kind: 'CLUSTERING', status: 'CANCELLED', counters: { total: 3, done: 0, failed: 0 } },
    });
    expect(Date.parse((got.verified as any).data.finishedAt)).not.toBeNaN();

    const state = await eventually('the delivery recorded', () => endpointState(lab, endpoint.id), (s) => settled(s));
    expect(state.deliveries).toHaveLength(1);
    const [delivery] = state.deliveries;
    expect(delivery).toMatchObject({ eventType: 'RUN_FINISHED', status: 'SUCCEEDED', attemptCount: 1, webhookId: got.headers['webhook-id'] });
    expect(delivery.attempts).toEqual([expect.objectContaining({ attemptNumber: 1, outcome: 'SUCCEEDED', statusCode: 200, responseExcerpt: 'ok', error: null, nextAttemptAt: null })]);

    // Cancelling the ended run again is not a second event.
    await gql(app.graphqlUrl, lab.keys.CURATOR, CANCEL, { input: { runId } });
    // A repeated job for an attempt already recorded (a retry after a crash) sends nothing.
    await app.ds.query(`SELECT graphile_worker.add_job('webhook-delivery', $1::json)`, [JSON.stringify({ deliveryId: fromGlobalId(delivery.id)!.id, attempt: 1 })]);
    await eventually('the repeated job to be done', async () => (await app.ds.query(`SELECT count(*)::int AS n FROM graphile_worker._private_jobs`))[0].n, (n: number) => n === 0);
    const after = await endpointState(lab, endpoint.id);
    expect(after.deliveries).toHaveLength(1);
    expect(after.deliveries[0].attempts).toHaveLength(1);
    expect(receiver.received).toHaveLength(1);
  });

  it('announces a run again when the job that ended it is retried, and delivers it once', async () => {
    const lab = await newProject();
    const endpoint = await createEndpoint(lab, ['RUN_FINISHED']);
    const [{ id }]: { id: string }[] = await app.ds.query(`INSERT INTO runs (project_id, kind, status) VALUES ($1, 'TRAINING', 'QUEUED') RETURNING id`, [lab.id]);
    // A listener after the webhooks' one fails the first time, as a crash or outage right after the status change would.
    const heard: string[] = [];
    app.services.runs.onFinished(async (run) => {
      if (run.id !== id) return;
      heard.push(run.status);
      if (heard.length === 1) throw new Error('listener outage');
    });
    // No worker handles TRAINING runs: the job ends the run FAILED at once.
    await app.ds.query(`SELECT graphile_worker.add_job('run', $1::json, job_key => $2)`, [JSON.stringify({ runId: id }), `run:${id}`]);
    await eventually('the retried announcement', () => heard.length, (n) => n >= 2, 30_000);
    expect(heard).toEqual(['FAILED', 'FAILED']);
    const state = await eventually('the delivery', () => endpointState(lab, endpoint.id), (st) => settled(st));
    expect(state.deliveries).toHaveLength(1);
    expect(state.deliveries[0].payload.data).toMatchObject({ runId: toGlobalId('Run', id), kind: 'TRAINING', status: 'FAILED' });
    expect(receiver.received).toHaveLength(1);
  });

  it('retries a failing endpoint on the schedule with the same webhook-id, logging every attempt', async () => {
    const lab = await newProject();
    const endpoint = await createEndpoint(lab, ['RUN_FINISHED']);
    receiver.answerWith([
      { status: 500, body: 'x'.repeat(5000) },
      { status: 502, body: 'bad gateway' },
    ]);
    await finishRun(lab);
    const state = await eventually('the retried delivery', () => endpointState(lab, endpoint.id), (s) => settled(s));
    const [delivery] = state.deliveries;
    expect(delivery.status).toBe('SUCCEEDED');
    expect(delivery.attemptCount).toBe(3);
    expect(receiver.received).toHaveLength(3);
    expect(new Set(receiver.received.map((r) => r.headers['webhook-id']))).toEqual(new Set([delivery.webhookId]));
    expect(receiver.received.every((r) => r.verifiedBy[0])).toBe(true);
    expect(delivery.attempts.map((a) => [a.attemptNumber, a.outcome, a.statusCode])).toEqual([
      [1, 'FAILED', 500],
      [2, 'FAILED', 502],
      [3, 'SUCCEEDED', 200],
    ]);
    expect(delivery.attempts[0].responseExcerpt).toBe('x'.repeat(1024));
    expect(delivery.attempts[0].error).toBe('HTTP 500');
    expect(delivery.attempts[0].nextAttemptAt).not.toBeNull();
    expect(delivery.attempts[2].nextAttemptAt).toBeNull();
    for (const a of delivery.attempts) expect(a.latencyMs).toBeGreaterThanOrEqual(0);
    // Each attempt ran no earlier than the time the one before scheduled it for.
    for (let i = 1; i < delivery.attempts.length; i++) expect(Date.parse(delivery.attempts[i].createdAt)).toBeGreaterThanOrEqual(Date.parse(delivery.attempts[i - 1].nextAttemptAt!));
    expect(state.consecutiveFailedDeliveries).toBe(0);
  });

  it('honours Retry-After on 503 and 429, capped at the longest delay of the schedule', async () => {
    const lab = await newProject();
    const endpoint = await createEndpoint(lab, ['RUN_FINISHED']);
    receiver.answerWith([
      { status: 503, headers: { 'retry-after': '1' } },
      { status: 429, headers: { 'retry-after': '3600' } },
    ]);
    await finishRun(lab);
    const state = await eventually('the delivery after Retry-After', () => endpointState(lab, endpoint.id), (s) => settled(s));
    const [first, second, third] = state.deliveries[0].attempts;
    const waited = (a: Attempt) => Date.parse(a.nextAttemptAt!) - Date.parse(a.createdAt);
    // The schedule asked for ~100 ms; the receiver asked for 1 s.
    expect(waited(first)).toBeGreaterThanOrEqual(1000 - 50);
    // The receiver asked for an hour; the schedule's longest delay (1.5 s) caps it. The attempt's
    // createdAt is its transaction's start, taken before the delay is computed: on a loaded machine
    // that gap is a few hundred ms, so the bound leaves room for it and still tells 1.5 s from an hour.
    expect(waited(second)).toBeLessThanOrEqual(1500 + 1000);
    expect(waited(second)).toBeGreaterThanOrEqual(1000);
    expect(third.outcome).toBe('SUCCEEDED');
    expect(state.deliveries[0].status).toBe('SUCCEEDED');
  });

  it('stops at once and disables the endpoint on 410 Gone', async () => {
    const lab = await newProject();
    const endpoint = await createEndpoint(lab, ['RUN_FINISHED']);
    receiver.answerWith([], { status: 410, body: 'gone' });
    await finishRun(lab);
    const state = await settledState('the 410', lab, endpoint.id);
    expect(state.enabled).toBe(false);
    expect(state.disabledReason).toMatch(/410/);
    expect(state.deliveries[0]).toMatchObject({ status: 'FAILED', attemptCount: 1, nextAttemptAt: null });
    expect(receiver.received).toHaveLength(1);

    // A disabled endpoint gets no new deliveries.
    await finishRun(lab);
    await new Promise((r) => setTimeout(r, 500));
    expect((await endpointState(lab, endpoint.id)).deliveries).toHaveLength(1);
    expect(receiver.received).toHaveLength(1);
  });

  it('disables an endpoint after a streak of failed deliveries; redelivery after enabling it again', async () => {
    const lab = await newProject();
    const endpoint = await createEndpoint(lab, ['RUN_FINISHED']);
    receiver.answerWith([], { status: 500, body: 'down' });
    await finishRun(lab);
    const one = await settledState('the first failed delivery', lab, endpoint.id);
    expect(one).toMatchObject({ enabled: true, consecutiveFailedDeliveries: 1 });
    expect(one.deliveries[0]).toMatchObject({ status: 'FAILED', attemptCount: 4 });
    expect(one.deliveries[0].attempts.map((a) => a.outcome)).toEqual(['FAILED', 'FAILED', 'FAILED', 'FAILED']);
    expect(one.deliveries[0].attempts[3].nextAttemptAt).toBeNull();

    await finishRun(lab);
    const two = await settledState('the second failed delivery', lab, endpoint.id, 2);
    expect(two).toMatchObject({ enabled: false, consecutiveFailedDeliveries: 2 });
    expect(two.disabledReason).toMatch(/2 deliveries in a row/);
    const failed = two.deliveries[1];

    // Redelivering to a disabled endpoint is refused; enabling it resets the streak.
    const refused = await gql(app.graphqlUrl, lab.keys.OWNER, REDELIVER, { input: { deliveryId: failed.id } });
    expect(refused.data!.redeliverWebhook.userErrors).toEqual([expect.objectContaining({ code: 'CONFLICT', field: ['input', 'deliveryId'] })]);
    const enabled = await gql(app.graphqlUrl, lab.keys.OWNER, UPDATE, { input: { id: endpoint.id, enabled: true } });
    expect(enabled.data!.updateWebhookEndpoint.endpoint).toMatchObject({ enabled: true, disabledReason: null, consecutiveFailedDeliveries: 0 });

    receiver.reset();
    receiver.answerWith([], { status: 204 });
    const redelivered = await gql(app.graphqlUrl, lab.keys.OWNER, REDELIVER, { input: { deliveryId: failed.id } });
    expect(redelivered.data!.redeliverWebhook).toEqual({ delivery: { id: failed.id, status: 'PENDING' }, userErrors: [] });
    const after = await eventually('the redelivery', () => endpointState(lab, endpoint.id), (s) => settled(s, 2));
    const again = after.deliveries.find((d) => d.id === failed.id)!;
    expect(again.status).toBe('SUCCEEDED');
    expect(again.attempts).toHaveLength(5);
    expect(again.attempts[4]).toMatchObject({ attemptNumber: 5, manual: true, outcome: 'SUCCEEDED', statusCode: 204 });
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0].headers['webhook-id']).toBe(failed.webhookId);
    expect(receiver.received[0].verifiedBy).toEqual([true]);

    // A delivery still being attempted cannot be redelivered on top of itself.
    const pending = await app.ds.query(`UPDATE webhook_deliveries SET status = 'PENDING' WHERE id = $1 RETURNING id`, [fromGlobalId(failed.id)!.id]);
    expect(pending[0]).toHaveLength(1);
    const conflict = await gql(app.graphqlUrl, lab.keys.OWNER, REDELIVER, { input: { deliveryId: failed.id } });
    expect(conflict.data!.redeliverWebhook.userErrors).toEqual([expect.objectContaining({ code: 'CONFLICT' })]);
  });

  it('signs with the old and the new secret during a rotation, then with the new one only', async () => {
    const lab = await newProject();
    const endpoint = await createEndpoint(lab, ['RUN_FINISHED']);
    const rotated = await gql(app.graphqlUrl, lab.keys.OWNER, ROTATE, { input: { id: endpoint.id } });
    const { secret, endpoint: after } = rotated.data!.rotateWebhookSecret;
    expect(secret).not.toBe(endpoint.secret);
    expect(Date.parse(after.previousSecretExpiresAt)).toBeGreaterThan(Date.now());
    receiver.verifyWith(endpoint.secret, secret);
    await finishRun(lab);
    await eventually('a delivery', () => receiver.received.length, (n) => n >= 1);
    expect(receiver.received[0].headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(receiver.received[0].verifiedBy).toEqual([true, true]);

    // The grace period over, only the new secret signs.
    await app.ds.query(`UPDATE webhook_endpoints SET previous_secret_expires_at = now() - interval '1 second' WHERE id = $1`, [fromGlobalId(endpoint.id)!.id]);
    await finishRun(lab);
    await eventually('a second delivery', () => receiver.received.length, (n) => n >= 2);
    expect(receiver.received[1].headers['webhook-signature'].split(' ')).toHaveLength(1);
    expect(receiver.received[1].verifiedBy).toEqual([false, true]);
  });

  it('delivers dataset.created from the creation transaction, only to endpoints that subscribed', async () => {
    const lab = await newProject();
    const datasets = await createEndpoint(lab, ['DATASET_CREATED']);
    const runsOnly = await createEndpoint(lab, ['RUN_FINISHED']);
    receiver.verifyWith(datasets.secret);
    const { imageIds } = await seedPipeline(app, lab, { demonstrations: false });
    const candidateIds = await seedCandidates(app, lab, imageIds, 2);
    const registered = await registerSelector(app, lab.keys.CURATOR, 'reference', referenceSelectorUpload(), { activate: true });
    const selectorId = fromGlobalId(registered.data!.registerSelectorModel.selectorModel.id)!.id;
    await app.ds.query(`INSERT INTO scores (project_id, candidate_id, selector_model_id, value) SELECT $1, c, $2, 1 FROM unnest($3::uuid[]) AS c`, [lab.id, selectorId, candidateIds]);
    const CREATE_DATASET = `mutation($input: CreateDatasetInput!) { createDataset(input: $input) { dataset { id name version itemCount contentHash } userErrors { code } } }`;

    // A creation that fails writes no event.
    const refused = await gql(app.graphqlUrl, lab.keys.CURATOR, CREATE_DATASET, { input: { name: 'empty', minScore: 1000 } });
    expect(refused.data!.createDataset.userErrors).toHaveLength(1);

    const created = await gql(app.graphqlUrl, lab.keys.CURATOR, CREATE_DATASET, { input: { name: 'top', topK: 3 } });
    const dataset = created.data!.createDataset.dataset;
    await eventually('the dataset.created delivery', () => receiver.received.length, (n) => n >= 1);
    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0].verified).toMatchObject({
      type: 'dataset.created',
      data: { datasetId: dataset.id, projectId: toGlobalId('Project', lab.id), name: 'top', version: 1, itemCount: 3, contentHash: dataset.contentHash },
    });
    expect((await endpointState(lab, datasets.id)).deliveries).toHaveLength(1);
    expect((await endpointState(lab, runsOnly.id)).deliveries).toHaveLength(0);
  });

  it('delivers annotation.campaign.completed once, when the last slot of a campaign is submitted', async () => {
    const lab = await newProject();
    const endpoint = await createEndpoint(lab, ['ANNOTATION_CAMPAIGN_COMPLETED']);
    const fixture = await seedAnnotationFixture(app, lab, { twoAnswer: 2 });
    const [first, second] = await addClinicians(app, lab, 2, 'hook');
    const annotations = new AnnotationApi(app);
    const campaignId = await annotations.campaign(lab.keys.CURATOR, { name: 'two items', taskKind: 'ACCEPTANCE', items: { generationRunId: gid('Run', fixture.runId) }, overlap: 1, routing: 'ORDERED' });
    const work = async (key: string) => {
      const next = await annotations.next(key, campaignId);
      const itemId = next.data!.nextAnnotationTask.task.item.id;
      const submitted = await annotations.submit(key, { itemId, acceptance: acceptance() });
      expect(submitted.data!.submitAnnotation.userErrors).toEqual([]);
      return itemId;
    };

    await work(first.key);
    // One of two items done: nothing is announced.
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.received).toHaveLength(0);
    const lastItem = await work(second.key);
    await eventually('the campaign.completed delivery', () => receiver.received.length, (n) => n >= 1);
    expect(receiver.received[0].verified).toMatchObject({
      type: 'annotation.campaign.completed',
      data: { campaignId, projectId: toGlobalId('Project', lab.id), name: 'two items', items: 2, submissions: 2 },
    });
    // An edit of a submission fills no slot: no second event.
    const edited = await annotations.submit(second.key, { itemId: lastItem, acceptance: acceptance(2, () => true), comment: 'changed my mind' });
    expect(edited.data!.submitAnnotation.userErrors).toEqual([]);
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.received).toHaveLength(1);
    expect((await endpointState(lab, endpoint.id)).deliveries).toHaveLength(1);
  });

  it('keeps endpoints and deliveries to their project and to owners', async () => {
    const lab = await newProject();
    const other = await newProject();
    const endpoint = await createEndpoint(lab, ['RUN_FINISHED']);
    await finishRun(lab);
    const state = await eventually('a delivery', () => endpointState(lab, endpoint.id), (s) => settled(s));
    const deliveryId = state.deliveries[0].id;
    const attemptId = state.deliveries[0].attempts[0].id;

    for (const id of [endpoint.id, deliveryId, attemptId]) {
      expect(errorCodes(await gql(app.graphqlUrl, other.keys.OWNER, `query($id: ID!) { node(id: $id) { id } }`, { id }))).toEqual(['NOT_FOUND']);
      expect(errorCodes(await gql(app.graphqlUrl, lab.keys.CURATOR, `query($id: ID!) { node(id: $id) { id } }`, { id }))).toEqual(['NOT_FOUND']);
    }
    const list = await gql(app.graphqlUrl, other.keys.OWNER, `{ webhookEndpoints(first: 10) { totalCount edges { node { id } } } }`);
    expect(list.data!.webhookEndpoints).toEqual({ totalCount: 0, edges: [] });
    const mine = await gql(app.graphqlUrl, lab.keys.OWNER, `{ webhookEndpoints(first: 10) { totalCount edges { node { id url events } } } }`);
    expect(mine.data!.webhookEndpoints).toEqual({ totalCount: 1, edges: [{ node: { id: endpoint.id, url: receiver.url(), events: ['RUN_FINISHED'] } }] });

    const notFound = { code: 'NOT_FOUND', field: ['input', 'id'] };
    expect((await gql(app.graphqlUrl, other.keys.OWNER, UPDATE, { input: { id: endpoint.id, enabled: false } })).data!.updateWebhookEndpoint.userErrors).toEqual([expect.objectContaining(notFound)]);
    expect((await gql(app.graphqlUrl, other.keys.OWNER, ROTATE, { input: { id: endpoint.id } })).data!.rotateWebhookSecret.userErrors).toEqual([expect.objectContaining(notFound)]);
    expect((await gql(app.graphqlUrl, other.keys.OWNER, DELETE, { input: { id: endpoint.id } })).data!.deleteWebhookEndpoint.userErrors).toEqual([expect.objectContaining(notFound)]);
    expect((await gql(app.graphqlUrl, other.keys.OWNER, REDELIVER, { input: { deliveryId } })).data!.redeliverWebhook.userErrors).toEqual([
      expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'deliveryId'] }),
    ]);
    // Events of another project never reach this endpoint.
    await finishRun(other);
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.received).toHaveLength(1);

    for (const role of ['VIEWER', 'CLINICIAN', 'CURATOR'] as const) {
      const key = lab.keys[role];
      expect(errorCodes(await gql(app.graphqlUrl, key, CREATE, { input: { url: receiver.url(), events: ['RUN_FINISHED'] } }))).toEqual(['FORBIDDEN']);
      expect(errorCodes(await gql(app.graphqlUrl, key, `{ webhookEndpoints(first: 1) { totalCount } }`))).toEqual(['FORBIDDEN']);
      expect(errorCodes(await gql(app.graphqlUrl, key, REDELIVER, { input: { deliveryId } }))).toEqual(['FORBIDDEN']);
    }

    const deleted = await gql(app.graphqlUrl, lab.keys.OWNER, DELETE, { input: { id: endpoint.id } });
    expect(deleted.data!.deleteWebhookEndpoint).toEqual({ deletedEndpointId: endpoint.id, userErrors: [] });
    expect(errorCodes(await gql(app.graphqlUrl, lab.keys.OWNER, `query($id: ID!) { node(id: $id) { id } }`, { id: deliveryId }))).toEqual(['NOT_FOUND']);
  });

  it('answers input mistakes as userErrors', async () => {
    const lab = await newProject();
    const create = (input: Record<string, unknown>) => gql(app.graphqlUrl, lab.keys.OWNER, CREATE, { input });
    expect((await create({ url: 'ftp://example.com/x', events: ['RUN_FINISHED'] })).data!.createWebhookEndpoint.userErrors).toEqual([expect.objectContaining({ code: 'INVALID', field: ['input', 'url'] })]);
    expect((await create({ url: 'not a url', events: ['RUN_FINISHED'] })).data!.createWebhookEndpoint.userErrors).toEqual([expect.objectContaining({ code: 'INVALID', field: ['input', 'url'] })]);
    expect((await create({ url: 'https://user:pw@example.com/x', events: ['RUN_FINISHED'] })).data!.createWebhookEndpoint.userErrors).toEqual([
      expect.objectContaining({ code: 'INVALID', field: ['input', 'url'] }),
    ]);
    expect((await create({ url: 'https://example.com/x', events: [] })).data!.createWebhookEndpoint.userErrors).toEqual([expect.objectContaining({ field: ['input', 'events'] })]);
    expect((await gql(app.graphqlUrl, lab.keys.OWNER, ROTATE, { input: { id: 'not-an-id' } })).data!.rotateWebhookSecret.userErrors).toEqual([
      expect.objectContaining({ code: 'INVALID', field: ['input', 'id'] }),
    ]);
    const list = await gql(app.graphqlUrl, lab.keys.OWNER, `{ webhookEndpoints(first: 0) { totalCount } }`);
    expect(errorCodes(list)).toEqual(['BAD_USER_INPUT']);
  });
});
