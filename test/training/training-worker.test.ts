/**
 * The trainer on a worker thread: the same result as in the calling thread (plain data crosses the
 * boundary intact), epochs reported as they happen, errors and cancellation carried back.
 */
import { threadId } from 'node:worker_threads';
import { PreferencePairs, trainHead, TrainingConfig } from '../../src/modules/training/head-trainer';
import { PendingTrainingWorker, trainHeadInWorker } from '../../src/modules/training/training-worker';
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

  // A TRAINING run starts its worker while its data loads and hands the pairs over later.
  it('a worker started ahead of its work trains the same weights; one never used is stopped', async () => {
    const early = new PendingTrainingWorker();
    const here = await trainHead(pairs, config);
    const inWorker = await trainHeadInWorker(pairs, config, {}, {}, early);
    expect(inWorker.threadId).not.toBe(threadId);
    expect(inWorker.epochs).toEqual(here.epochs);
    inWorker.parameters.tensors.forEach((t, i) => expect(t).toEqual(here.parameters.tensors[i]));
    expect(() => early.take()).toThrow('already used');
    // Discarding a used worker does nothing; an unused one is terminated (jest would otherwise hang on it).
    await early.discard();
    await new PendingTrainingWorker().discard();
  });

  it('carries a training error back', async () => {
    await expect(trainHeadInWorker({ ...pairs, weights: new Float32Array(COUNT) }, config)).rejects.toThrow('pair weights must be finite numbers > 0, got 0');
  });

  // Terminating a worker inside ONNX Runtime's session.run aborted the whole process: cancelling
  // asks the worker to stop between steps, and settles once it has.
  it('stops the worker when the signal is aborted, without taking the process down', async () => {
    // Where the abort lands in the worker varies; several attempts cover the moments that crashed.
    for (let attempt = 0; attempt < 8; attempt++) {
      const controller = new AbortController();
      const epochs: number[] = [];
      const run = trainHeadInWorker(pairs, { ...config, epochs: 1000 }, {}, {
        signal: controller.signal,
        onEpoch: (m) => (epochs.push(m.epoch), m.epoch === 1 ? controller.abort(new Error('cancelled by test')) : undefined),
      });
      await expect(run).rejects.toThrow('cancelled by test');
      expect(epochs.length).toBeLessThan(1000);
    }
  });

  it('stops the worker when an epoch callback fails, and reports that failure', async () => {
    const run = trainHeadInWorker(pairs, { ...config, epochs: 1000 }, {}, {
      onEpoch: async (m) => {
        if (m.epoch === 2) throw new Error('progress could not be recorded');
      },
    });
    await expect(run).rejects.toThrow('progress could not be recorded');
  });
});
