/**
 * /metrics in the Prometheus text format on the api and on a worker process, read back with a
 * strict parser: operations by root field and outcome with latency histograms, runs by kind and
 * status, items, queue depth and age, model calls with tokens and cost, event-loop delay, pool use.
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { FakeOpenAIServer } from '../fakes/openai-server';
import { WorkerProcess } from '../support/worker-process';
import { eventually } from '../support/webhook-receiver';
import { Family, parsePrometheusText, valueOf } from '../support/prometheus-text';

jest.setTimeout(120_000);

async function scrape(url: string, authorization?: string): Promise<Map<string, Family>> {
  const res = await fetch(url, { headers: authorization ? { authorization } : {} });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await res.text());
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('metrics', () => {
  let fake: FakeOpenAIServer;
  let app: TestApp;
  let lab: TestProject;
  const metricsUrl = () => `${app.url}/metrics`;

  beforeAll(async () => {
    fake = await FakeOpenAIServer.start();
    app = await startTestApp({ OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.baseUrl, LLM_RETRY_BASE_MS: '20', LLM_MAX_ATTEMPTS: '1' }, { worker: true });
    lab = await createTestProject(app, 'metrics-lab');
  });
  afterAll(async () => {
    await app?.stop();
    await fake?.close();
  });

  it('counts GraphQL operations by root field and outcome, with latency histograms', async () => {
    for (let i = 0; i < 2; i++) expect((await gql(app.graphqlUrl, lab.keys.VIEWER, '{ images(first: 5) { totalCount } }')).errors).toBeUndefined();
    await gql(app.graphqlUrl, lab.keys.VIEWER, 'mutation { createDataset(input: { name: "x", topK: 1 }) { userErrors { code } } }');
    await gql(app.graphqlUrl, lab.keys.OWNER, 'mutation { createWebhookEndpoint(input: { url: "ftp://x", events: [RUN_FINISHED] }) { userErrors { code } } }');
    await gql(app.graphqlUrl, lab.keys.OWNER, '{ images(first: 0) { totalCount } }');

    const m = await scrape(metricsUrl());
    const ops = (labels: Record<string, string>) => valueOf(m, 'bmv_graphql_operations_total', { role: 'api', ...labels });
    expect(ops({ operation: 'images', type: 'query', outcome: 'ok' })).toBe(2);
    expect(ops({ operation: 'images', type: 'query', outcome: 'BAD_USER_INPUT' })).toBe(1);
    expect(ops({ operation: 'createDataset', type: 'mutation', outcome: 'FORBIDDEN' })).toBe(1);
    expect(ops({ operation: 'createWebhookEndpoint', type: 'mutation', outcome: 'user_errors' })).toBe(1);
    expect(m.get('bmv_graphql_operation_duration_seconds')!.type).toBe('histogram');
    expect(valueOf(m, 'bmv_graphql_operation_duration_seconds', { operation: 'images', type: 'query' }, 'bmv_graphql_operation_duration_seconds_count')).toBe(3);
    expect(valueOf(m, 'bmv_http_request_duration_seconds', { route: 'graphql', method: 'POST', status: '200' }, 'bmv_http_request_duration_seconds_count')).toBeGreaterThanOrEqual(4);
    // The process itself: event-loop delay, and the database pool.
    expect(valueOf(m, 'nodejs_eventloop_lag_p99_seconds')).toBeGreaterThan(0);
    expect(valueOf(m, 'bmv_db_pool_connections', { state: 'max' })).toBe(10);
    expect(valueOf(m, 'bmv_db_pool_connections', { state: 'total' })).toBeGreaterThanOrEqual(1);
  });

  it('reads runs by kind and status, items, throughput and the job queue from the database', async () => {
    await app.ds.query(
      `INSERT INTO runs (project_id, kind, status, total, done, failed, started_at, finished_at) VALUES
         ($1, 'SCORING', 'SUCCEEDED', 6, 5, 1, now() - interval '1 minute', now()),
         ($1, 'SCORING', 'SUCCEEDED', 6, 5, 1, now() - interval '1 minute', now()),
         ($1, 'RATING', 'QUEUED', 0, 0, 0, NULL, NULL),
         ($1, 'GENERATION', 'RUNNING', 100, 20, 0, now() - interval '10 seconds', NULL)`,
      [lab.id],
    );
    // Tasks no worker of this app handles: one ready for a minute already, one scheduled for later.
    await app.ds.query(`SELECT graphile_worker.add_job('metrics-probe', '{}'::json, run_at => now() - interval '60 seconds')`);
    await app.ds.query(`SELECT graphile_worker.add_job('metrics-probe', '{}'::json, run_at => now() + interval '1 hour')`);

    const m = await scrape(metricsUrl());
    expect(valueOf(m, 'bmv_runs', { kind: 'SCORING', status: 'SUCCEEDED' })).toBe(2);
    expect(valueOf(m, 'bmv_runs', { kind: 'RATING', status: 'QUEUED' })).toBe(1);
    expect(valueOf(m, 'bmv_runs', { kind: 'CLUSTERING', status: 'FAILED' })).toBe(0);
    expect(valueOf(m, 'bmv_run_items', { kind: 'SCORING', outcome: 'done' })).toBe(10);
    expect(valueOf(m, 'bmv_run_items', { kind: 'SCORING', outcome: 'failed' })).toBe(2);
    // 20 items in ~10 s (a little more by the time of the scrape).
    const rate = valueOf(m, 'bmv_run_items_per_second', { kind: 'GENERATION' })!;
    expect(rate).toBeGreaterThan(1);
    expect(rate).toBeLessThanOrEqual(2);
    expect(valueOf(m, 'bmv_job_queue_jobs', { task: 'metrics-probe', state: 'ready' })).toBe(1);
    expect(valueOf(m, 'bmv_job_queue_jobs', { task: 'metrics-probe', state: 'scheduled' })).toBe(1);
    expect(valueOf(m, 'bmv_job_queue_oldest_ready_age_seconds', { task: 'metrics-probe' })).toBeGreaterThanOrEqual(60);
  });

  it('counts model calls by outcome, with tokens and cost at the configured prices', async () => {
    fake.enqueueChat({ reply: 'A short answer.', promptTokens: 1000, completionTokens: 500 }, { status: 400, message: 'bad request' });
    const limits = { runId: crypto.randomUUID() };
    const ok = await app.services.llm.chat({ messages: [{ role: 'user', content: 'hello' }] }, limits);
    expect(ok.reply.promptTokens).toBe(1000);
    await expect(app.services.llm.chat({ messages: [{ role: 'user', content: 'hello' }] }, limits)).rejects.toThrow();

    const m = await scrape(metricsUrl());
    expect(valueOf(m, 'bmv_model_calls_total', { kind: 'chat', outcome: 'ok' })).toBe(1);
    expect(valueOf(m, 'bmv_model_calls_total', { kind: 'chat', outcome: 'client_error' })).toBe(1);
    expect(valueOf(m, 'bmv_model_tokens_total', { kind: 'chat', type: 'prompt' })).toBe(1000);
    expect(valueOf(m, 'bmv_model_tokens_total', { kind: 'chat', type: 'completion' })).toBe(500);
    // Default prices: $2.5 and $10 per million prompt and completion tokens.
    expect(valueOf(m, 'bmv_model_cost_usd_total', { kind: 'chat' })).toBeCloseTo((1000 * 2.5 + 500 * 10) / 1e6, 9);
  });

  it('serves /metrics from a worker process, behind the bearer token when one is set', async () => {
    const port = await freePort();
    const worker = WorkerProcess.spawn({ DATABASE_URL: app.databaseUrl, WORKER_METRICS_PORT: String(port), METRICS_BEARER_TOKEN: 'metrics-token-1', LOG_LEVEL: 'error' });
    try {
      await worker.ready(90_000);
      const url = `http://127.0.0.1:${port}/metrics`;
      await eventually('the worker metrics port', () => fetch(url).then((r) => r.status, () => 0), (status) => status !== 0, 30_000);
      expect((await fetch(url)).status).toBe(401);
      expect((await fetch(url, { headers: { authorization: 'Bearer wrong-token-1' } })).status).toBe(401);
      const m = await scrape(url, 'Bearer metrics-token-1');
      expect(valueOf(m, 'bmv_runs', { role: 'worker', kind: 'SCORING', status: 'SUCCEEDED' })).toBe(2);
      expect(valueOf(m, 'nodejs_eventloop_lag_p99_seconds', { role: 'worker' })).toBeGreaterThan(0);
      expect(m.has('bmv_model_calls_total')).toBe(true);
    } finally {
      await worker.kill();
    }
  });

  it('rejects malformed expositions (the parser is strict)', () => {
    expect(() => parsePrometheusText('x 1\n')).toThrow(/undeclared/);
    expect(() => parsePrometheusText('# TYPE x gauge\nx{a="b} 1\n')).toThrow();
    expect(() => parsePrometheusText('# TYPE x gauge\nx 1\nx 2\n')).toThrow(/duplicate/);
    expect(() => parsePrometheusText('# TYPE x gauge\nx one\n')).toThrow(/bad number/);
    expect(() => parsePrometheusText('# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_count 1\nh_sum 0\n')).toThrow(/cumulative/);
    expect(() => parsePrometheusText('# TYPE x gauge\nx 1')).toThrow(/newline/);
  });
});
