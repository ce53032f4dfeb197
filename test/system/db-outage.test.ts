/**
 * Postgres goes away three times (once crashing) in the middle of a generation run and comes back: `npm start` (api and
 * in-process worker) and a separate `npm run worker` both live through it, the api answers /readyz
 * 503 and GraphQL SERVICE_UNAVAILABLE while it is gone, both recover on their own, and the run ends
 * with exactly one candidate per item. A real embedded Postgres that the test stops and starts, real
 * processes through npm, the fake OpenAI server.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { FakeOpenAIServer } from '../fakes/openai-server';
import { gql } from '../support/graphql-client';
import { START_GENERATION, RUN_STATE } from '../support/pipeline-fixture';
import { wsClient } from '../support/ws-client';
import { freePort, NpmProcess, PostgresProcess, stopLeftoverPostgres, tempDataDir, waitUntil } from '../support/app-process';
import { fromGlobalId } from '../../src/platform/ids';

jest.setTimeout(150_000);

const SAMPLES_PER_IMAGE = 20;
/** Fast shutdown, then an immediate one (a crash: recovery on restart), then fast again. */
const OUTAGES = 3;
const OUTAGE_MS = 3_000;

describe('a Postgres outage during a run', () => {
  const pgDir = tempDataDir('bmv-outage-pg-');
  const appDir = tempDataDir('bmv-outage-app-');
  let pg: PostgresProcess;
  let pgPort: number;
  let port: number;
  let fake: FakeOpenAIServer;
  const processes: NpmProcess[] = [];

  beforeAll(async () => {
    [pgPort, port] = [await freePort(), await freePort()];
    pg = await PostgresProcess.start(path.join(pgDir, 'postgres'), pgPort);
    fake = await FakeOpenAIServer.start({ latencyMs: 400 });
  });

  afterAll(async () => {
    for (const p of processes) await p.kill();
    await pg?.stop().catch(() => undefined);
    stopLeftoverPostgres(pgDir);
    await fake?.close();
    fs.rmSync(pgDir, { recursive: true, force: true });
    fs.rmSync(appDir, { recursive: true, force: true });
  });

  function npm(args: string[]): NpmProcess {
    const p = NpmProcess.spawn(args, {
      DATABASE_URL: pg.url,
      PORT: String(port),
      DATA_DIR: appDir,
      OPENAI_API_KEY: 'sk-test',
      OPENAI_BASE_URL: fake.baseUrl,
      WORKER_POLL_MS: '200',
      WORKER_HEARTBEAT_MS: '300',
      WORKER_DEAD_AFTER_MS: '1500',
      LLM_RETRY_BASE_MS: '20',
    });
    processes.push(p);
    return p;
  }

  const graphqlUrl = () => `http://127.0.0.1:${port}/graphql`;
  const readyz = async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.status ?? 0;

  /** A fresh connection per question: the test's own connections die with the server too. */
  async function sql<T>(text: string, params: unknown[] = []): Promise<T[]> {
    const client = new Client({ connectionString: pg.url });
    await client.connect();
    try {
      return (await client.query(text, params)).rows as T[];
    } finally {
      await client.end();
    }
  }

  const candidates = async (runId: string) => (await sql<{ n: number }>(`SELECT count(*)::int AS n FROM candidates WHERE run_id = $1`, [runId]))[0].n;

  it('both processes ride out three outages, answer 503 meanwhile, recover, and the run completes exactly once', async () => {
    const api = npm(['start']);
    const key = (await api.waitFor(/Dev key:\s+(bmv_\S+)/))[1];
    const worker = npm(['run', 'worker']);
    await worker.waitFor(/worker ready/);

    const listed = await gql(graphqlUrl(), key, '{ images(first: 10) { edges { node { id } } } }');
    expect(listed.errors).toBeUndefined();
    const imageIds: string[] = listed.data!.images.edges.map((e: { node: { id: string } }) => e.node.id);
    expect(imageIds.length).toBeGreaterThan(0);
    const total = imageIds.length * SAMPLES_PER_IMAGE;
    const started = await gql(graphqlUrl(), key, START_GENERATION, {
      input: { images: { imageIds }, samplesPerImage: SAMPLES_PER_IMAGE, seed: 5, limits: { concurrency: 4 } },
    });
    expect(started.errors).toBeUndefined();
    expect(started.data!.startGenerationRun.userErrors).toEqual([]);
    const runGlobalId: string = started.data!.startGenerationRun.run.id;
    const runId = fromGlobalId(runGlobalId)!.id;

    // A subscriber from before the outages must still hear the run end: the api's LISTEN
    // connection reconnects by itself.
    const ws = wsClient(graphqlUrl(), key);
    const heard: string[] = [];
    const subscriptionEnded = new Promise<void>((resolve) => {
      ws.subscribe(
        { query: `subscription($id: ID!) { runUpdated(id: $id) { status done } }`, variables: { id: runGlobalId } },
        { next: (event) => void heard.push(String((event.data as { runUpdated?: { status: string } })?.runUpdated?.status ?? JSON.stringify(event.errors))), error: () => resolve(), complete: () => resolve() },
      );
    });
    await waitUntil('the subscription to deliver the current state', () => heard.length > 0, 10_000);

    const atOutage: number[] = [];
    for (let outage = 0; outage < OUTAGES; outage++) {
      const before = outage === 0 ? 0 : atOutage[outage - 1];
      await waitUntil('run progress before the outage', async () => (await candidates(runId)) >= before + 5, 30_000, () => api.log + worker.log);
      atOutage.push(await candidates(runId));
      expect(atOutage[outage]).toBeLessThan(total);

      if (outage === 1) await pg.crash();
      else await pg.stop();
      const downAt = Date.now();
      await waitUntil('/readyz 503 during the outage', async () => (await readyz()) === 503, 5_000, () => api.log);
      const during = await gql(graphqlUrl(), key, '{ viewer { role } }');
      expect(during.status).toBe(503);
      expect(during.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
      // Stay down long enough for every poll, heartbeat and in-flight write to fail.
      await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - downAt))));
      expect(api.running).toBe(true);
      expect(worker.running).toBe(true);

      pg = await PostgresProcess.start(path.join(pgDir, 'postgres'), pgPort);
      await waitUntil('/readyz 200 after the outage', async () => (await readyz()) === 200, 15_000, () => api.log);
      const after = await gql(graphqlUrl(), key, '{ viewer { role } }');
      expect(after.data).toEqual({ viewer: { role: 'OWNER' } });
    }

    let finished: Record<string, any> = {};
    await waitUntil(
      'the run to finish',
      async () => {
        finished = (await gql(graphqlUrl(), key, RUN_STATE, { id: runGlobalId })).data?.node ?? {};
        return ['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(finished.status);
      },
      90_000,
      () => api.log + worker.log,
    );
    expect(finished).toMatchObject({ status: 'SUCCEEDED', total, done: total, failed: 0 });
    const [c] = await sql<Record<string, number>>(
      `SELECT count(*)::int AS rows, count(DISTINCT (image_id, sample_index))::int AS items, count(*) FILTER (WHERE status = 'OK')::int AS ok
       FROM candidates WHERE run_id = $1`,
      [runId],
    );
    expect(c).toEqual({ rows: total, items: total, ok: total });
    const [r] = await sql<Record<string, string>>(
      `SELECT r.prompt_tokens::bigint::text AS run_prompt, (SELECT sum(prompt_tokens)::bigint::text FROM candidates WHERE run_id = r.id) AS cand_prompt
       FROM runs r WHERE r.id = $1`,
      [runId],
    );
    // Counters were added once per stored candidate: nothing counted twice by a retried write.
    expect(r.run_prompt).toBe(r.cand_prompt);
    expect(api.running && worker.running).toBe(true);
    await Promise.race([subscriptionEnded, new Promise((r) => setTimeout(r, 10_000))]);
    expect(heard[heard.length - 1]).toBe('SUCCEEDED');
    await ws.dispose();

    worker.signal('SIGTERM');
    expect(await worker.waitForExit()).toMatchObject({ code: 0 });
    // A process whose database is gone still stops on a signal, within its bound (15 s), never hangs.
    await pg.stop();
    await waitUntil('/readyz 503', async () => (await readyz()) === 503, 5_000, () => api.log);
    api.signal('SIGTERM');
    await api.waitForExit(20_000);
    expect(api.log).toMatch(/"message":"(stopped|shutdown took too long; exiting anyway)"/);
    const restarts = (api.log + worker.log).match(/job runner restarted/g)?.length ?? 0;
    const unhandled = (api.log + worker.log).match(/unhandled rejection/g)?.length ?? 0;
    console.info(`outage: candidates at the outages ${atOutage.join(', ')} of ${total}; job runner restarts ${restarts}; unhandled rejections logged ${unhandled}`);
  });
});
