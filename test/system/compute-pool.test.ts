/**
 * Compute off the event loop: a selector's session runs in a thread of its own and gives exactly
 * the scores of a session on the main thread, while the event loop keeps turning; k-means in the
 * shared compute pool gives exactly the result of kMeans on the main thread.
 */
import fs from 'node:fs';
import path from 'node:path';
import { OnnxRuntime, ort, ThreadedSession } from '../../src/platform/onnx';
import { closeComputePool, ComputePool } from '../../src/platform/compute-pool';
import { loadTokenizer } from '../../src/platform/tokenizer';
import { buildReferenceSelector, ReferenceProfile } from '../../src/modules/selectors/reference-selector';
import { selectorManifestSchema } from '../../src/modules/selectors/selector-manifest';
import { SelectorRow, SelectorRunner } from '../../src/modules/selectors/selector-runner';
import { imagePixels, selectorText } from '../../src/modules/selectors/selector-inputs';
import { kMeans, kMeansInThread } from '../../src/modules/clustering/features';
import { demonstrationRounds } from '../support/scoring-fixture';
import { SHARED_IMAGES } from '../support/shared-data';

const IMAGE_NAMES = ['bio_patch.png', 'med_img_1.png', 'synpic32933.jpg', 'synpic42202.jpg', 'xy_chromosome.jpg'];
const options = { executionProvider: 'cpu' as const, intraOpThreads: 0, interOpThreads: 0, cudaDeviceId: 0 };

/** A selector loaded in its own thread, with rows of real figures and clinician conversations. */
async function threadedSelector(profile: ReferenceProfile, rowCount: number) {
  const files = buildReferenceSelector({ profile });
  const manifest = selectorManifestSchema.parse(files.manifest);
  const tokenizer = loadTokenizer(files.tokenizer);
  const session = await new OnnxRuntime(options).loadInThread(files.model);
  const pixels = await Promise.all(IMAGE_NAMES.map((name) => imagePixels(fs.readFileSync(path.join(SHARED_IMAGES, name)), manifest)));
  const conversations = demonstrationRounds();
  const rows: SelectorRow[] = Array.from({ length: rowCount }, (_, i) => ({
    pixels: pixels[i % pixels.length],
    text: selectorText({ caption: `Figure ${i}`, mentions: [`As shown in Figure ${i}.`], rounds: conversations[i % conversations.length] }, manifest),
  }));
  return { files, manifest, tokenizer, session, rows, runner: new SelectorRunner(session, tokenizer, manifest) };
}

describe('ONNX sessions in worker threads', () => {
  const sessions: ThreadedSession[] = [];
  afterAll(async () => {
    await Promise.all(sessions.map((s) => s.release()));
  });

  it('gives bit-identical scores to a session on the main thread, for the reference selector', async () => {
    const { files, manifest, tokenizer, session, rows, runner } = await threadedSelector('reference', 12);
    sessions.push(session);
    expect(session.provider).toBe('cpu');
    expect(session.inputs.map((i) => i.name).sort()).toEqual(['attention_mask', 'input_ids', 'pixel_values']);

    const inThread = await runner.score(rows);
    // A second batch reuses the shared pixel buffer; the scores must not depend on it.
    const again = await runner.score(rows);

    const main = await new OnnxRuntime(options).load(files.model);
    const { size } = manifest.image;
    const { maxLength } = manifest.text;
    const plane = 3 * size * size;
    const pixels = new Float32Array(rows.length * plane);
    rows.forEach((row, i) => pixels.set(row.pixels, i * plane));
    const { inputIds, attentionMask } = tokenizer.encodeBatch(rows.map((r) => r.text), maxLength);
    const outputName = main.session.outputNames[0];
    const out = await main.session.run(
      {
        pixel_values: new ort.Tensor('float32', pixels, [rows.length, 3, size, size]),
        input_ids: new ort.Tensor('int64', inputIds, [rows.length, maxLength]),
        attention_mask: new ort.Tensor('int64', attentionMask, [rows.length, maxLength]),
      },
      [outputName],
    );
    const onMain = Array.from(out[outputName].data as Float32Array);
    await main.session.release();

    expect(onMain).toHaveLength(rows.length);
    expect(new Set(onMain).size).toBeGreaterThan(1);
    // toEqual on plain numbers: exact, bit for bit (Object.is), no tolerance.
    expect(Array.from(inThread)).toEqual(onMain);
    expect(Array.from(again)).toEqual(onMain);
  });

  it('keeps the event loop turning while a heavy batch is scored', async () => {
    const { session, rows, runner } = await threadedSelector('heavy', 32);
    sessions.push(session);
    await runner.score(rows.slice(0, 1)); // warm up: the first run of a session allocates its buffers
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 1);
    try {
      const scoring = runner.score(rows);
      const ticksAtStart = ticks;
      const scores = await scoring;
      // A session on the main thread holds the loop for the whole batch: no interval callback could run.
      expect(ticks - ticksAtStart).toBeGreaterThan(0);
      expect(scores).toHaveLength(rows.length);
    } finally {
      clearInterval(ticker);
    }
  });

  it('loads the session again when its thread dies, and scores the same', async () => {
    const { session, rows, runner } = await threadedSelector('reference', 6);
    sessions.push(session);
    const before = Array.from(await runner.score(rows));
    // End the session's thread the way a crash would (process.exit in a worker ends only that thread).
    const thread = (session as unknown as { thread: ComputePool }).thread;
    await expect(thread.call('node:process', 'exit', [1])).rejects.toThrow();
    expect(Array.from(await runner.score(rows))).toEqual(before);
  });

  it('reports a model that does not load, and the thread is gone', async () => {
    const model = buildReferenceSelector().model;
    await expect(new OnnxRuntime(options).loadInThread(model.subarray(0, 100))).rejects.toThrow();
  });

  it('rejects a batch once its session is released', async () => {
    const { session, rows, runner } = await threadedSelector('reference', 2);
    sessions.push(session);
    await session.release();
    await expect(runner.score(rows)).rejects.toThrow('The compute pool is closed');
    sessions.pop();
  });
});

describe('k-means in the compute pool', () => {
  afterAll(() => closeComputePool());

  /** Seeded rows in three loose groups. */
  function groupedRows(count: number, dimension: number): Float32Array[] {
    let state = 12345;
    const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    return Array.from({ length: count }, (_, i) => Float32Array.from({ length: dimension }, (_, d) => (d % 3 === i % 3 ? 5 : 0) + random()));
  }

  it('gives exactly the result of kMeans on the main thread', async () => {
    const rows = groupedRows(600, 24);
    const [inThread, again] = await Promise.all([kMeansInThread(rows, 5, 42), kMeansInThread(rows, 5, 42, 3)]);
    expect(inThread).toEqual(kMeans(rows, 5, 42));
    expect(again).toEqual(kMeans(rows, 5, 42, 3));
    expect(inThread.k).toBe(5);
    // The caller's rows are cloned, not transferred.
    expect(rows[0]).toHaveLength(24);
  });

  it('rejects bad arguments with the same message', async () => {
    await expect(kMeansInThread([[1, 2], [3]], 1, 1)).rejects.toThrow(/Row 1/);
    await expect(kMeansInThread([[1]], 0, 1)).rejects.toThrow(/k must be an integer >= 1/);
  });
});
