/**
 * Resuming from a checkpoint (issue 11): a trainer stopped after some epochs, its state encoded to
 * bytes and decoded (as the training_epochs row stores it), continues to exactly the weights, Adam
 * state and metrics of an uninterrupted run; the same holds on a worker thread.
 */
import { HeadTrainer, PreferencePairs, trainHead, TrainerState, TrainingConfig } from '../../src/modules/training/head-trainer';
import { trainHeadInWorker } from '../../src/modules/training/training-worker';
import { decodeCheckpoint, encodeCheckpoint } from '../../src/modules/training/training-checkpoint';
import { randomFloats } from './head-reference';

jest.setTimeout(60_000);

const DIM = 10;
const COUNT = 120;
const pairs: PreferencePairs = { dim: DIM, chosen: randomFloats(COUNT * DIM, 41), rejected: randomFloats(COUNT * DIM, 42), weights: Float32Array.from({ length: COUNT }, (_, i) => (i % 3 === 0 ? 10 : 1)) };
const validation: PreferencePairs = { dim: DIM, chosen: randomFloats(20 * DIM, 43), rejected: randomFloats(20 * DIM, 44) };
const config: TrainingConfig = { hidden: [16, 8], loss: { kind: 'logistic' }, epochs: 6, batchSize: 16, learningRate: 0.01, seed: 5 };

describe('resuming head training from a checkpoint', () => {
  it('round-trips a checkpoint through bytes exactly', async () => {
    const trainer = await HeadTrainer.create(pairs, config);
    await trainer.runEpoch();
    const state = trainer.snapshot();
    await trainer.release();
    const decoded = decodeCheckpoint(encodeCheckpoint(state));
    expect(decoded.parameters.shape).toEqual(state.parameters.shape);
    expect(decoded.adam.step).toBe(state.adam.step);
    expect(decoded.epochs).toEqual(state.epochs);
    decoded.parameters.tensors.forEach((t, i) => expect(t).toEqual(state.parameters.tensors[i]));
    decoded.adam.secondMoments.forEach((v, i) => expect(v).toEqual(state.adam.secondMoments[i]));
  });

  it('continues to the weights and metrics of an uninterrupted run, in this thread and on a worker thread', async () => {
    const states: TrainerState[] = [];
    const whole = await trainHead(pairs, config, {}, { validation, checkpoints: true, onEpoch: (_, state) => void states.push(state!) });
    expect(whole.epochs.every((e) => typeof e.validationAlignment === 'number')).toBe(true);
    const checkpoint = decodeCheckpoint(encodeCheckpoint(states[2]));
    expect(checkpoint.epochs.map((e) => e.epoch)).toEqual([1, 2, 3]);

    const seen: number[] = [];
    const resumed = await trainHead(pairs, config, {}, { validation, resume: checkpoint, onEpoch: (m) => void seen.push(m.epoch) });
    expect(seen).toEqual([4, 5, 6]);
    expect(resumed.epochs).toEqual(whole.epochs);
    expect(resumed.steps).toBe(whole.steps);
    resumed.parameters.tensors.forEach((t, i) => expect(t).toEqual(whole.parameters.tensors[i]));

    const inWorker = await trainHeadInWorker(pairs, config, {}, { validation, resume: decodeCheckpoint(encodeCheckpoint(states[4])) });
    expect(inWorker.epochs).toEqual(whole.epochs);
    inWorker.parameters.tensors.forEach((t, i) => expect(t).toEqual(whole.parameters.tensors[i]));
  });

  it('refuses a checkpoint of another head shape', async () => {
    const other = await trainHead(pairs, { ...config, hidden: [8], epochs: 1 }, {}, { checkpoints: true, onEpoch: () => undefined });
    const state: TrainerState = { parameters: other.parameters, adam: { step: 1, firstMoments: other.parameters.tensors, secondMoments: other.parameters.tensors }, epochs: other.epochs };
    await expect(trainHead(pairs, config, {}, { resume: state })).rejects.toThrow(RangeError);
  });
});
