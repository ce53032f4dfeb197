import WebSocket from 'ws';
import { createClient } from 'graphql-ws';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { seedPipeline, waitForRun } from '../support/pipeline-fixture';
import { referenceSelectorUpload, registerSelector, seedCandidates, START_SCORING } from '../support/scoring-fixture';
import { fromGlobalId } from '../../src/platform/ids';
import { WebhookReceiver } from '../support/webhook-receiver';
import { setLogLevel } from '../../src/platform/logging';

/**
 * Request ids (issue 13): each HTTP request gets one (the caller's sane `x-request-id`, else a new
 * one), echoed in the response; every line logged inside carries it, and a run the request starts
 * carries it through the job queue into the worker's log lines for that run.
 */

type LogLine = Record<string, unknown> & { message: string };

describe('request ids', () => {
  let app: TestApp;
  let lab: TestProject;
  const lines: LogLine[] = [];
  let restore: () => void;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    app = await startTestApp({ WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' }, { worker: true });
    lab = await createTestProject(app, 'reqid');
    const { imageIds } = await seedPipeline(app, lab);
    await seedCandidates(app, lab, imageIds, 2);
    const registered = await registerSelector(app, lab.keys.CURATOR, 'reference', referenceSelectorUpload(), { activate: true });
    expect(registered.data!.registerSelectorModel.userErrors).toEqual([]);
    // Capture what the logger writes (api and in-process worker alike), one JSON object a line.
    setLogLevel('info');
    const write = process.stdout.write.bind(process.stdout);
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation(((chunk: string | Uint8Array, ...rest: unknown[]) => {
      for (const text of String(chunk).split('\n')) {
        if (!text.startsWith('{')) continue;
        try {
          lines.push(JSON.parse(text));
        } catch {
          /* not a log line */
        }
      }
      return (write as (...a: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stdout.write);
    restore = () => spy.mockRestore();
  }, 120_000);

  afterAll(async () => {
    restore?.();
    setLogLevel('error');
    await app?.stop();
    await receiver?.close();
  });

  async function post(query: string, variables: Record<string, unknown>, headers: Record<string, string> = {}) {
    const res = await fetch(app.graphqlUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${lab.keys.CURATOR}`, ...headers },
      body: JSON.stringify({ query, variables }),
    });
    return { requestId: res.headers.get('x-request-id'), body: (await res.json()) as { data?: Record<string, any>; errors?: unknown[] } };
  }

  it('follows a request that starts a run into the worker log lines of that run', async () => {
    const started = await post(START_SCORING, { input: {} }, { 'x-request-id': 'test-123' });
    expect(started.requestId).toBe('test-123');
    expect(started.body.errors).toBeUndefined();
    const run = started.body.data!.startScoringRun.run;
    expect(run).toBeTruthy();
    const finished = await waitForRun(app, lab.keys.VIEWER, run.id);
    expect(finished.status).toBe('SUCCEEDED');
    const runId = fromGlobalId(run.id)!.id;

    const access = lines.filter((l) => l.message === 'request' && l.requestId === 'test-123');
    expect(access).toHaveLength(1);
    const ofRun = lines.filter((l) => l.runId === runId);
    // Written by the worker, which took the run from the queue, not by the request's own code path.
    expect(ofRun.map((l) => l.message)).toEqual(expect.arrayContaining(['run attempt started', 'scoring attempt finished', 'run attempt completed']));
    for (const line of ofRun) expect(line.requestId).toBe('test-123');
  });

  it('gives a request without a sane id a new one, and a second run its own id', async () => {
    const plain = await post('{ viewer { role } }', {});
    expect(plain.requestId).toMatch(/^[0-9a-f-]{36}$/);
    const forged = await post('{ viewer { role } }', {}, { 'x-request-id': 'x'.repeat(200) });
    expect(forged.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(forged.requestId).not.toBe(plain.requestId);
    const spaced = await post('{ viewer { role } }', {}, { 'x-request-id': 'two words' });
    expect(spaced.requestId).not.toBe('two words');

    const started = await post(START_SCORING, { input: {} });
    const generated = started.requestId!;
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    await waitForRun(app, lab.keys.VIEWER, started.body.data!.startScoringRun.run.id);
    const runId = fromGlobalId(started.body.data!.startScoringRun.run.id)!.id;
    const ofRun = lines.filter((l) => l.runId === runId);
    expect(ofRun.length).toBeGreaterThan(0);
    for (const line of ofRun) expect(line.requestId).toBe(generated);
  });

  it('a WebSocket operation passes the requestId of its extensions to the run it starts', async () => {
    const client = createClient({ url: app.graphqlUrl.replace(/^http/, 'ws'), webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${lab.keys.CURATOR}` }, retryAttempts: 0, lazy: true });
    try {
      const result = await new Promise<Record<string, any>>((resolve, reject) => {
        let value: Record<string, any> = {};
        client.subscribe({ query: START_SCORING, variables: { input: {} }, extensions: { requestId: 'ws-456' } }, { next: (v) => (value = v as Record<string, any>), error: reject, complete: () => resolve(value) });
      });
      expect(result.errors).toBeUndefined();
      const run = result.data.startScoringRun.run;
      await waitForRun(app, lab.keys.VIEWER, run.id);
      const ofRun = lines.filter((l) => l.runId === fromGlobalId(run.id)!.id);
      expect(ofRun.map((l) => l.message)).toContain('run attempt started');
      for (const line of ofRun) expect(line.requestId).toBe('ws-456');
    } finally {
      await client.dispose();
    }
  });

  it('a webhook delivery of the run.finished event is logged by the worker with the request id that started the run', async () => {
    const created = await post(
      `mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { endpoint { id } userErrors { code message } } }`,
      { input: { url: receiver.url(), events: ['RUN_FINISHED'] } },
      { authorization: `Bearer ${lab.keys.OWNER}` },
    );
    expect(created.body.data!.createWebhookEndpoint.userErrors).toEqual([]);
    const started = await post(START_SCORING, { input: {} }, { 'x-request-id': 'hook-789' });
    const run = started.body.data!.startScoringRun.run;
    await waitForRun(app, lab.keys.VIEWER, run.id);
    const deadline = Date.now() + 20_000;
    while (!lines.some((l) => l.message === 'webhook attempt') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const attempts = lines.filter((l) => l.message === 'webhook attempt');
    expect(attempts).toEqual([expect.objectContaining({ requestId: 'hook-789', outcome: 'SUCCEEDED', attempt: 1 })]);
    expect(receiver.received).toHaveLength(1);
  });
});
