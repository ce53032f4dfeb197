/**
 * npm run bench:training — training throughput end to end through a TRAINING run (issue 11),
 * against the raw engine's rate on the same batches in the same process.
 *
 * Seeds a project of its own: IMAGES noise figures, PER_IMAGE TWO_ANSWERS candidates per image with
 * ROUNDS rounds, a model rating for every answer (random 0-10: equal ratings make no pair) and
 * CLINICIAN_PAIRS clinician choices, written set-based the way the rating run and recordPreference
 * store them (this bench measures training, not ingestion). Registers the reference encoder over
 * GraphQL multipart, then starts TRAINING runs through the real queue and the worker running in this
 * process: the paper's head (512-512-512), batches of BATCH pairs, EPOCHS epochs, clinician weight 10.
 *
 * Prints, for the first run (which also computes and stores the embeddings) and a second run on the
 * same data (embeddings read from the table, the steady state), training pairs per second end to end
 * (pairs × epochs ÷ the run's startedAt → finishedAt; the whole run: data loading, embeddings, the
 * worker thread, each epoch's checkpoint written to Postgres, the ONNX export and its validation), and
 * the reference: trainHead (HeadTrainer: batch gathering, ONNX Runtime forward + backward, Adam in JS)
 * on exactly the run's pairs (rebuilt by the training module's loadTrainingData + pairTensors, so the
 * same batches in the same order) with the same config and threads, in this process, measured
 * before and after the runs. Then the ratio (goal ≥ 0.9) and the load average.
 *
 * Environment: DATABASE_URL (else an embedded Postgres), BENCH_IMAGES (100), BENCH_PER_IMAGE (10),
 * BENCH_ROUNDS (5), BENCH_CLINICIAN_PAIRS (300), BENCH_EPOCHS (5), BENCH_BATCH_SIZE (256).
 */
import 'reflect-metadata';
import os from 'node:os';
import sharp from 'sharp';
import { benchDatabase } from './bench-database';
import { createTestProject, startTestApp } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { waitForRun } from '../support/pipeline-fixture';
import { referenceEncoderUpload, registerEncoder } from '../support/training-fixture';
import { fromGlobalId, toGlobalId } from '../../src/platform/ids';
import { seededRandom } from '../../src/modules/evaluation/bootstrap';
import { trainHead, TrainingConfig } from '../../src/modules/training/head-trainer';
import { trainHeadInWorker } from '../../src/modules/training/training-worker';
import { loadTrainingData, pairTensors } from '../../src/modules/training/training-data';
import { trainingParamsSchema } from '../../src/modules/training/training.service';

const IMAGES = Number(process.env.BENCH_IMAGES ?? 100);
const PER_IMAGE = Number(process.env.BENCH_PER_IMAGE ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CLINICIAN_PAIRS = Number(process.env.BENCH_CLINICIAN_PAIRS ?? 300);
const EPOCHS = Number(process.env.BENCH_EPOCHS ?? 5);
const BATCH = Number(process.env.BENCH_BATCH_SIZE ?? 256);
const WEIGHT = 10;
const WORDS = ['nodule', 'effusion', 'fracture', 'edema', 'stenosis', 'hemorrhage', 'abscess', 'cyst', 'fibrosis', 'tumor', 'lesion', 'infection', 'swelling', 'bleeding', 'calcium', 'fluid'];

const START_TRAINING = `mutation($input: StartTrainingRunInput!) { startTrainingRun(input: $input) { run { id } userErrors { field message code } } }`;

async function noiseImage(seed: number): Promise<Buffer> {
  const raw = Buffer.alloc(32 * 32 * 3);
  const random = seededRandom(seed);
  for (let i = 0; i < raw.length; i++) raw[i] = Math.floor(random() * 256);
  return sharp(raw, { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer();
}

const rate = (pairs: number, ms: number) => (pairs / ms) * 1000;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const stopDatabase = await benchDatabase();
  const app = await startTestApp({}, { worker: true });
  const loadBefore = os.loadavg()[0];
  try {
    const lab = await createTestProject(app, 'training-bench');
    const ctx = lab.ctx();
    const random = seededRandom(42);
    const answer = () => `Findings: ${Array.from({ length: 4 }, () => WORDS[Math.floor(random() * WORDS.length)]).join(' ')}.`;
    const imageIds: string[] = [];
    for (let i = 0; i < IMAGES; i++) imageIds.push((await app.services.images.upload(ctx, await noiseImage(i + 1), `f${i}.png`, { caption: `Synthetic figure ${i + 1}.`, mentions: [] })).id);
    const candidates: { id: string }[] = await app.ds.query(
      `INSERT INTO candidates (project_id, image_id, sample_index, status, form, rounds, model)
       SELECT $1, r.image_id, r.sample, 'OK', 'TWO_ANSWERS', r.rounds, 'bench' FROM unnest($2::uuid[], $3::int[], $4::jsonb[]) AS r(image_id, sample, rounds) RETURNING id`,
      [
        lab.id,
        imageIds.flatMap((id) => Array(PER_IMAGE).fill(id)),
        imageIds.flatMap(() => Array.from({ length: PER_IMAGE }, (_, s) => s)),
        imageIds.flatMap(() => Array.from({ length: PER_IMAGE }, () => JSON.stringify(Array.from({ length: ROUNDS }, (_, r) => ({ question: `Question ${r + 1}?`, answers: [answer(), answer()] }))))),
      ],
    );
    const ratings = candidates.flatMap((c) => Array.from({ length: ROUNDS * 2 }, (_, i) => ({ c: c.id, round: i >> 1, answer: i & 1, rating: Math.floor(random() * 11) })));
    await app.ds.query(
      `INSERT INTO preferences (project_id, candidate_id, source, kind, judge_model, round_index, answer_index, rating, rubric_version)
       SELECT $1, r.c, 'MODEL', 'RATING', 'bench-judge', r.round, r.answer, r.rating, 'rubric/v1' FROM unnest($2::uuid[], $3::int[], $4::int[], $5::float8[]) AS r(c, round, answer, rating)`,
      [lab.id, ratings.map((r) => r.c), ratings.map((r) => r.round), ratings.map((r) => r.answer), ratings.map((r) => r.rating)],
    );
    const chosen = Array.from({ length: CLINICIAN_PAIRS }, (_, i) => ({ c: candidates[(i * 7919) % candidates.length].id, round: i % ROUNDS, choice: random() < 0.5 ? 'A' : 'B' }));
    await app.ds.query(
      `INSERT INTO preferences (project_id, candidate_id, source, kind, annotator_id, round_index, choice)
       SELECT $1, r.c, 'CLINICIAN', 'PAIRWISE', $5, r.round, r.choice::pairwise_choice FROM unnest($2::uuid[], $3::int[], $4::text[]) AS r(c, round, choice)`,
      [lab.id, chosen.map((r) => r.c), chosen.map((r) => r.round), chosen.map((r) => r.choice), lab.userIds.CLINICIAN],
    );
    const encoder = await registerEncoder(app, lab.keys.CURATOR, 'reference-encoder', referenceEncoderUpload());
    if (encoder.errors || encoder.data!.registerEncoderModel.userErrors.length) throw new Error(JSON.stringify(encoder.errors ?? encoder.data!.registerEncoderModel.userErrors));
    const encoderId = fromGlobalId(encoder.data!.registerEncoderModel.encoderModel.id)!.id;
    console.log(`data: ${IMAGES} images × ${PER_IMAGE} candidates × ${ROUNDS} rounds × 2 answers, ${ratings.length} model ratings, ${CLINICIAN_PAIRS} clinician choices; head 512-512-512, batches of ${BATCH}, ${EPOCHS} epochs, w = ${WEIGHT}`);

    const input = { encoderId: toGlobalId('EncoderModel', encoderId), selectorName: 'bench', clinicianWeight: WEIGHT, epochs: EPOCHS, batchSize: BATCH, hiddenSizes: [512, 512, 512], seed: 1 };
    const runs: { label: string; pairs: number; ms: number; clientMs: number; params: any; metrics: any }[] = [];
    let reference: number[] = [];
    const split: { loadMs: number; trainHeadMs: number; workerMs: number }[] = [];
    const measureReference = async (params: any) => {
      const parsed = trainingParamsSchema.parse(params);
      const model = (await app.services.encoders.findById(ctx, encoderId))!;
      const t00 = performance.now();
      const data = await loadTrainingData(ctx, parsed, model, { preferences: app.services.preferences, candidates: app.services.candidates, images: app.services.images, encoders: app.services.encoders });
      const pairs = pairTensors(data.training, data.rows, data.dim, WEIGHT);
      const t1 = performance.now();
      const config: TrainingConfig = { hidden: parsed.hiddenSizes, loss: parsed.loss, epochs: parsed.epochs, batchSize: parsed.batchSize, learningRate: parsed.learningRate, seed: parsed.seed };
      const t0 = performance.now();
      await trainHead(pairs, config, { intraOpThreads: 1 });
      const trainMs = performance.now() - t0;
      // Where a run's time goes besides the steps: its data load, and the worker thread with per-epoch checkpoints (the run also validates on the held-out pairs).
      const validation = data.validation.length ? pairTensors(data.validation, data.rows, data.dim, 1) : undefined;
      const t2 = performance.now();
      await trainHeadInWorker(pairs, config, { intraOpThreads: 1 }, { checkpoints: true, validation, onEpoch: () => undefined });
      split.push({ loadMs: t1 - t00, trainHeadMs: trainMs, workerMs: performance.now() - t2 });
      return rate(data.training.length * parsed.epochs, trainMs);
    };
    for (const label of ['first run (computes embeddings)', 'second run (stored embeddings)']) {
      const t0 = performance.now();
      const res = await gql(app.graphqlUrl, lab.keys.CURATOR, START_TRAINING, { input });
      if (res.errors || res.data!.startTrainingRun.userErrors.length) throw new Error(JSON.stringify(res.errors ?? res.data!.startTrainingRun.userErrors));
      const runId = res.data!.startTrainingRun.run.id;
      const ended = await waitForRun(app, lab.keys.CURATOR, runId, 1_800_000);
      const clientMs = performance.now() - t0;
      if (ended.status !== 'SUCCEEDED') throw new Error(`training run ${ended.status}: ${ended.lastError}`);
      const run = (await app.services.runs.findById(ctx, fromGlobalId(runId)!.id))!;
      const counts = (run.params as any).pairCounts as { model: number; clinician: number };
      runs.push({ label, pairs: counts.model + counts.clinician, ms: run.finishedAt!.getTime() - run.startedAt!.getTime(), clientMs, params: run.params, metrics: run.metrics ?? {} });
      if (reference.length === 0) reference.push(await measureReference(run.params));
    }
    reference.push(await measureReference(runs[0].params));
    reference = reference.sort((a, b) => a - b);
    const ref = reference.reduce((a, b) => a + b, 0) / reference.length;
    console.log(`reference: trainHead on the run's own pairs in this process: ${reference.map(fmt).join(' and ')} pairs/s (before / after), mean ${fmt(ref)}`);
    for (const r of runs) {
      const e2e = rate(r.pairs * EPOCHS, r.ms);
      const client = rate(r.pairs * EPOCHS, r.clientMs);
      console.log(`${r.label}: ${fmt(r.pairs)} training pairs × ${EPOCHS} epochs in ${(r.ms / 1000).toFixed(1)} s (startedAt → finishedAt): ${fmt(e2e)} pairs/s, ratio to the reference ${(e2e / ref).toFixed(2)}`);
      console.log(`  from the user's side (mutation → SUCCEEDED seen by the client, ${(r.clientMs / 1000).toFixed(1)} s): ${fmt(client)} pairs/s, ratio ${(client / ref).toFixed(2)}`);
      if (r.metrics.trainingMs) console.log(`  its training phase (the worker thread with each epoch and checkpoint written to Postgres; Run.metrics trainingMs): ${fmt(rate(r.metrics.trainedPairs, r.metrics.trainingMs))} pairs/s, ratio ${(rate(r.metrics.trainedPairs, r.metrics.trainingMs) / ref).toFixed(2)}`);
    }
    for (const p of split) console.log(`in this process: loadTrainingData ${(p.loadMs / 1000).toFixed(1)} s (stored embeddings), trainHead ${(p.trainHeadMs / 1000).toFixed(1)} s, trainHeadInWorker with checkpoints and held-out validation per epoch ${(p.workerMs / 1000).toFixed(1)} s; the rest of a run is writing epochs and checkpoints to Postgres, the ONNX export and its validation, and the queue`);
    console.log(`machine: ${os.cpus().length} cores, load average ${loadBefore.toFixed(2)} at start, ${os.loadavg()[0].toFixed(2)} at the end`);
  } finally {
    await app.stop();
    await stopDatabase();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
