import { Client } from 'graphql-ws';
import { FakeOpenAIServer } from '../fakes/openai-server';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { seedPipeline, START_GENERATION, waitForRun } from '../support/pipeline-fixture';
import { WsClients } from '../support/ws-client';
import { loadConfig } from '../../src/platform/config';
import { fromGlobalId } from '../../src/platform/ids';
import { RunningServer, startServer } from '../../src/app/server';

const RUN_UPDATED = `subscription($id: ID!) { runUpdated(id: $id) { id kind status total done failed queued } }`;
const CANCEL_RUN = `mutation($input: CancelRunInput!) { cancelRun(input: $input) { run { id status } userErrors { code message } } }`;
const TERMINAL = ['SUCCEEDED', 'FAILED', 'CANCELLED'];

interface RunEvent {
  at: number;
  run: { id: string; kind: string; status: string; total: number; done: number; failed: number; queued: number } | null;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}

interface Followed {
  events: RunEvent[];
  /** Resolves when the server completes the subscription or it errors; never rejects. */
  finished: Promise<{ outcome: 'complete' | 'error'; error?: any }>;
  /** Resolves with the first event matching `predicate` (already received or later). */
  waitFor(predicate: (e: RunEvent) => boolean, timeoutMs?: number): Promise<RunEvent>;
}

/** Subscribes to runUpdated and records every `next` with the time it arrived. */
function follow(client: Client, runId: string): Followed {
  const events: RunEvent[] = [];
  const waiters: { predicate: (e: RunEvent) => boolean; resolve: (e: RunEvent) => void }[] = [];
  const finished = new Promise<{ outcome: 'complete' | 'error'; error?: any }>((resolve) => {
    client.subscribe(
      { query: RUN_UPDATED, variables: { id: runId } },
      {
        next: (result: any) => {
          const event: RunEvent = { at: Date.now(), run: result.data?.runUpdated ?? null, errors: result.errors };
          events.push(event);
          for (const w of [...waiters]) {
            if (w.predicate(event)) {
              waiters.splice(waiters.indexOf(w), 1);
              w.resolve(event);
            }
          }
        },
        error: (error) => resolve({ outcome: 'error', error }),
        complete: () => resolve({ outcome: 'complete' }),
      },
    );
  });
  const waitFor = (predicate: (e: RunEvent) => boolean, timeoutMs = 15000) => {
    const seen = events.find(predicate);
    if (seen) return Promise.resolve(seen);
    return new Promise<RunEvent>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching run event within ${timeoutMs} ms; got ${JSON.stringify(events.map((e) => e.run))}`)), timeoutMs);
      waiters.push({ predicate, resolve: (e) => (clearTimeout(timer), resolve(e)) });
      void finished.then(() => {
        clearTimeout(timer);
        reject(new Error(`subscription ended without a matching event; got ${JSON.stringify(events.map((e) => e.run ?? e.errors))}`));
      });
    });
  };
  return { events, finished, waitFor };
}

/** The subscription must end by itself; a hang is a failure, not a jest timeout. */
async function finishedWithin(followed: Followed, ms = 20000): Promise<{ outcome: 'complete' | 'error'; error?: any }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ outcome: 'timeout' }>((resolve) => (timer = setTimeout(() => resolve({ outcome: 'timeout' }), ms)));
  const result = await Promise.race([followed.finished, timeout]);
  clearTimeout(timer);
  if (result.outcome === 'timeout') throw new Error(`subscription did not end within ${ms} ms; events: ${JSON.stringify(followed.events.map((e) => e.run))}`);
  return result as { outcome: 'complete' | 'error'; error?: any };
}

describe('runUpdated subscription over graphql-ws', () => {
  let fake: FakeOpenAIServer;
  let app: TestApp;
  let labA: TestProject;
  let labB: TestProject;
  let images: { imageIds: string[]; imageGlobalIds: string[] };
  const clients = new WsClients();
  const extraServers: RunningServer[] = [];

  const client = (key: string, graphqlUrl = app.graphqlUrl) => clients.open(graphqlUrl, key);

  async function startGeneration(input: Record<string, unknown>): Promise<{ id: string; total: number }> {
    const res = await gql(app.graphqlUrl, labA.keys.CURATOR, START_GENERATION, { input: { images: { imageIds: images.imageGlobalIds }, seed: 3, ...input } });
    expect(res.errors).toBeUndefined();
    expect(res.data!.startGenerationRun.userErrors).toEqual([]);
    return res.data!.startGenerationRun.run;
  }

  beforeAll(async () => {
    fake = await FakeOpenAIServer.start({ latencyMs: 100 });
    // No worker yet: the first test subscribes to a queued run before any work starts.
    app = await startTestApp({ OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.baseUrl, LLM_RETRY_BASE_MS: '20', LLM_TIMEOUT_MS: '5000', RUN_PROGRESS_INTERVAL_MS: '100', LLM_TOKENS_PER_MINUTE: '1000000000' });
    labA = await createTestProject(app, 'sub-lab-a');
    labB = await createTestProject(app, 'sub-lab-b');
    images = await seedPipeline(app, labA);
  });

  afterAll(async () => {
    await clients.disposeAll();
    for (const s of extraServers) await s.close();
    await app?.stop();
    await fake?.close();
  });

  let finishedRunId: string;

  it('streams the initial state, throttled progress with non-decreasing done, the final state, then completes', async () => {
    const run = await startGeneration({ samplesPerImage: 4, limits: { concurrency: 2 } });
    expect(run.total).toBe(20);
    const followed = follow(client(labA.keys.VIEWER), run.id);
    const initial = await followed.waitFor(() => true);
    expect(initial.run).toMatchObject({ id: run.id, kind: 'GENERATION', status: 'QUEUED', total: 20, done: 0, failed: 0, queued: 20 });

    await app.startWorker();
    const ended = await finishedWithin(followed);
    finishedRunId = run.id;
    expect(ended).toEqual({ outcome: 'complete' });

    const events = followed.events;
    expect(events.every((e) => e.errors === undefined && e.run?.id === run.id)).toBe(true);
    const runs = events.map((e) => e.run!);
    // done never goes back
    for (let i = 1; i < runs.length; i++) expect(runs[i].done).toBeGreaterThanOrEqual(runs[i - 1].done);
    // several progress updates while running
    const progress = runs.filter((r) => r.status === 'RUNNING' && r.done > 0 && r.done < r.total);
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(new Set(progress.map((r) => r.done)).size).toBeGreaterThanOrEqual(3);
    // exactly one terminal event, and it is the last one
    expect(runs.filter((r) => TERMINAL.includes(r.status))).toHaveLength(1);
    expect(runs[runs.length - 1]).toMatchObject({ status: 'SUCCEEDED', done: 20, total: 20, failed: 0, queued: 0 });

    // Throttle: at most one notification per RUN_PROGRESS_INTERVAL_MS, plus the initial read and the
    // immediate RUNNING / final notifications. 20 items finish about every 50 ms, so an unthrottled
    // stream would carry about twice as many events as this bound allows.
    const [row] = await app.ds.query(`SELECT started_at, finished_at FROM runs WHERE id = $1`, [fromGlobalId(run.id)!.id]);
    const durationMs = new Date(row.finished_at).getTime() - new Date(row.started_at).getTime();
    expect(durationMs).toBeGreaterThan(500);
    expect(events.length).toBeLessThanOrEqual(Math.floor(durationMs / 100) + 4);
  });

  it('throttles a burst of progress to about one event per interval', async () => {
    // 40 items, 8 at a time: each wave of 8 finishes together, so unthrottled this is ~40 events in ~0.5 s.
    const run = await startGeneration({ samplesPerImage: 8, limits: { concurrency: 8 } });
    const followed = follow(client(labA.keys.VIEWER), run.id);
    expect(await finishedWithin(followed)).toEqual({ outcome: 'complete' });
    const last = followed.events[followed.events.length - 1].run!;
    expect(last).toMatchObject({ status: 'SUCCEEDED', done: 40, total: 40 });
    const [row] = await app.ds.query(`SELECT started_at, finished_at FROM runs WHERE id = $1`, [fromGlobalId(run.id)!.id]);
    const durationMs = new Date(row.finished_at).getTime() - new Date(row.started_at).getTime();
    expect(followed.events.length).toBeLessThanOrEqual(Math.floor(durationMs / 100) + 4);
    // Fewer events than items: each wave of 8 near-simultaneous completions collapses into one.
    expect(followed.events.length).toBeLessThan(40);
  });

  it('gives a subscriber who joins after the end exactly the final state, then completes', async () => {
    const followed = follow(client(labA.keys.CLINICIAN), finishedRunId);
    expect(await finishedWithin(followed, 5000)).toEqual({ outcome: 'complete' });
    expect(followed.events).toHaveLength(1);
    expect(followed.events[0].errors).toBeUndefined();
    expect(followed.events[0].run).toMatchObject({ id: finishedRunId, status: 'SUCCEEDED', done: 20, total: 20 });
  });

  it("answers NOT_FOUND, with no data, to another project's key subscribing to the run", async () => {
    const followed = follow(client(labB.keys.OWNER), finishedRunId);
    const ended = await finishedWithin(followed, 5000);
    expect(followed.events.every((e) => e.run === null)).toBe(true);
    // The error may come as a result with errors or as the protocol's error message; either way coded.
    const errors = [...followed.events.flatMap((e) => e.errors ?? []), ...(ended.outcome === 'error' && Array.isArray(ended.error) ? ended.error : [])];
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.map((e: any) => e.extensions?.code)).toEqual(errors.map(() => 'NOT_FOUND'));
    // The socket stays usable: it was an operation error, not a refused connection.
    expect(ended.outcome === 'complete' || Array.isArray(ended.error)).toBe(true);
  });

  it('refuses a key that does not exist at connection_init with close code 4403', async () => {
    const followed = follow(client('bmv_notakey_0000000000000000'), finishedRunId);
    const ended = await finishedWithin(followed, 5000);
    expect(ended.outcome).toBe('error');
    expect(ended.error?.code).toBe(4403);
    expect(followed.events).toHaveLength(0);
  });

  it('ends the subscription of a cancelled run with CANCELLED', async () => {
    // One request at a time, 20 items at 100 ms: about 2 s of work, cancelled early.
    const run = await startGeneration({ samplesPerImage: 4, limits: { concurrency: 1 } });
    const followed = follow(client(labA.keys.VIEWER), run.id);
    await followed.waitFor((e) => e.run?.status === 'RUNNING' && e.run.done >= 1);
    const cancelled = await gql(app.graphqlUrl, labA.keys.CURATOR, CANCEL_RUN, { input: { runId: run.id } });
    expect(cancelled.errors).toBeUndefined();
    expect(cancelled.data!.cancelRun.userErrors).toEqual([]);
    expect(await finishedWithin(followed, 10000)).toEqual({ outcome: 'complete' });
    const runs = followed.events.map((e) => e.run!);
    expect(runs[runs.length - 1].status).toBe('CANCELLED');
    expect(runs[runs.length - 1].done).toBeLessThan(20);
    expect(runs.filter((r) => TERMINAL.includes(r.status))).toHaveLength(1);
  });

  it('delivers the progress of a run executed by another process to a second api instance on the same database', async () => {
    const second = await startServer(app.ds, loadConfig({ NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'error', RUN_PROGRESS_INTERVAL_MS: '100' }));
    extraServers.push(second);
    expect(second.graphqlUrl).not.toBe(app.graphqlUrl);
    const run = await startGeneration({ samplesPerImage: 2, limits: { concurrency: 1 } });
    // Subscribed on the second instance, which has no worker: every change must come through Postgres.
    const followed = follow(client(labA.keys.VIEWER, second.graphqlUrl), run.id);
    expect(await finishedWithin(followed)).toEqual({ outcome: 'complete' });
    const runs = followed.events.map((e) => e.run!);
    expect(runs.length).toBeGreaterThanOrEqual(3);
    expect(runs.filter((r) => r.status === 'RUNNING' && r.done > 0 && r.done < 10).length).toBeGreaterThanOrEqual(1);
    expect(runs[runs.length - 1]).toMatchObject({ status: 'SUCCEEDED', done: 10, total: 10 });
    // The first api agrees with what the second one streamed.
    expect(await waitForRun(app, labA.keys.VIEWER, run.id)).toMatchObject({ status: 'SUCCEEDED', done: 10 });
  });
});
