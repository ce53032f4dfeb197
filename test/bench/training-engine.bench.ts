/**
 * npm run bench:training-engine — training throughput of the selector-head engine for the paper's
 * head (D = 1024 joined embeddings, hidden [512, 512, 512], batches of 256 pairs).
 *
 * Measures, in this process and on the same random pairs, in BENCH_ROUNDS rounds whose order
 * rotates (so a busy spell on a shared machine hits every kind alike), and prints the medians:
 *   train:     one epoch of HeadTrainer (batch gathering, ONNX Runtime forward + backward, Adam in
 *              JS), in pairs per second;
 *   reference: the raw training step alone over the same number of batches (session.run on tensors
 *              built beforehand, no Adam, no gathering), and forward-only inference of both sides
 *              of each pair with the exported head graph; both in pairs per second, same threads;
 *   Adam alone, in ms per step.
 * Then one whole run of BENCH_ROUNDS epochs through trainHeadInWorker (worker start included).
 * It prints the ratio of train to the raw step and the load average before and after.
 *
 * Environment: BENCH_PAIRS (default 5,120), BENCH_ROUNDS (5), BENCH_BATCH_SIZE (256),
 * BENCH_THREADS (ONNX Runtime intra-op threads, default 1).
 */
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import { Adam } from '../../src/modules/training/adam';
import { HeadShape } from '../../src/modules/training/head-graph';
import { gatherBatch, HeadScorer, HeadTrainer, initialHeadParameters, PairBatch, PreferencePairs, TrainingConfig, TrainingStepSession } from '../../src/modules/training/head-trainer';
import { seededRandom } from '../../src/modules/training/random';
import { trainHeadInWorker } from '../../src/modules/training/training-worker';

const PAIRS = Number(process.env.BENCH_PAIRS ?? 5_120);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
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

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

async function main(): Promise<void> {
  const loadBefore = os.loadavg();
  const pairs = randomPairs();
  const config: TrainingConfig = { hidden: shape.hidden, loss: { kind: 'logistic' }, epochs: ROUNDS, batchSize: BATCH, learningRate: 1e-4, seed: 1 };
  const options = { intraOpThreads: THREADS };
  console.log(`head ${shape.inputDim}→${shape.hidden.join('→')}→1, ${PAIRS} pairs per epoch, ${ROUNDS} rounds, batches of ${BATCH}, ${THREADS} ORT thread(s), ${os.cpus().length} CPUs, load ${loadBefore.map((l) => l.toFixed(2)).join(' ')}`);

  const trainer = await HeadTrainer.create(pairs, config, options);
  const prepared = batches(pairs);
  const parameters = initialHeadParameters(shape, 1);
  const session = await TrainingStepSession.create(shape, config.loss, options);
  const scorer = await HeadScorer.create(parameters, options);
  const adam = new Adam(parameters.tensors.map((t) => t.length), { learningRate: 1e-4 });
  let adamMs = 0;

  const measure = {
    // The engine: gather a shuffled batch, ORT forward + backward, Adam in JS.
    train: async () => void (await trainer.runEpoch()),
    // Reference: the same number of raw ORT steps on tensors built beforehand, no Adam.
    rawStep: async () => {
      for (const batch of prepared) await session.run(parameters, batch);
    },
    // Reference: forward-only inference of both sides with the exported head graph.
    forward: async () => {
      for (const batch of prepared) (await scorer.score(batch.chosen), await scorer.score(batch.rejected));
    },
    // Adam alone on gradients of the right size.
    adam: async () => {
      const gradients = parameters.tensors.map((t) => t.map((_, i) => Math.sin(i)));
      const started = performance.now();
      for (let i = 0; i < prepared.length; i++) adam.step(parameters.tensors, gradients);
      adamMs += performance.now() - started;
    },
  };
  type Kind = keyof typeof measure;
  const kinds = Object.keys(measure) as Kind[];
  // Warm-up, then rounds in rotating order so a busy spell on the machine hits every kind alike.
  await session.run(parameters, prepared[0]);
  await scorer.score(prepared[0].chosen);
  const times: Record<Kind, number[]> = { train: [], rawStep: [], forward: [], adam: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < kinds.length; k++) {
      const kind = kinds[(k + round) % kinds.length];
      const started = performance.now();
      await measure[kind]();
      times[kind].push(performance.now() - started);
    }
  }
  const finalLoss = trainer.result().epochs[ROUNDS - 1].meanLoss;
  await Promise.all([trainer.release(), session.release(), scorer.release()]);

  // On a worker thread: a whole run of ROUNDS epochs, worker start and copying the pairs included.
  let started = performance.now();
  await trainHeadInWorker(pairs, config, options);
  const workerMs = performance.now() - started;

  const perEpoch = (kind: Kind) => rate(PAIRS, median(times[kind]));
  const steps = prepared.length;
  console.log(`train (gather + ORT forward/backward + Adam): ${fmt(perEpoch('train'))} pairs/s  (median of ${ROUNDS} epochs; final epoch loss ${finalLoss.toFixed(4)})`);
  console.log(`reference, raw ORT step (no Adam):            ${fmt(perEpoch('rawStep'))} pairs/s  (${(median(times.rawStep) / steps).toFixed(1)} ms/step)`);
  console.log(`reference, forward-only inference:            ${fmt(perEpoch('forward'))} pairs/s`);
  console.log(`Adam over ${fmt(parameters.tensors.reduce((n, t) => n + t.length, 0))} parameters:          ${(median(times.adam) / steps).toFixed(1)} ms/step`);
  console.log(`train on a worker thread (whole run):         ${fmt(rate(PAIRS * ROUNDS, workerMs))} pairs/s  (includes worker start and copying the pairs)`);
  console.log(`train / raw step: ${(perEpoch('train') / perEpoch('rawStep')).toFixed(2)}; load average after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
