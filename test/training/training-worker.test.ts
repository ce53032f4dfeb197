/**
 * The trainer on a worker thread: the same result as in the calling thread (plain data crosses the
 * boundary intact), epochs reported as they happen, errors and cancellation carried back.
 */
import { threadId } from 'node:worker_threads';
import { PreferencePairs, trainHead, TrainingConfig } from '../../src/modules/training/head-trainer';
import { trainHeadInWorker } from '../../src/modules/training/training-worker';
import { randomFloats } from './head-reference';

const DIM = 12;
const COUNT = 200;
const pairs: PreferencePairs = { dim: DIM, chosen: randomFloats(COUNT * DIM, 31), rejected: randomFloats(COUNT * DIM, 32), weights: new Float32Array(COUNT).fill(2) };
const config: TrainingConfig = { hidden: [16, 8], loss: { kind: 'logistic' }, epochs: 3, batchSize: 16, learningRate: 0.01, seed: 3 };

describe('training on a worker thread', () => {
  it('trains off the calling thread and returns what trainHead returns here', async () => {
    const epochs: number[] = [];
    const inWorker = await trainHeadInWorker(pairs, config, {}, { onEpoch: (m) => void epochs.push(m.epoch) });
    const here = await trainHead(pairs, config);
    expect(inWorker.threadId).not.toBe(threadId);
    expect(epochs).toEqual([1, 2, 3]);
    expect(inWorker.epochs).toEqual(here.epochs);
    expect(inWorker.steps).toBe(here.steps);
    expect(inWorker.parameters.shape).toEqual(here.parameters.shape);
    inWorker.parameters.tensors.forEach((t, i) => {
      expect(t).toBeInstanceOf(Float32Array);
      expect(t).toEqual(here.parameters.tensors[i]);
    });
  });

  it('carries a training error back', async () => {
    await expect(trainHeadInWorker({ ...pairs, weights: new Float32Array(COUNT) }, config)).rejects.toThrow('pair weights must be finite numbers > 0, got 0');
  });

  it('stops the worker when the signal is aborted', async () => {
    const controller = new AbortController();
    const run = trainHeadInWorker(pairs, { ...config, epochs: 1000 }, {}, { signal: controller.signal, onEpoch: (m) => (m.epoch === 1 ? controller.abort(new Error('cancelled by test')) : undefined) });
    await expect(run).rejects.toThrow('cancelled by test');
  });
});
