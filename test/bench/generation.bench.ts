/**
 * npm run bench:generation — sustained generation throughput against the ideal.
 *
 * A real worker (in-process with the api, through the Postgres job queue) generates candidates for
 * IMAGES images × SAMPLES samples against the fake OpenAI-compatible server, run as a process of
 * its own with a fixed LATENCY_MS per reply, CONCURRENCY requests in flight. The reference is the
 * ideal throughput CONCURRENCY ÷ latency. Prints candidates per second, the ratio to the ideal,
 * peak memory of the api + worker process, and checks from the server's own request log that the
 * configured requests-per-minute limit was never exceeded.
 */
import 'reflect-metadata';
import path from 'node:path';
import { ChildProcess, spawn } from 'node:child_process';
import readline from 'node:readline';
import sharp from 'sharp';
import { benchDatabase } from './bench-database';
import { createTestProject, startTestApp } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { START_GENERATION, waitForRun } from '../support/pipeline-fixture';
import { readDemonstrations } from '../support/shared-data';
import { toGlobalId } from '../../src/platform/ids';
import { Modality } from '../../src/modules/images/modality';

const IMAGES = Number(process.env.BENCH_IMAGES ?? 160);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 20);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 200);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const REQUESTS_PER_MINUTE = Number(process.env.BENCH_RPM ?? 12_000);

async function noiseImage(seed: number): Promise<Buffer> {
  const raw = Buffer.alloc(128 * 128 * 3);
  let state = seed * 2654435761;
  for (let i = 0; i < raw.length; i++) raw[i] = (state = (state * 1103515245 + 12345) >>> 0) >>> 24;
  return sharp(raw, { raw: { width: 128, height: 128, channels: 3 } }).png().toBuffer();
}

interface FakeServer {
  baseUrl: string;
  child: ChildProcess;
  stats(): Promise<{ maxInFlight: number; requests: { endpoint: string; receivedAt: number }[] }>;
}

async function startFakeServer(latencyMs: number): Promise<FakeServer> {
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, '..', 'fakes', 'openai-server.main.ts')], {
    env: { ...process.env, FAKE_LATENCY_MS: String(latencyMs) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const firstLine = await new Promise<string>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`fake server exited with ${code}`)));
  });
  const baseUrl = (JSON.parse(firstLine) as { baseUrl: string }).baseUrl;
  return { baseUrl, child, stats: async () => (await fetch(baseUrl.replace(/\/v1$/, '/_fake/stats'))).json() as never };
}

/** Most request starts in any window of `windowMs`, from sorted timestamps. */
function maxInWindow(times: number[], windowMs: number): number {
  let best = 0;
  for (let start = 0, end = 0; end < times.length; end++) {
    while (times[end] - times[start] >= windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

async function main(): Promise<void> {
  const stopDatabase = await benchDatabase();
  const fake = await startFakeServer(LATENCY_MS);
  const app = await startTestApp(
    {
      RATE_LIMIT_PER_MINUTE: '0',
      OPENAI_API_KEY: 'sk-bench',
      OPENAI_BASE_URL: fake.baseUrl,
      LLM_MAX_CONCURRENCY: String(CONCURRENCY),
      LLM_REQUESTS_PER_MINUTE: String(REQUESTS_PER_MINUTE),
      LLM_TOKENS_PER_MINUTE: '0',
    },
    { worker: true },
  );
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
  try {
    const lab = await createTestProject(app, 'bench-gen');
    const ctx = lab.ctx();
    await app.services.recordsImport.import(ctx, readDemonstrations(), [], { createDemonstrations: true });
    const ids: string[] = [];
    for (let i = 0; i < IMAGES; i++) {
      const image = await app.services.images.upload(ctx, await noiseImage(i + 1), `noise-${i}.png`, { caption: `Benchmark figure ${i}: synthetic texture.`, mentions: [`Figure ${i} is synthetic.`], modalities: [Modality.OTHER] });
      ids.push(toGlobalId('Image', image.id));
    }
    console.log(`seeded ${IMAGES} images and 58 demonstrations; generating ${IMAGES * SAMPLES} candidates at concurrency ${CONCURRENCY}, ${LATENCY_MS} ms per reply`);
    const started = Date.now();
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, START_GENERATION, {
      input: { images: { imageIds: ids }, samplesPerImage: SAMPLES, seed: 1, limits: { concurrency: CONCURRENCY } },
    });
    if (!res.data?.startGenerationRun?.run) throw new Error(`start failed: ${JSON.stringify(res)}`);
    const run = await waitForRun(app, lab.keys.CURATOR, res.data.startGenerationRun.run.id, 600_000);
    const finished = Date.now();
    const stats = await fake.stats();
    const times = stats.requests.filter((r) => r.endpoint === 'chat').map((r) => r.receivedAt).sort((a, b) => a - b);
    const busySeconds = (finished - times[0]) / 1000;
    const rate = run.done / busySeconds;
    const ideal = CONCURRENCY / (LATENCY_MS / 1000);
    const perSecondLimit = REQUESTS_PER_MINUTE / 60;
    const maxPerSecond = maxInWindow(times, 1000);
    const maxPerMinute = maxInWindow(times, 60_000);
    console.log(`
generation benchmark (${run.done} OK, ${run.failed} failed of ${run.total}; ${times.length} requests)
  end to end (mutation to SUCCEEDED): ${((finished - started) / 1000).toFixed(2)} s
  sustained (first request to SUCCEEDED): ${rate.toFixed(1)} candidates/s
  ideal (concurrency ÷ latency):          ${ideal.toFixed(1)} candidates/s
  ratio to ideal:                         ${(rate / ideal).toFixed(3)}
  most requests in flight at once:        ${stats.maxInFlight}
  peak RSS (api + worker process):        ${(peakRss / 2 ** 20).toFixed(0)} MiB
  rate limit ${REQUESTS_PER_MINUTE}/min: most starts in any 1 s window ${maxPerSecond} (allowed ${Math.ceil(perSecondLimit)}), in any 60 s window ${maxPerMinute} (allowed ${REQUESTS_PER_MINUTE}) -> ${maxPerSecond <= Math.ceil(perSecondLimit) && maxPerMinute <= REQUESTS_PER_MINUTE ? 'never exceeded' : 'EXCEEDED'}
`);
    if (run.status !== 'SUCCEEDED' || run.done !== run.total) process.exitCode = 1;
    if (maxPerSecond > Math.ceil(perSecondLimit) || maxPerMinute > REQUESTS_PER_MINUTE) process.exitCode = 1;
  } finally {
    clearInterval(sampler);
    await app.stop();
    fake.child.kill('SIGTERM');
    await stopDatabase();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
