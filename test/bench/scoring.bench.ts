/**
 * npm run bench:scoring [-- --profile heavy] — scoring throughput end to end against raw ONNX Runtime.
 *
 * Seeds a database of its own with IMAGES figures, 512×512 PNGs (smooth structure and a bright disc,
 * about 90 KiB; DESIGNS drawings, every file made distinct by a tEXt chunk, so each image is read and
 * decoded on its own), stored set-based in blob_objects and images the way an upload stores them,
 * and PER_IMAGE candidates per image whose conversations are the shared clinician demonstrations.
 * Registers the reference selector (or its compute-heavy profile) over GraphQL multipart and starts
 * one scoring run through the real queue and the worker running in this process beside the api.
 *
 * Prints candidates per second end to end (mutation → SUCCEEDED, polled over HTTP as a client
 * would) and the reference measured in the same process before and after the run: ONNX Runtime on
 * the same model bytes with the same session options and threads and the same batch size, tensors
 * built beforehand, session.run in a loop. Also their ratio, the run's time split (Run.metrics),
 * the CPU time of this process, how busy the machine was, the event loop's delay during the run
 * (p50, p99, max: inference runs in a thread of its own, so the api stays responsive), and peak RSS.
 *
 * Defaults: reference 3,000 images × 25 candidates, batches of 256; heavy 200 × 10, batches of 32.
 * Environment: DATABASE_URL (else an embedded Postgres), BENCH_PROFILE (reference | heavy; the
 * --profile flag wins), BENCH_IMAGES, BENCH_PER_IMAGE, BENCH_BATCH_SIZE, BENCH_RAW_SECONDS (each
 * reference measurement, default 10), and the app's ONNX_INTRA_OP_THREADS, ONNX_INTER_OP_THREADS,
 * ONNX_EXECUTION_PROVIDER.
 */
import 'reflect-metadata';
import crypto from 'node:crypto';
import os from 'node:os';
import zlib from 'node:zlib';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import sharp from 'sharp';
import { benchDatabase } from './bench-database';
import { loadConfig } from '../../src/platform/config';
import { OnnxRuntime, ort } from '../../src/platform/onnx';
import { loadTokenizer } from '../../src/platform/tokenizer';
import { fromGlobalId } from '../../src/platform/ids';
import { ReferenceProfile } from '../../src/modules/selectors/reference-selector';
import { imagePixels, selectorText } from '../../src/modules/selectors/selector-inputs';
import { selectorManifestSchema } from '../../src/modules/selectors/selector-manifest';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { demonstrationRounds, referenceSelectorUpload, registerSelector, seedCandidates, START_SCORING } from '../support/scoring-fixture';
import { readDemonstrations } from '../support/shared-data';

/** Busy and total CPU time of the whole machine so far (all processes: this one, Postgres, others), in ms. */
function machineCpu(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const { times } of os.cpus()) {
    const all = times.user + times.nice + times.sys + times.irq + times.idle;
    busy += all - times.idle;
    total += all;
  }
  return { busy, total };
}

function profileArg(): ReferenceProfile {
  const flag = process.argv.indexOf('--profile');
  const value = (flag >= 0 ? process.argv[flag + 1] : undefined) ?? process.env.BENCH_PROFILE ?? 'reference';
  if (value !== 'reference' && value !== 'heavy') throw new Error(`--profile must be reference or heavy, got ${value}`);
  return value;
}

const PROFILE = profileArg();
/**
 * The heavy model costs about 1.5 GMAC a row, so it gets fewer candidates for a run of similar
 * length, and batches of 32, a few hundred ms each on two cores.
 */
const IMAGES = Number(process.env.BENCH_IMAGES ?? (PROFILE === 'heavy' ? 200 : 4000));
const PER_IMAGE = Number(process.env.BENCH_PER_IMAGE ?? (PROFILE === 'heavy' ? 10 : 30));
const BATCH_SIZE = Number(process.env.BENCH_BATCH_SIZE ?? (PROFILE === 'heavy' ? 32 : 256));
const RAW_SECONDS = Number(process.env.BENCH_RAW_SECONDS ?? 10);
const IMAGE_SIDE = 512;
const SEED_CHUNK = 100;
const DESIGNS = 200;

/** A 512×512 RGB PNG with smooth, seed-dependent waves and a bright disc. */
async function figurePng(seed: number): Promise<Buffer> {
  const side = IMAGE_SIDE;
  const raw = Buffer.alloc(side * side * 3);
  const fx = 0.01 + (seed % 17) * 0.003;
  const fy = 0.013 + (seed % 23) * 0.002;
  const column = new Float64Array(side);
  const row = new Float64Array(side);
  for (let i = 0; i < side; i++) {
    column[i] = 60 * Math.sin(i * fx + seed);
    row[i] = 50 * Math.cos(i * fy + seed * 0.7);
  }
  const cx = 100 + ((seed * 37) % 300);
  const cy = 100 + ((seed * 53) % 300);
  const r2 = (40 + (seed % 60)) ** 2;
  for (let y = 0, i = 0; y < side; y++) {
    for (let x = 0; x < side; x++, i += 3) {
      const v = (x - cx) ** 2 + (y - cy) ** 2 < r2 ? 230 : 128 + column[x] + row[y];
      raw[i] = v;
      raw[i + 1] = v * 0.8;
      raw[i + 2] = 255 - v;
    }
  }
  return sharp(raw, { raw: { width: side, height: side, channels: 3 } }).png().toBuffer();
}

/** The PNG with a tEXt chunk before IEND: other bytes (another content hash), the same pixels. */
function withComment(png: Buffer, comment: string): Buffer {
  const body = Buffer.from(`Comment\0${comment}`, 'latin1');
  const chunk = Buffer.alloc(12 + body.length);
  chunk.writeUInt32BE(body.length, 0);
  chunk.write('tEXt', 4, 'latin1');
  body.copy(chunk, 8);
  chunk.writeUInt32BE(zlib.crc32(chunk.subarray(4, 8 + body.length)), 8 + body.length);
  const iend = png.length - 12;
  return Buffer.concat([png.subarray(0, iend), chunk, png.subarray(iend)]);
}

/** Images with their bytes, written the way ImagesService.upload stores them, SEED_CHUNK per statement. */
async function seedImages(app: TestApp, project: TestProject): Promise<{ imageIds: string[]; bytes: number }> {
  const records = readDemonstrations();
  // Distinct bytes for every image (each one is fetched and decoded on its own), drawn from fewer designs so seeding stays quick.
  const designs = await Promise.all(Array.from({ length: Math.min(IMAGES, DESIGNS) }, (_, i) => figurePng(i + 1)));
  const imageIds: string[] = [];
  let bytes = 0;
  for (let start = 0; start < IMAGES; start += SEED_CHUNK) {
    const seeds = Array.from({ length: Math.min(SEED_CHUNK, IMAGES - start) }, (_, i) => start + i + 1);
    const files = seeds.map((seed) => withComment(designs[seed % designs.length], `figure ${seed}`));
    const hashes = files.map((f) => crypto.createHash('sha256').update(f).digest('hex'));
    bytes += files.reduce((sum, f) => sum + f.length, 0);
    await app.ds.query(
      `INSERT INTO blob_objects (key, content_type, byte_size, data)
       SELECT 'projects/' || $1 || '/images/' || h, 'image/png', length(d), d FROM unnest($2::text[], $3::bytea[]) AS f(h, d)`,
      [project.id, hashes, files],
    );
    const rows: { id: string }[] = await app.ds.query(
      `INSERT INTO images (project_id, source, file_name, caption, mentions, modalities, content_hash, mime_type, width, height, byte_size)
       SELECT $1, 'UPLOAD', 'figure-' || f.n || '.png', f.caption, ARRAY[f.mention], ARRAY['OTHER']::modality[], f.hash, 'image/png', $2, $2, f.size
         FROM unnest($3::int[], $4::text[], $5::text[], $6::text[], $7::int[]) WITH ORDINALITY AS f(n, caption, mention, hash, size, k)
        ORDER BY f.k RETURNING id`,
      [
        project.id,
        IMAGE_SIDE,
        seeds,
        seeds.map((s) => records[s % records.length].fig_caption ?? `Figure ${s}`),
        seeds.map((s) => records[s % records.length].in_text_mention?.[0]?.tokens ?? `See Figure ${s}.`),
        hashes,
        files.map((f) => f.length),
      ],
    );
    imageIds.push(...rows.map((r) => r.id));
  }
  return { imageIds, bytes };
}

/**
 * Raw ONNX Runtime on the same model: one batch of BATCH_SIZE rows built beforehand (a real figure's
 * pixels, real candidate texts tokenized), session.run in a loop for RAW_SECONDS. Candidates per second.
 */
async function rawThroughput(app: TestApp, selectorId: string, imageId: string): Promise<{ rate: number; runs: number; threads: string }> {
  const config = loadConfig({ ...process.env, DATABASE_URL: app.databaseUrl });
  const runtime = new OnnxRuntime({
    executionProvider: config.ONNX_EXECUTION_PROVIDER,
    intraOpThreads: config.ONNX_INTRA_OP_THREADS,
    interOpThreads: config.ONNX_INTER_OP_THREADS,
    cudaDeviceId: config.ONNX_CUDA_DEVICE_ID,
  });
  const [model] = await app.ds.query(`SELECT manifest, files FROM selector_models WHERE id = $1`, [selectorId]);
  const blob = async (name: string) => (await app.ds.query(`SELECT data FROM blob_objects WHERE key = $1`, [model.files[name].key]))[0].data as Buffer;
  const manifest = selectorManifestSchema.parse(model.manifest);
  const { session } = await runtime.load(await blob('model'));
  const tokenizer = loadTokenizer((await blob('tokenizer')).toString('utf8'));
  const [image] = await app.ds.query(`SELECT i.caption, i.mentions, b.data FROM images i JOIN blob_objects b ON b.key = 'projects/' || i.project_id || '/images/' || i.content_hash WHERE i.id = $1`, [imageId]);
  const one = await imagePixels(image.data, manifest);
  const size = manifest.image.size;
  const maxLength = manifest.text.maxLength;
  const plane = 3 * size * size;
  const pixels = new Float32Array(BATCH_SIZE * plane);
  for (let i = 0; i < BATCH_SIZE; i++) pixels.set(one, i * plane);
  const conversations = demonstrationRounds();
  const texts = Array.from({ length: BATCH_SIZE }, (_, i) => selectorText({ caption: image.caption, mentions: image.mentions, rounds: conversations[i % conversations.length] }, manifest));
  const { inputIds, attentionMask } = tokenizer.encodeBatch(texts, maxLength);
  const feeds = {
    pixel_values: new ort.Tensor('float32', pixels, [BATCH_SIZE, 3, size, size]),
    input_ids: new ort.Tensor('int64', inputIds, [BATCH_SIZE, maxLength]),
    attention_mask: new ort.Tensor('int64', attentionMask, [BATCH_SIZE, maxLength]),
  };
  const outputs = [session.outputNames[0]];
  for (let i = 0; i < 3; i++) await session.run(feeds, outputs);
  let runs = 0;
  const started = performance.now();
  while (performance.now() - started < RAW_SECONDS * 1000 || runs < 5) {
    await session.run(feeds, outputs);
    runs++;
  }
  const seconds = (performance.now() - started) / 1000;
  await session.release();
  const threads = `intra-op ${config.ONNX_INTRA_OP_THREADS || 'default'}, inter-op ${config.ONNX_INTER_OP_THREADS || 'default'}, ${config.ONNX_EXECUTION_PROVIDER}`;
  return { rate: (runs * BATCH_SIZE) / seconds, runs, threads };
}

/** The event loop is sampled by a timer this often; the histogram holds each interval, the delay is what exceeds it. */
const LOOP_SAMPLE_MS = 1;
/** An interval from the event-loop histogram (ns) as the delay beyond the sampling interval, in ms. */
const ms = (ns: number) => Math.max(0, ns / 1e6 - LOOP_SAMPLE_MS).toFixed(1);

const POLL_MS = 1000;

const RUN_STATE = `query($id: ID!) { node(id: $id) { ... on Run { status total done failed metrics itemsPerSecond finishedAt } } }`;

/**
 * Polls the run over HTTP every POLL_MS until it ends. A poll that fails (a stall, or a kept-alive
 * connection the server is closing) is retried and counted. The run's end is its finishedAt, so the
 * poll interval does not round the time; polls are sparse because each one costs CPU that the run
 * shares (with inference off the event loop, every poll is answered at once).
 */
async function waitForRun(app: TestApp, key: string, runId: string, timeoutMs = 3_600_000): Promise<{ run: Record<string, any>; failedPolls: number }> {
  const deadline = Date.now() + timeoutMs;
  let failedPolls = 0;
  for (;;) {
    const res = await gql(app.graphqlUrl, key, RUN_STATE, { id: runId }).catch(() => null);
    const run = res?.data?.node;
    if (!run) failedPolls++;
    else if (['SUCCEEDED', 'FAILED', 'CANCELLED'].includes(run.status)) return { run, failedPolls };
    if (Date.now() > deadline) throw new Error(`run not finished after ${timeoutMs} ms: ${JSON.stringify(run ?? res?.errors)}`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

async function main(): Promise<void> {
  const stopDatabase = await benchDatabase();
  const onnxEnv = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k.startsWith('ONNX_') && v !== undefined)) as Record<string, string>;
  const app = await startTestApp({ RATE_LIMIT_PER_MINUTE: '0', ...onnxEnv }, { worker: true });
  let peakRss = 0;
  const sample = () => (peakRss = Math.max(peakRss, process.memoryUsage().rss));
  const sampler = setInterval(sample, 50);
  try {
    const lab = await createTestProject(app, 'bench-scoring');
    const seedStarted = Date.now();
    const { imageIds, bytes } = await seedImages(app, lab);
    for (let start = 0; start < imageIds.length; start += 500) await seedCandidates(app, lab, imageIds.slice(start, start + 500), PER_IMAGE);
    const total = IMAGES * PER_IMAGE;
    const registered = await registerSelector(app, lab.keys.CURATOR, PROFILE, referenceSelectorUpload({ profile: PROFILE }), { activate: true });
    const selector = registered.data?.registerSelectorModel?.selectorModel;
    if (!selector) throw new Error(`register failed: ${JSON.stringify(registered)}`);
    const selectorId = fromGlobalId(selector.id)!.id;
    await app.ds.query('VACUUM ANALYZE');
    console.log(
      `seeded ${IMAGES} PNG figures (${IMAGE_SIDE}×${IMAGE_SIDE}, ${(bytes / IMAGES / 1024).toFixed(0)} KiB on average) and ${total} candidates in ${((Date.now() - seedStarted) / 1000).toFixed(1)} s; ` +
        `scoring with the ${PROFILE} selector (${selector.manifest.image.size}×${selector.manifest.image.size}, ${selector.manifest.text.maxLength} tokens), batch ${BATCH_SIZE}, ${os.cpus().length} CPUs`,
    );
    // The reference before and after the run: other load on the machine shows as a difference.
    const rawBefore = await rawThroughput(app, selectorId, imageIds[0]);

    peakRss = 0;
    sample();
    const loopDelay = monitorEventLoopDelay({ resolution: LOOP_SAMPLE_MS });
    loopDelay.enable();
    const cpuBefore = machineCpu();
    const ownCpuBefore = process.cpuUsage();
    const started = Date.now();
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, START_SCORING, { input: { batchSize: BATCH_SIZE } });
    const runId = res.data?.startScoringRun?.run?.id;
    if (!runId) throw new Error(`start failed: ${JSON.stringify(res)}`);
    const { run, failedPolls } = await waitForRun(app, lab.keys.CURATOR, runId);
    // The server's clock is this process's clock.
    const seconds = ((run.finishedAt ? Date.parse(run.finishedAt) : Date.now()) - started) / 1000;
    const cpuAfter = machineCpu();
    const ownCpu = process.cpuUsage(ownCpuBefore);
    loopDelay.disable();
    const ownCpuSeconds = (ownCpu.user + ownCpu.system) / 1e6;
    const runPeakRss = peakRss;
    const metrics = (run.metrics ?? {}) as Record<string, number>;
    const e2e = run.done / seconds;

    const rawAfter = await rawThroughput(app, selectorId, imageIds[0]);
    const raw = (rawBefore.rate + rawAfter.rate) / 2;
    const share = (key: string) => `${String(metrics[key] ?? '?').padStart(7)} ms  ${metrics.totalMs ? ((100 * (metrics[key] ?? 0)) / metrics.totalMs).toFixed(1).padStart(5) : '    ?'} %`;
    console.log(`
scoring benchmark, ${PROFILE} selector (${run.done} scored, ${run.failed} failed of ${run.total}; ${IMAGES} images × ${PER_IMAGE} candidates, batch ${BATCH_SIZE})
  end to end (mutation to SUCCEEDED): ${seconds.toFixed(2)} s
  end to end:                         ${e2e.toFixed(1)} candidates/s   (Run.itemsPerSecond ${Number(run.itemsPerSecond ?? NaN).toFixed(1)})
  raw ONNX Runtime, same batch:       ${raw.toFixed(1)} candidates/s   (before the run ${rawBefore.rate.toFixed(1)}, after ${rawAfter.rate.toFixed(1)}; ${rawBefore.runs} + ${rawAfter.runs} runs of ${BATCH_SIZE} rows; ${rawBefore.threads})
  ratio end to end / raw:             ${(e2e / raw).toFixed(3)}
  time split (Run.metrics; batches are fetched while another is scored, so parts overlap):
    fetch      ${share('fetchMs')}
    preprocess ${share('preprocessMs')}
    tokenize   ${share('tokenizeMs')}
    infer      ${share('inferMs')}
    write      ${share('writeMs')}
    total      ${String(metrics.totalMs ?? '?').padStart(7)} ms
  CPU of the api + worker process:    ${ownCpuSeconds.toFixed(1)} s (${((1000 * ownCpuSeconds) / Math.max(1, run.done)).toFixed(3)} ms per candidate; all its threads)
  machine CPU busy during the run:    ${((100 * (cpuAfter.busy - cpuBefore.busy)) / (cpuAfter.total - cpuBefore.total)).toFixed(0)} % of ${os.cpus().length} CPUs (all processes, Postgres included)
  event loop delay of the api + worker: p50 ${ms(loopDelay.percentile(50))} ms, p99 ${ms(loopDelay.percentile(99))} ms, max ${ms(loopDelay.max)} ms (during the run; ${loopDelay.count} samples every ${LOOP_SAMPLE_MS} ms)${failedPolls ? `; ${failedPolls} status polls failed and were retried` : ''}
  peak RSS during the run (api + worker process): ${(runPeakRss / 2 ** 20).toFixed(0)} MiB
`);
    if (seconds < 30) console.log(`  note: the run took under 30 s; raise BENCH_IMAGES or BENCH_PER_IMAGE for a steady-state figure`);
    if (run.status !== 'SUCCEEDED' || run.done !== total) process.exitCode = 1;
  } finally {
    clearInterval(sampler);
    await app.stop();
    await stopDatabase();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
