/**
 * npm run bench:training-engine — training throughput of the selector-head engine for the paper's
 * head (D = 1024 joined embeddings, hidden [512, 512, 512], batches of 256 pairs).
 *
 * Measures, in this process and on the same random pairs:
 *   train:     trainHead end to end (batch gathering, ONNX Runtime forward + backward, Adam in JS),
 *              in pairs per second over BENCH_EPOCHS epochs;
 *   worker:    the same through trainHeadInWorker (one worker thread);
 *   reference: the raw training step alone (session.run on tensors built beforehand, no Adam, no
 *              gathering), and forward-only inference of both sides of each pair with the exported
 *              head graph; both in pairs per second with the same threads.
 * It prints each figure, the ratio of train to the raw step, the Adam time per step, and the
 * machine's load average before and after (a busy machine lowers every figure).
 *
 * Environment: BENCH_PAIRS (default 5,120), BENCH_EPOCHS (3), BENCH_BATCH_SIZE (256),
 * BENCH_THREADS (ONNX Runtime intra-op threads, default 1).
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Adam } from '../../src/modules/training/adam';
import { HeadShape } from '../../src/modules/training/head-graph';
import { gatherBatch, HeadScorer, initialHeadParameters, PairBatch, PreferencePairs, trainHead, TrainingConfig, TrainingStepSession } from '../../src/modules/training/head-trainer';
import { seededRandom } from '../../src/modules/training/random';
import { trainHeadInWorker } from '../../src/modules/training/training-worker';

const PAIRS = Number(process.env.BENCH_PAIRS ?? 5_120);
const EPOCHS = Number(process.env.BENCH_EPOCHS ?? 3);
const BATCH = Number(process.env.BENCH_BATCH_SIZE ?? 256);
const THREADS = Number(process.env.BENCH_THREADS ?? 1);
const shape: HeadShape = { inputDim: 1024, hidden: [512, 512, 512] };

function randomPairs(): PreferencePairs {
  const random = seededRandom('bench-pairs', 1);
  const values = (n: number) => Float32Array.from({ length: n }, () => 2 * random() - 1);
  return { dim: shape.inputDim, chosen: values(PAIRS * shape.inputDim), rejected: values(PAIRS * shape.inputDim), weights: Float32Array.from({ length: PAIRS }, (_, i) => (i % 10 === 0 ? 10 : 1)) };
}

function batches(pairs: PreferencePairs): PairBatch[] {
  const out: PairBatch[] = [];
  for (let start = 0; start < PAIRS; start += BATCH) {
    out.push(gatherBatch(pairs, pairs.weights!, Uint32Array.from({ length: Math.min(BATCH, PAIRS - start) }, (_, i) => start + i)));
  }
  return out;
}

const rate = (pairs: number, ms: number) => (pairs / ms) * 1000;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const loadBefore = os.loadavg();
  const pairs = randomPairs();
  const config: TrainingConfig = { hidden: shape.hidden, loss: { kind: 'logistic' }, epochs: EPOCHS, batchSize: BATCH, learningRate: 1e-4, seed: 1 };
  const options = { intraOpThreads: THREADS };
  console.log(`head ${shape.inputDim}→${shape.hidden.join('→')}→1, ${PAIRS} pairs × ${EPOCHS} epochs, batches of ${BATCH}, ${THREADS} ORT thread(s), ${os.cpus().length} CPUs, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);

  // Warm-up: one short run so session creation and first-run allocation do not count.
  await trainHead({ ...pairs, chosen: pairs.chosen.subarray(0, BATCH * shape.inputDim), rejected: pairs.rejected.subarray(0, BATCH * shape.inputDim), weights: pairs.weights!.subarray(0, BATCH) }, { ...config, epochs: 1 }, options);

  let started = performance.now();
  const trained = await trainHead(pairs, config, options);
  const trainMs = performance.now() - started;

  started = performance.now();
  await trainHeadInWorker(pairs, config, options);
  const workerMs = performance.now() - started;

  // Reference 1: the raw step (forward + backward in ONNX Runtime), tensors ready, no Adam.
  const parameters = initialHeadParameters(shape, 1);
  const prepared = batches(pairs);
  const session = await TrainingStepSession.create(shape, config.loss, options);
  await session.run(parameters, prepared[0]);
  let stepMs = 0;
  let adamMs = 0;
  const adam = new Adam(parameters.tensors.map((t) => t.length), { learningRate: 1e-4 });
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    for (const batch of prepared) {
      let t = performance.now();
      const out = await session.run(parameters, batch);
      stepMs += performance.now() - t;
      t = performance.now();
      adam.step(parameters.tensors, out.gradients);
      adamMs += performance.now() - t;
    }
  }
  await session.release();

  // Reference 2: forward-only inference of both sides with the exported head graph.
  const scorer = await HeadScorer.create(trained.parameters, options);
  await scorer.score(prepared[0].chosen);
  started = performance.now();
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    for (const batch of prepared) {
      await scorer.score(batch.chosen);
      await scorer.score(batch.rejected);
    }
  }
  const forwardMs = performance.now() - started;
  await scorer.release();

  const total = PAIRS * EPOCHS;
  const steps = prepared.length * EPOCHS;
  console.log(`train (gather + ORT forward/backward + Adam): ${fmt(rate(total, trainMs))} pairs/s  (${(trainMs / 1000).toFixed(1)} s, final epoch loss ${trained.epochs[trained.epochs.length - 1].meanLoss.toFixed(4)})`);
  console.log(`train on a worker thread:                     ${fmt(rate(total, workerMs))} pairs/s  (includes worker start and copying the pairs)`);
  console.log(`reference, raw ORT step (no Adam):            ${fmt(rate(total, stepMs))} pairs/s  (${(stepMs / steps).toFixed(1)} ms/step)`);
  console.log(`reference, forward-only inference:            ${fmt(rate(total, forwardMs))} pairs/s`);
  console.log(`Adam over ${fmt(parameters.tensors.reduce((n, t) => n + t.length, 0))} parameters: ${(adamMs / steps).toFixed(1)} ms/step`);
  console.log(`train / raw step: ${(stepMs / trainMs).toFixed(2)}; load average after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
