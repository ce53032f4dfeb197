/**
 * The head trainer end to end on ONNX Runtime: reproducible from its seed, learns a separable
 * preference, honours pair weights, exports an inference graph that scores as training did, and
 * refuses malformed input with clear errors.
 */
import { ort } from '../../src/platform/onnx';
import { Adam } from '../../src/modules/training/adam';
import { appendSelectorHead, buildHeadInferenceGraph, HeadParameters, joinEmbeddings } from '../../src/modules/training/head-graph';
import { OnnxGraph } from '../../src/platform/onnx-graph';
import { evaluatePairs, gatherBatch, HeadScorer, HeadTrainer, initialHeadParameters, PreferencePairs, trainHead, TrainingConfig, TrainingStepSession } from '../../src/modules/training/head-trainer';
import { seededRandom } from '../../src/modules/training/random';
import { randomFloats } from './head-reference';

const IMAGE_DIM = 8;
const TEXT_DIM = 8;
const DIM = IMAGE_DIM + TEXT_DIM;

/** Pairs of random joined embeddings, ordered by a fixed linear utility u(x) = direction·x. */
function pairsByUtility(count: number, seed: number, direction: Float32Array, weight = 1): PreferencePairs {
  const a = randomFloats(count * DIM, seed);
  const b = randomFloats(count * DIM, seed + 1_000);
  const chosen = new Float32Array(count * DIM);
  const rejected = new Float32Array(count * DIM);
  for (let i = 0; i < count; i++) {
    const rowA = a.subarray(i * DIM, (i + 1) * DIM);
    const rowB = b.subarray(i * DIM, (i + 1) * DIM);
    const aWins = utility(rowA, direction) > utility(rowB, direction);
    chosen.set(aWins ? rowA : rowB, i * DIM);
    rejected.set(aWins ? rowB : rowA, i * DIM);
  }
  return { dim: DIM, chosen, rejected, weights: new Float32Array(count).fill(weight) };
}

function utility(row: Float32Array, direction: Float32Array): number {
  return row.reduce((total, v, k) => total + v * direction[k], 0);
}

function concatPairs(...sets: PreferencePairs[]): PreferencePairs {
  const join = (pick: (p: PreferencePairs) => Float32Array) => {
    const out = new Float32Array(sets.reduce((n, p) => n + pick(p).length, 0));
    let offset = 0;
    for (const p of sets) (out.set(pick(p), offset), (offset += pick(p).length));
    return out;
  };
  return { dim: DIM, chosen: join((p) => p.chosen), rejected: join((p) => p.rejected), weights: join((p) => p.weights!) };
}

const direction = randomFloats(DIM, 77);
const config: TrainingConfig = { hidden: [32, 16], loss: { kind: 'logistic' }, epochs: 8, batchSize: 32, learningRate: 0.01, seed: 5 };

describe('head trainer', () => {
  const train = pairsByUtility(600, 1, direction);
  const heldOut = pairsByUtility(300, 2, direction);

  it('gives the same weights and metrics for the same seed, and different weights for another seed', async () => {
    const short = { ...config, epochs: 2 };
    const [first, second, other] = [await trainHead(train, short), await trainHead(train, short), await trainHead(train, { ...short, seed: 6 })];
    expect(first.steps).toBe(2 * Math.ceil(600 / 32));
    expect(second.epochs).toEqual(first.epochs);
    second.parameters.tensors.forEach((t, i) => expect(t).toEqual(first.parameters.tensors[i]));
    expect(other.parameters.tensors[0]).not.toEqual(first.parameters.tensors[0]);
    // Driven epoch by epoch, the trainer gives what trainHead gives.
    const stepwise = await HeadTrainer.create(train, short);
    const metrics = [await stepwise.runEpoch(), await stepwise.runEpoch()];
    await stepwise.release();
    expect(metrics).toEqual(first.epochs);
    stepwise.result().parameters.tensors.forEach((t, i) => expect(t).toEqual(first.parameters.tensors[i]));
    // With more ONNX Runtime threads, runs still repeat each other.
    const [threaded, threadedAgain] = [await trainHead(train, short, { intraOpThreads: 2 }), await trainHead(train, short, { intraOpThreads: 2 })];
    threaded.parameters.tensors.forEach((t, i) => expect(t).toEqual(threadedAgain.parameters.tensors[i]));
    // Training moved the weights away from their seeded start.
    expect(first.parameters.tensors[0]).not.toEqual(initialHeadParameters({ inputDim: DIM, hidden: short.hidden }, short.seed).tensors[0]);
  });

  it.each<[string, TrainingConfig['loss']]>([
    ['logistic', { kind: 'logistic' }],
    ['hinge', { kind: 'hinge', margin: 1 }],
  ])('learns a separable preference with the %s loss (held-out alignment well above chance)', async (_name, loss) => {
    const untrained = await evaluatePairs(initialHeadParameters({ inputDim: DIM, hidden: config.hidden }, config.seed), heldOut);
    const epochs: number[] = [];
    const result = await trainHead(train, { ...config, loss }, {}, { onEpoch: (m) => void epochs.push(m.epoch) });
    const trained = await evaluatePairs(result.parameters, heldOut);
    expect(epochs).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(untrained.alignment).toBeLessThan(0.8);
    expect(trained.alignment).toBeGreaterThan(0.9);
    expect(result.epochs[result.epochs.length - 1].meanLoss).toBeLessThan(result.epochs[0].meanLoss / 2);
    expect(result.epochs[result.epochs.length - 1].alignment).toBeGreaterThan(0.9);
  });

  it('follows heavily weighted clinician pairs over many model pairs that disagree with them', async () => {
    // Clinicians rank exactly against the model's utility.
    const clinicianDirection = direction.map((v) => -v);
    const clinicianHeldOut = pairsByUtility(300, 4, clinicianDirection);
    const alignmentWithWeight = async (weight: number) => {
      const mixed = concatPairs(pairsByUtility(600, 5, direction, 1), pairsByUtility(40, 6, clinicianDirection, weight));
      const result = await trainHead(mixed, config);
      return (await evaluatePairs(result.parameters, clinicianHeldOut)).alignment;
    };
    const unweighted = await alignmentWithWeight(1);
    const weighted = await alignmentWithWeight(400);
    // w = 1: the 600 model pairs win; w = 400 (the top of the paper's sweep): the 40 clinician pairs do.
    expect(unweighted).toBeLessThan(0.3);
    expect(weighted).toBeGreaterThan(0.5);
  });

  it('exports an inference graph (embeds [N, D] → score [N]) that scores exactly as the training graph', async () => {
    const { parameters } = await trainHead(train, { ...config, epochs: 1 });
    const batch = gatherBatch(heldOut, heldOut.weights!, Uint32Array.from({ length: 50 }, (_, i) => i));
    const step = await TrainingStepSession.create(parameters.shape, { kind: 'logistic' });
    const training = await step.run(parameters, batch);
    await step.release();

    const session = await ort.InferenceSession.create(buildHeadInferenceGraph(parameters));
    expect(session.inputNames).toEqual(['embeds']);
    expect(session.outputNames).toEqual(['score']);
    const out = await session.run({ embeds: new ort.Tensor('float32', batch.chosen, [50, DIM]) });
    expect(out.score.dims).toEqual([50]);
    const exported = out.score.data as Float32Array;
    await session.release();
    exported.forEach((s, i) => expect(s).toBeCloseTo(training.chosenScores[i], 5));

    const scorer = await HeadScorer.create(parameters);
    const rejected = await scorer.score(batch.rejected);
    await scorer.release();
    rejected.forEach((s, i) => expect(s).toBeCloseTo(training.rejectedScores[i], 5));
    // Scores vary: the comparison is not between constants.
    expect(new Set(Array.from(exported, (s) => s.toFixed(3))).size).toBeGreaterThan(40);
  });

  it('joins to an encoder: image and text embeddings concatenated in the graph score as joined rows do', async () => {
    const parameters = initialHeadParameters({ inputDim: DIM, hidden: [8] }, 4);
    const rows = 7;
    const image = randomFloats(rows * IMAGE_DIM, 41);
    const text = randomFloats(rows * TEXT_DIM, 42);
    const graph = new OnnxGraph('encoder_and_head');
    const imageEmbeds = graph.input('image_embeds', 'float32', ['batch', IMAGE_DIM]);
    const textEmbeds = graph.input('text_embeds', 'float32', ['batch', TEXT_DIM]);
    graph.op('Identity', [appendSelectorHead(graph, imageEmbeds, textEmbeds, parameters)], {}, 'score');
    graph.output('score', 'float32', ['batch']);
    const session = await ort.InferenceSession.create(graph.encode());
    const out = await session.run({ image_embeds: new ort.Tensor('float32', image, [rows, IMAGE_DIM]), text_embeds: new ort.Tensor('float32', text, [rows, TEXT_DIM]) });
    await session.release();
    const scorer = await HeadScorer.create(parameters);
    const joined = joinEmbeddings(image, IMAGE_DIM, text, TEXT_DIM);
    expect(Array.from(joined.subarray(0, DIM))).toEqual([...image.subarray(0, IMAGE_DIM), ...text.subarray(0, TEXT_DIM)]);
    const expected = await scorer.score(joined);
    await scorer.release();
    (out.score.data as Float32Array).forEach((s, i) => expect(s).toBeCloseTo(expected[i], 6));
    expect(() => joinEmbeddings(image, IMAGE_DIM, text.subarray(1), TEXT_DIM)).toThrow('must have the same number of rows');
  });

  it('stops between steps when its signal is aborted', async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    const run = trainHead(train, config, {}, { signal: controller.signal, onEpoch: (m) => (seen.push(m.epoch), m.epoch === 2 ? controller.abort(new Error('cancelled by test')) : undefined) });
    await expect(run).rejects.toThrow('cancelled by test');
    expect(seen).toEqual([1, 2]);
  });

  it('refuses malformed pairs and settings with clear errors', async () => {
    const two = pairsByUtility(2, 9, direction);
    await expect(trainHead({ ...two, weights: Float32Array.from([1, 0]) }, config)).rejects.toThrow('pair weights must be finite numbers > 0, got 0');
    await expect(trainHead({ ...two, weights: Float32Array.from([1]) }, config)).rejects.toThrow('2 pairs need 2 weights, got 1');
    await expect(trainHead({ ...two, rejected: two.rejected.subarray(0, DIM) }, config)).rejects.toThrow(`rejected embeddings hold ${DIM} values, chosen ${2 * DIM}`);
    await expect(trainHead({ ...two, chosen: two.chosen.map((v, i) => (i === 3 ? NaN : v)) }, config)).rejects.toThrow('embeddings must be finite numbers');
    await expect(trainHead({ ...two, dim: 5 }, config)).rejects.toThrow('chosen embeddings must hold n ≥ 1 rows of 5 values');
    await expect(trainHead(two, { ...config, epochs: 0 })).rejects.toThrow('epochs must be a positive integer, got 0');
    await expect(trainHead(two, { ...config, batchSize: 1.5 })).rejects.toThrow('batch size must be a positive integer');
    await expect(trainHead(two, { ...config, learningRate: -1 })).rejects.toThrow('learning rate must be a finite number > 0');
    await expect(trainHead(two, { ...config, loss: { kind: 'hinge', margin: -1 } })).rejects.toThrow('hinge margin must be a finite number ≥ 0');
    await expect(trainHead(two, { ...config, hidden: [4, 0] })).rejects.toThrow('head layer widths must be positive integers');
    await expect(trainHead(two, { ...config, weightDecay: -0.1 })).rejects.toThrow('weight decay must be a finite number ≥ 0');
    const parameters: HeadParameters = initialHeadParameters({ inputDim: DIM, hidden: [4] }, 1);
    expect(() => buildHeadInferenceGraph({ ...parameters, tensors: parameters.tensors.slice(1) })).toThrow('head has 4 parameter tensors, got 3');
  });
});

describe('Adam', () => {
  it('matches torch.optim.Adam / AdamW step by step', () => {
    // Reference values computed in float64 from torch's update rule, for gradients that change sign.
    const gradients = [Float32Array.from([0.5, -2]), Float32Array.from([-0.25, 1]), Float32Array.from([1, 0])];
    const reference = (weightDecay: number) => {
      const p = [1, -1];
      const m = [0, 0];
      const v = [0, 0];
      gradients.forEach((g, step) => {
        const t = step + 1;
        for (let i = 0; i < 2; i++) {
          p[i] *= 1 - 0.1 * weightDecay;
          m[i] = 0.9 * m[i] + 0.1 * g[i];
          v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
          p[i] -= (0.1 * (m[i] / (1 - 0.9 ** t))) / (Math.sqrt(v[i] / (1 - 0.999 ** t)) + 1e-8);
        }
      });
      return p;
    };
    for (const weightDecay of [0, 0.01]) {
      const parameters = [Float32Array.from([1, -1])];
      const adam = new Adam([2], { learningRate: 0.1, weightDecay });
      for (const g of gradients) adam.step(parameters, [g]);
      const expected = reference(weightDecay);
      expect(parameters[0][0]).toBeCloseTo(expected[0], 6);
      expect(parameters[0][1]).toBeCloseTo(expected[1], 6);
      expect(adam.steps).toBe(3);
    }
    // The first step moves every parameter by about lr against its gradient's sign, whatever its size.
    const p = [Float32Array.from([0, 0])];
    new Adam([2], { learningRate: 0.1 }).step(p, [Float32Array.from([1e-3, -1e3])]);
    expect(p[0][0]).toBeCloseTo(-0.1, 5);
    expect(p[0][1]).toBeCloseTo(0.1, 5);
  });
});

describe('seeded streams', () => {
  it('repeat for a seed and label and differ across either', () => {
    const draw = (label: string, seed: number) => Array.from({ length: 5 }, seededRandom(label, seed));
    expect(draw('a', 1)).toEqual(draw('a', 1));
    expect(draw('a', 2)).not.toEqual(draw('a', 1));
    expect(draw('b', 1)).not.toEqual(draw('a', 1));
  });
});
