/**
 * npm run bench:subscriptions — fan-out of run events to many live graphql-ws subscribers.
 *
 * The api runs in its own process, as `npm start` (worker off, no demo seed), over a fresh database
 * on the benchmark's Postgres. This process is the client side: BENCH_SUBSCRIBERS (default 1,000)
 * graphql-ws clients (the graphql-transport-ws protocol, spoken by a minimal client), one WebSocket each, every one subscribed to the same run's `runUpdated` with
 * a VIEWER key of the run's project. It then changes the run BENCH_EVENTS times the way a worker
 * does: the counters move in one committed UPDATE (RunsService.addProgress), then the run's
 * notification goes out through the real RunEventsPublisher (NOTIFY). The change's time is taken
 * once the UPDATE has committed; every client records when the event carrying that `done` value
 * reached it (same machine, same clock: performance.timeOrigin + performance.now()). The next
 * change waits until every client has the previous one (or BENCH_EVENT_TIMEOUT_MS passed), so
 * each change is one separate event and a missing one is lost, not coalesced.
 *
 * Prints the delivery delay p50 / p99 / max over all (client, event) pairs, events lost, and the
 * api's RSS per subscriber (VmRSS after every client has its first event minus before connecting,
 * / subscribers). Reference, measured in the same run, interleaved with the fan-out rounds: the same
 * changes followed by a single subscriber.
 *
 * BENCH_API_DIR=DIR runs the api from another copy of the repository (`git archive` of an earlier
 * commit, with node_modules), for a before/after under the same load with the same clients.
 *
 * BENCH_CPU_PROF=DIR runs the api as the very command `npm start` execs, with --cpu-prof (which
 * NODE_OPTIONS refuses), and its profile lands in DIR when it stops, with fan-out-windows.json: the
 * spans of the fan-out rounds' changes, so that the summary can keep only those samples
 * (ts-node --transpile-only test/bench/profile-summary.ts DIR/CPU*.cpuprofile --top 25 --windows DIR/fan-out-windows.json).
 */
import 'reflect-metadata';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { Client as PgClient } from 'pg';
import { DataSource } from 'typeorm';
import { MessageType } from 'graphql-ws';
import WebSocket from 'ws';
import { benchDatabase } from './bench-database';
import { dataSourceOptions } from '../../ormconfig';
import { migrateAll } from '../../src/app/bootstrap';
import { createServices } from '../../src/app/app-services';
import { loadConfig } from '../../src/platform/config';
import { setLogLevel } from '../../src/platform/logging';
import { UrlSigner } from '../../src/platform/signing';
import { RunEventsPublisher } from '../../src/platform/pubsub';
import { toGlobalId } from '../../src/platform/ids';
import { RequestContext } from '../../src/modules/projects/request-context';
import { Role } from '../../src/modules/projects/role';
import { Run, RunKind, RunStatus } from '../../src/modules/runs/run.entity';
import { freePort, NpmProcess, waitUntil } from '../support/app-process';

const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 1000);
const EVENTS = Number(process.env.BENCH_EVENTS ?? 20);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const EVENT_TIMEOUT_MS = Number(process.env.BENCH_EVENT_TIMEOUT_MS ?? 10_000);
const GAP_MS = Number(process.env.BENCH_GAP_MS ?? 50);
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF ? path.resolve(process.env.BENCH_CPU_PROF) : null;
const API_DIR = process.env.BENCH_API_DIR ? path.resolve(process.env.BENCH_API_DIR) : null;

const RUN_UPDATED = `subscription($id: ID!) { runUpdated(id: $id) { id status done total } }`;

const now = () => performance.timeOrigin + performance.now();
const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

/** CPU time (user + system) the process has used, in ms (clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function rssKiB(pid: number): number {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  return Number(line!.split(/\s+/)[1]);
}

interface Sink {
  next(payload: any, at: number): void;
  error(error: unknown): void;
  complete(): void;
}

/**
 * A graphql-ws client (protocol graphql-transport-ws) reduced to what a subscriber needs: one
 * socket, connection_init with the key, subscribe / next / complete. The arrival time is taken as
 * the message comes off the socket. The graphql-ws library's client cost more CPU per message than
 * the api did per subscriber, on the same two cores, which measured the clients more than the api.
 */
class Subscriber {
  private readonly socket: WebSocket;
  private readonly sinks = new Map<string, Sink>();
  private nextId = 1;
  readonly ready: Promise<void>;

  constructor(url: string, key: string) {
    this.socket = new WebSocket(url, 'graphql-transport-ws', { perMessageDeflate: false, skipUTF8Validation: true });
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('open', () => this.socket.send(JSON.stringify({ type: MessageType.ConnectionInit, payload: { authorization: `Bearer ${key}` } })));
      this.socket.on('message', (data: Buffer) => {
        const at = now();
        const message = JSON.parse(data.toString());
        const sink = message.id ? this.sinks.get(message.id) : undefined;
        switch (message.type) {
          case MessageType.ConnectionAck:
            return resolve();
          case MessageType.Ping:
            return this.socket.send(JSON.stringify({ type: MessageType.Pong }));
          case MessageType.Next:
            return sink?.next(message.payload, at);
          case MessageType.Error:
            this.sinks.delete(message.id);
            return sink?.error(message.payload);
          case MessageType.Complete:
            this.sinks.delete(message.id);
            return sink?.complete();
        }
      });
      this.socket.once('close', (code, reason) => {
        const error = new Error(`socket closed ${code} ${reason}`);
        reject(error);
        for (const s of this.sinks.values()) s.error(error);
        this.sinks.clear();
      });
      this.socket.once('error', reject);
    });
  }

  subscribe(query: string, variables: Record<string, unknown>, sink: Sink): () => void {
    const id = String(this.nextId++);
    this.sinks.set(id, sink);
    void this.ready.then(() => this.socket.send(JSON.stringify({ id, type: MessageType.Subscribe, payload: { query, variables } })), (error) => sink.error(error));
    return () => {
      if (this.sinks.delete(id) && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify({ id, type: MessageType.Complete }));
    };
  }

  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    const closed = new Promise((r) => this.socket.once('close', r));
    this.socket.close(1000);
    await closed;
  }
}

/** One subscriber's view of one run: when each `done` value arrived, and how the subscription ended. */
class Follower {
  readonly arrivals = new Map<number, number>();
  status = '';
  ended: 'complete' | 'error' | null = null;
  error: unknown = null;
  private unsubscribe: (() => void) | null = null;

  constructor(client: Subscriber, runGlobalId: string) {
    this.unsubscribe = client.subscribe(
      RUN_UPDATED,
      { id: runGlobalId },
      {
        next: (result: any, at: number) => {
          const run = result.data?.runUpdated;
          if (!run) {
            this.error = result.errors ?? result;
            return;
          }
          if (!this.arrivals.has(run.done)) this.arrivals.set(run.done, at);
          this.status = run.status;
        },
        error: (error) => {
          this.ended = 'error';
          this.error = error;
        },
        complete: () => {
          this.ended = 'complete';
        },
      },
    );
  }

  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = null;
  }
}

interface ApiProcess {
  /** The node process that serves (npm's child under npm start). */
  pid(): number | null;
  running(): boolean;
  log(): string;
  /** SIGTERM, as a supervisor stops it: the api shuts down cleanly (and writes its profile). */
  stop(): Promise<void>;
}

function npmStart(env: Record<string, string | undefined>): ApiProcess {
  const npm = NpmProcess.spawn(['start'], env);
  return {
    pid: () => npm.nodePid(),
    running: () => npm.running,
    log: () => npm.log,
    stop: async () => {
      npm.signal('SIGTERM');
      await npm.waitForExit(30_000).catch(() => npm.kill());
    },
  };
}

/** What `npm start` execs in `root`, with --cpu-prof when `profileDir` is given. */
function nodeApi(env: Record<string, string | undefined>, root: string, profileDir: string | null): ApiProcess {
  if (profileDir) fs.mkdirSync(profileDir, { recursive: true });
  const start = /exec node (.*)$/.exec(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).scripts.start as string)![1].split(' ');
  const childEnv: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'test', ...env };
  const child = spawn(process.execPath, [...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), ...start], { cwd: root, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c));
  child.stderr!.on('data', (c: Buffer) => (output += c));
  const exited = new Promise((r) => child.once('exit', r));
  return {
    pid: () => child.pid ?? null,
    running: () => child.exitCode === null && child.signalCode === null,
    log: () => output.slice(-20_000),
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

interface RoundResult {
  /** The api's CPU time over the round's changes, per change. */
  cpuPerEventMs: number;
  /** This process's (the clients') CPU time over the round's changes, per change. */
  clientCpuPerEventMs: number;
  delays: number[];
  lost: number;
  notCompleted: number;
  errors: unknown[];
}

async function main(): Promise<void> {
  setLogLevel('error');
  const stopDatabase = await benchDatabase();
  const databaseName = `bmv_bench_subs_${crypto.randomBytes(5).toString('hex')}`;
  const adminUrl = process.env.DATABASE_URL!;
  const databaseUrl = Object.assign(new URL(adminUrl), { pathname: `/${databaseName}` }).toString();
  const admin = async (sql: string) => {
    const c = new PgClient({ connectionString: adminUrl });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await admin(`CREATE DATABASE ${databaseName}`);
  const ds = new DataSource(dataSourceOptions(databaseUrl));
  let api: ApiProcess | null = null;
  const clients: Subscriber[] = [];
  try {
    await ds.initialize();
    await migrateAll(ds, databaseUrl);
    const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'error' });
    const services = createServices(ds, config, new UrlSigner('bench-does-not-sign-urls-000000000000', 60));
    const { project, owner } = await services.projects.bootstrapProject({ name: 'Bench subscriptions', slug: 'bench-subs', ownerEmail: 'owner@bench-subs.test', ownerName: 'Owner' });
    const ownerCtx = new RequestContext(project.id, owner.id, Role.OWNER, null);
    await services.projects.addMember(ownerCtx, { email: 'viewer@bench-subs.test', displayName: 'Viewer', role: Role.VIEWER });
    const viewerKey = (await services.projects.createKeyForMember(project.id, 'viewer@bench-subs.test', Role.VIEWER)).secret;
    const publisher = new RunEventsPublisher(ds, 0);

    // The api, as npm start runs it, in a process of its own.
    const port = await freePort();
    const env: Record<string, string | undefined> = {
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      RUN_WORKER: 'false',
      SEED_DEMO: 'false',
      // 1,000 subscriptions from one key within a second: the rate budget is not what is measured.
      RATE_LIMIT_PER_MINUTE: '0',
      LOG_LEVEL: 'warn',
    };
    api = CPU_PROF_DIR || API_DIR ? nodeApi(env, API_DIR ?? path.join(__dirname, '..', '..'), CPU_PROF_DIR) : npmStart(env);
    const graphqlUrl = `http://127.0.0.1:${port}/graphql`;
    await waitUntil('api /readyz 200', async () => {
      if (!api!.running()) throw new Error(`api exited:\n${api!.log()}`);
      return (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.status === 200;
    }, 120_000, () => api!.log());
    const apiPid = api.pid();
    if (!apiPid) throw new Error(`no api node process:\n${api.log()}`);

    const open = (): Subscriber => {
      const client = new Subscriber(graphqlUrl.replace(/^http/, 'ws'), viewerKey);
      clients.push(client);
      return client;
    };

    const newRun = async () => {
      const run = await ds.getRepository(Run).save({ projectId: project.id, kind: RunKind.SCORING, status: RunStatus.RUNNING, params: {}, total: EVENTS, createdById: owner.id, startedAt: new Date() });
      return { id: run.id, globalId: toGlobalId('Run', run.id) };
    };

    /** Follows one new run with `subscribers`, changes it EVENTS times, ends it; returns the delays. */
    const round = async (subscribers: Subscriber[], onSubscribed?: () => void): Promise<RoundResult> => {
      const run = await newRun();
      const followers = subscribers.map((c) => new Follower(c, run.globalId));
      await waitUntil(`${followers.length} subscribers got the initial state`, () => followers.every((f) => f.arrivals.has(0) || f.ended !== null), 120_000);
      onSubscribed?.();
      const committedAt: number[] = [];
      const cpuBefore = cpuMs(apiPid);
      const clientCpuBefore = process.cpuUsage();
      const windowStart = process.hrtime.bigint();
      for (let k = 1; k <= EVENTS; k++) {
        await sleep(GAP_MS);
        await services.runs.addProgress(ds.manager, run.id, { done: 1 });
        committedAt[k] = now();
        await publisher.flush(run.id);
        const deadline = Date.now() + EVENT_TIMEOUT_MS;
        while (!followers.every((f) => f.arrivals.has(k) || f.ended !== null) && Date.now() < deadline) await sleep(2);
      }
      const cpuPerEventMs = (cpuMs(apiPid) - cpuBefore) / EVENTS;
      const clientCpu = process.cpuUsage(clientCpuBefore);
      const clientCpuPerEventMs = (clientCpu.user + clientCpu.system) / 1000 / EVENTS;
      if (subscribers.length > 1) fanOutWindows.push([Number(windowStart / 1000n), Number(process.hrtime.bigint() / 1000n)]);
      await services.runs.finish(run.id, RunStatus.SUCCEEDED);
      const deadline = Date.now() + EVENT_TIMEOUT_MS;
      while (!followers.every((f) => f.ended !== null) && Date.now() < deadline) await sleep(10);
      const delays: number[] = [];
      let lost = 0;
      for (const f of followers) {
        for (let k = 1; k <= EVENTS; k++) {
          const at = f.arrivals.get(k);
          if (at === undefined) lost++;
          else delays.push(at - committedAt[k]);
        }
        if (f.status !== RunStatus.SUCCEEDED) lost++;
      }
      for (const f of followers) f.close();
      return {
        cpuPerEventMs,
        clientCpuPerEventMs,
        delays: delays.sort((a, b) => a - b),
        lost,
        notCompleted: followers.filter((f) => f.ended !== 'complete').length,
        errors: followers.filter((f) => f.error).slice(0, 3).map((f) => f.error),
      };
    };

    // When the fan-out rounds changed the run (CLOCK_MONOTONIC, µs: the clock of V8's profile samples).
    const fanOutWindows: [number, number][] = [];
    const reference = open();
    const fanOut: Subscriber[] = [];
    const refResults: RoundResult[] = [];
    const fanResults: RoundResult[] = [];
    let rssBefore = 0;
    let rssAfter = 0;
    // Warm-up: the first subscription compiles and caches what every later one uses.
    await round([reference]);
    for (let r = 0; r < ROUNDS; r++) {
      refResults.push(await round([reference]));
      if (r === 0) {
        rssBefore = rssKiB(apiPid);
        for (let i = 0; i < SUBSCRIBERS; i++) fanOut.push(open());
      }
      fanResults.push(await round(fanOut, r === 0 ? () => (rssAfter = rssKiB(apiPid)) : undefined));
    }

    const summary = (results: RoundResult[]) => {
      const delays = results.flatMap((r) => r.delays).sort((a, b) => a - b);
      const lost = results.reduce((n, r) => n + r.lost, 0);
      const notCompleted = results.reduce((n, r) => n + r.notCompleted, 0);
      const perRound = results.map((r) => `p50 ${percentile(r.delays, 50).toFixed(1)} / p99 ${percentile(r.delays, 99).toFixed(1)}`).join('; ');
      const cpu = results.reduce((n, r) => n + r.cpuPerEventMs, 0) / results.length;
      const clientCpu = results.reduce((n, r) => n + r.clientCpuPerEventMs, 0) / results.length;
      return `p50 ${percentile(delays, 50).toFixed(1)} ms, p99 ${percentile(delays, 99).toFixed(1)} ms, max ${delays[delays.length - 1]?.toFixed(1)} ms over ${delays.length} deliveries; CPU per change: api ${cpu.toFixed(1)} ms, clients ${clientCpu.toFixed(1)} ms; lost ${lost}, not completed ${notCompleted} (rounds: ${perRound})`;
    };
    console.log(`runUpdated fan-out: ${SUBSCRIBERS} graphql-ws subscribers (one socket each) on one run, ${EVENTS} changes per round, ${ROUNDS} rounds; api in its own process (npm start)`);
    console.log(`  ${SUBSCRIBERS} subscribers:          ${summary(fanResults)}`);
    console.log(`  reference, 1 subscriber:   ${summary(refResults)}`);
    console.log(`  api RSS per subscriber:    ${((rssAfter - rssBefore) / SUBSCRIBERS).toFixed(1)} KiB (RSS ${(rssBefore / 1024).toFixed(0)} -> ${(rssAfter / 1024).toFixed(0)} MiB)`);
    if (CPU_PROF_DIR) fs.writeFileSync(path.join(CPU_PROF_DIR, 'fan-out-windows.json'), JSON.stringify(fanOutWindows));
    const errors = [...fanResults, ...refResults].flatMap((r) => r.errors);
    if (errors.length) console.log(`  errors (first few): ${JSON.stringify(errors).slice(0, 600)}`);
    const p99 = percentile(fanResults.flatMap((r) => r.delays).sort((a, b) => a - b), 99);
    console.log(`  goal p99 < 100 ms and 0 lost: ${p99 < 100 && fanResults.every((r) => r.lost === 0) ? 'met' : 'NOT met'} (load: ${load()})`);
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await api?.stop();
    await ds.destroy().catch(() => undefined);
    await admin(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`).catch(() => undefined);
    await stopDatabase();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
