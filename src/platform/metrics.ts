import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DataSource } from 'typeorm';
import type { Pool } from 'pg';
import type { ApolloServerPlugin } from '@apollo/server';
import type { NextFunction, Request, Response } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { logger } from './logging';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const RUN_KINDS = ['GENERATION', 'RATING', 'CLUSTERING', 'SCORING', 'TRAINING', 'EXPORT'];
const RUN_STATUSES = ['QUEUED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'];

/**
 * The process's Prometheus metrics (prom-client), one registry per process role so that an api and
 * a worker in one test process do not mix. Counters and histograms are updated where things happen
 * (requests, model calls); gauges about the database (runs, queue, pool) are read at scrape time,
 * so they cost nothing between scrapes. Those database gauges are the same from every process:
 * aggregate them with max(), not sum().
 */
export class ServiceMetrics {
  readonly registry = new Registry();
  readonly graphqlOperations: Counter<'operation' | 'type' | 'outcome'>;
  readonly graphqlDuration: Histogram<'operation' | 'type'>;
  readonly httpDuration: Histogram<'route' | 'method' | 'status'>;
  readonly modelCalls: Counter<'kind' | 'outcome'>;
  readonly modelTokens: Counter<'kind' | 'type'>;
  readonly modelCost: Counter<'kind'>;

  constructor(
    private readonly ds: DataSource,
    role: 'api' | 'worker',
  ) {
    this.registry.setDefaultLabels({ role });
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 10 });
    const registers = [this.registry];
    this.graphqlOperations = new Counter({ name: 'bmv_graphql_operations_total', help: 'GraphQL operations over HTTP by root field, type and outcome (ok, user_errors, or the error code).', labelNames: ['operation', 'type', 'outcome'], registers });
    this.graphqlDuration = new Histogram({ name: 'bmv_graphql_operation_duration_seconds', help: 'GraphQL operation latency over HTTP, by root field and type.', labelNames: ['operation', 'type'], buckets: LATENCY_BUCKETS, registers });
    this.httpDuration = new Histogram({ name: 'bmv_http_request_duration_seconds', help: 'HTTP request latency by route group, method and status.', labelNames: ['route', 'method', 'status'], buckets: LATENCY_BUCKETS, registers });
    this.modelCalls = new Counter({ name: 'bmv_model_calls_total', help: 'Model requests (each attempt) by kind (chat, embedding) and outcome.', labelNames: ['kind', 'outcome'], registers });
    this.modelTokens = new Counter({ name: 'bmv_model_tokens_total', help: 'Tokens of successful model requests by kind and type (prompt, completion).', labelNames: ['kind', 'type'], registers });
    this.modelCost = new Counter({ name: 'bmv_model_cost_usd_total', help: 'Estimated cost of successful model requests in US dollars, at the configured prices.', labelNames: ['kind'], registers });
    this.databaseGauges(registers);
  }

  private databaseGauges(registers: Registry[]): void {
    const ds = this.ds;
    // A scrape during a database outage still answers, with the process's own metrics.
    const guarded = <G>(what: string, work: (gauge: G) => Promise<void>) =>
      async function (this: G) {
        await work(this).catch((error) => logger.warn('metrics collection failed', { what, error: String(error) }));
      };
    new Gauge({
      name: 'bmv_runs',
      help: 'Runs by kind and status (all projects).',
      labelNames: ['kind', 'status'],
      registers,
      collect: guarded('runs', async (g: Gauge<'kind' | 'status'>) => {
        const rows: { kind: string; status: string; n: number }[] = await ds.query(`SELECT kind::text AS kind, status::text AS status, count(*)::int AS n FROM runs GROUP BY 1, 2`);
        for (const kind of RUN_KINDS) for (const status of RUN_STATUSES) g.set({ kind, status }, 0);
        for (const r of rows) g.set({ kind: r.kind, status: r.status }, r.n);
      }),
    });
    new Gauge({
      name: 'bmv_run_items',
      help: 'Items processed by runs, by kind and outcome (done, failed); rate() gives items per second.',
      labelNames: ['kind', 'outcome'],
      registers,
      collect: guarded('run items', async (g: Gauge<'kind' | 'outcome'>) => {
        const rows: { kind: string; done: string; failed: string }[] = await ds.query(`SELECT kind::text AS kind, sum(done) AS done, sum(failed) AS failed FROM runs GROUP BY 1`);
        for (const kind of RUN_KINDS) for (const outcome of ['done', 'failed']) g.set({ kind, outcome }, 0);
        for (const r of rows) {
          g.set({ kind: r.kind, outcome: 'done' }, Number(r.done));
          g.set({ kind: r.kind, outcome: 'failed' }, Number(r.failed));
        }
      }),
    });
    new Gauge({
      name: 'bmv_run_items_per_second',
      help: 'Throughput of the runs now RUNNING, by kind: items processed per second since each started, summed.',
      labelNames: ['kind'],
      registers,
      collect: guarded('run throughput', async (g: Gauge<'kind'>) => {
        const rows: { kind: string; rate: number }[] = await ds.query(
          `SELECT kind::text AS kind, coalesce(sum((done + failed) / greatest(extract(epoch FROM now() - started_at), 0.001)), 0)::float8 AS rate
             FROM runs WHERE status = 'RUNNING' AND started_at IS NOT NULL GROUP BY 1`,
        );
        for (const kind of RUN_KINDS) g.set({ kind }, 0);
        for (const r of rows) g.set({ kind: r.kind }, r.rate);
      }),
    });
    // Both queue gauges come from one statement: the registry collects metrics concurrently, so the
    // second collector joins the statement the first started.
    type QueueRow = { task: string; ready: number; scheduled: number; running: number; failed: number; oldest: number };
    let inflight: Promise<QueueRow[]> | null = null;
    const queueRows = (): Promise<QueueRow[]> =>
      (inflight ??= (
        ds.query(
          `SELECT t.identifier AS task,
                  count(*) FILTER (WHERE j.locked_at IS NULL AND j.run_at <= now() AND j.attempts < j.max_attempts)::int AS ready,
                  count(*) FILTER (WHERE j.locked_at IS NULL AND j.run_at > now() AND j.attempts < j.max_attempts)::int AS scheduled,
                  count(*) FILTER (WHERE j.locked_at IS NOT NULL)::int AS running,
                  count(*) FILTER (WHERE j.locked_at IS NULL AND j.attempts >= j.max_attempts)::int AS failed,
                  coalesce(extract(epoch FROM now() - min(j.run_at) FILTER (WHERE j.locked_at IS NULL AND j.run_at <= now() AND j.attempts < j.max_attempts)), 0)::float8 AS oldest
             FROM graphile_worker._private_jobs j JOIN graphile_worker._private_tasks t ON t.id = j.task_id GROUP BY t.identifier`,
        ) as Promise<QueueRow[]>
      ).finally(() => setImmediate(() => (inflight = null))));
    new Gauge({
      name: 'bmv_job_queue_jobs',
      help: 'Jobs in the queue by task and state (ready, scheduled, running, failed).',
      labelNames: ['task', 'state'],
      registers,
      collect: guarded('job queue', async (g: Gauge<'task' | 'state'>) => {
        const rows = await queueRows();
        g.reset();
        for (const r of rows) for (const state of ['ready', 'scheduled', 'running', 'failed'] as const) g.set({ task: r.task, state }, r[state]);
      }),
    });
    new Gauge({
      name: 'bmv_job_queue_oldest_ready_age_seconds',
      help: 'How long the oldest job ready to run has waited, by task (0 when none waits).',
      labelNames: ['task'],
      registers,
      collect: guarded('job queue age', async (g: Gauge<'task'>) => {
        const rows = await queueRows();
        g.reset();
        for (const r of rows) g.set({ task: r.task }, r.oldest);
      }),
    });
    new Gauge({
      name: 'bmv_webhook_deliveries',
      help: 'Webhook deliveries by status (PENDING, SUCCEEDED, FAILED).',
      labelNames: ['status'],
      registers,
      collect: guarded('webhook deliveries', async (g: Gauge<'status'>) => {
        const rows: { status: string; n: number }[] = await ds.query(`SELECT status, count(*)::int AS n FROM webhook_deliveries GROUP BY 1`);
        for (const status of ['PENDING', 'SUCCEEDED', 'FAILED']) g.set({ status }, 0);
        for (const r of rows) g.set({ status: r.status }, r.n);
      }),
    });
    new Gauge({
      name: 'bmv_db_pool_connections',
      help: "Connections of this process's database pool by state (total, idle, waiting = requests queued for a connection, max).",
      labelNames: ['state'],
      registers,
      collect() {
        const pool = (ds.driver as unknown as { master?: Pool & { options?: { max?: number } } }).master;
        if (!pool) return;
        this.set({ state: 'total' }, pool.totalCount);
        this.set({ state: 'idle' }, pool.idleCount);
        this.set({ state: 'waiting' }, pool.waitingCount);
        this.set({ state: 'max' }, pool.options?.max ?? 0);
      },
    });
  }

  /** Counts one model request: `reply` on success, `error` otherwise, priced at `costUsd`. */
  modelCall(kind: 'chat' | 'embedding', outcome: { promptTokens: number; completionTokens: number; costUsd: number } | { error: unknown }): void {
    if ('error' in outcome) {
      this.modelCalls.inc({ kind, outcome: modelErrorOutcome(outcome.error) });
      return;
    }
    this.modelCalls.inc({ kind, outcome: 'ok' });
    this.modelTokens.inc({ kind, type: 'prompt' }, outcome.promptTokens);
    if (outcome.completionTokens) this.modelTokens.inc({ kind, type: 'completion' }, outcome.completionTokens);
    this.modelCost.inc({ kind }, outcome.costUsd);
  }

  /** Times every HTTP request by a bounded route group (never the raw path: ids would explode the series). */
  httpMiddleware() {
    return (req: Request, res: Response, next: NextFunction) => {
      const end = this.httpDuration.startTimer();
      // Read before routing: a mounted router strips its path from req.path.
      const route = routeGroup(req.path);
      res.once('finish', () => end({ route, method: req.method, status: String(res.statusCode) }));
      next();
    };
  }

  /** Counts and times GraphQL operations by their first root field (bounded by the schema, unlike operation names). */
  graphqlPlugin(): ApolloServerPlugin {
    const metrics = this;
    return {
      async requestDidStart() {
        const end = metrics.graphqlDuration.startTimer();
        return {
          async willSendResponse(rc) {
            const type = rc.operation?.operation ?? 'unknown';
            const first = rc.operation?.selectionSet.selections.find((s) => s.kind === 'Field');
            const operation = first && first.kind === 'Field' ? first.name.value : 'unknown';
            end({ operation, type });
            metrics.graphqlOperations.inc({ operation, type, outcome: graphqlOutcome(rc.response.body, operation) });
          },
        };
      },
    };
  }

  async render(): Promise<string> {
    return this.registry.metrics();
  }
}

/** From the response as sent (errors already formatted, so their codes are the ones clients see). */
function graphqlOutcome(body: unknown, field: string): string {
  const result = (body as { singleResult?: { data?: Record<string, unknown> | null; errors?: readonly { extensions?: Record<string, unknown> }[] } }).singleResult;
  if (result?.errors?.length) return String(result.errors[0].extensions?.code ?? 'INTERNAL_SERVER_ERROR');
  const data = result?.data;
  const payload = data?.[field] as { userErrors?: unknown[] } | null | undefined;
  return payload && Array.isArray(payload.userErrors) && payload.userErrors.length ? 'user_errors' : 'ok';
}

const ROUTE_GROUPS = ['graphql', 'files', 'exports', 'ide', 'healthz', 'readyz', 'metrics'];

function routeGroup(path: string): string {
  const first = path.split('/')[1] ?? '';
  return first === '' ? 'root' : ROUTE_GROUPS.includes(first) ? first : 'other';
}

function modelErrorOutcome(error: unknown): string {
  const status = (error as { status?: number })?.status;
  if (status === 429) return 'rate_limited';
  if (typeof status === 'number' && status >= 500) return 'server_error';
  if (typeof status === 'number' && status >= 400) return 'client_error';
  const name = (error as { name?: string })?.name ?? '';
  if (/timeout/i.test(name) || /timed? ?out/i.test(String((error as Error)?.message ?? ''))) return 'timeout';
  if (name === 'AbortError') return 'aborted';
  return 'error';
}

/** True when the request may read /metrics: no token configured, or the right bearer token. */
export function metricsAllowed(authorization: string | undefined, token: string | undefined): boolean {
  if (!token) return true;
  const given = Buffer.from(authorization ?? '');
  const expected = Buffer.from(`Bearer ${token}`);
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}

/** A bare `/metrics` endpoint for a process without an api (a worker). */
export async function startMetricsServer(metrics: ServiceMetrics, port: number, host: string, token?: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    if (!metricsAllowed(req.headers.authorization, token)) {
      res.writeHead(401, { 'www-authenticate': 'Bearer' }).end();
      return;
    }
    metrics.render().then(
      (text) => res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE }).end(text),
      (error) => res.writeHead(500).end(String(error)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${address.port}/metrics`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
