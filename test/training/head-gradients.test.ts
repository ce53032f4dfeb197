/**
 * The training-step graph's gradients against central finite differences of an independent float64
 * loss, for every entry of every parameter tensor of a small head, with both losses and unequal
 * pair weights; and the hinge loss's zero gradient once every pair clears the margin.
 */
import { headParameterSpecs, HeadShape, PairwiseLoss } from '../../src/modules/training/head-graph';
import { initialHeadParameters, PairBatch, TrainingStepSession } from '../../src/modules/training/head-trainer';
import { randomFloats, referenceForward, referenceLoss, referenceMargins } from './head-reference';

const shape: HeadShape = { inputDim: 8, hidden: [6, 5] };
const PAIRS = 4;
const EPS = 1e-3;
// Seeds chosen so that no ReLU input or hinge gap lies within 10·EPS of its kink (checked below).
const batch: PairBatch = {
  chosen: randomFloats(PAIRS * shape.inputDim, 545),
  rejected: randomFloats(PAIRS * shape.inputDim, 546),
  weights: Float32Array.from([1, 3, 0.5, 10]),
};
const parameters = initialHeadParameters(shape, 272);

/** Finite differences are only valid away from the ReLU and hinge kinks: check that first. */
function distanceToKinks(tensors: ArrayLike<number>[], loss: PairwiseLoss): number {
  const pre = [batch.chosen, batch.rejected].flatMap((rows) => referenceForward(shape, tensors, rows, PAIRS).preActivations);
  const hingeGaps = loss.kind === 'hinge' ? referenceMargins(shape, tensors, batch).map((m) => loss.margin - m) : [];
  return Math.min(...[...pre, ...hingeGaps].map(Math.abs));
}

describe.each<[string, PairwiseLoss]>([
  ['logistic', { kind: 'logistic' }],
  ['hinge', { kind: 'hinge', margin: 0.5 }],
])('training-step gradients, %s loss', (_name, loss) => {
  let session: TrainingStepSession;
  beforeAll(async () => (session = await TrainingStepSession.create(shape, loss)));
  afterAll(() => session.release());

  it('computes the loss and margins of the float64 reference', async () => {
    const out = await session.run(parameters, batch);
    expect(out.loss).toBeCloseTo(referenceLoss(shape, parameters.tensors, batch, loss), 5);
    const margins = referenceMargins(shape, parameters.tensors, batch);
    out.margins.forEach((m, i) => expect(m).toBeCloseTo(margins[i], 5));
    out.chosenScores.forEach((s, i) => expect(s - out.rejectedScores[i]).toBeCloseTo(out.margins[i], 6));
  });

  it('matches central finite differences for every entry of every parameter', async () => {
    expect(distanceToKinks(parameters.tensors, loss)).toBeGreaterThan(10 * EPS);
    const { gradients } = await session.run(parameters, batch);
    const specs = headParameterSpecs(shape);
    let checked = 0;
    let nonZero = 0;
    specs.forEach((spec, t) => {
      const probe = parameters.tensors.map((tensor) => Float64Array.from(tensor));
      for (let k = 0; k < probe[t].length; k++) {
        const original = probe[t][k];
        probe[t][k] = original + EPS;
        const up = referenceLoss(shape, probe, batch, loss);
        probe[t][k] = original - EPS;
        const down = referenceLoss(shape, probe, batch, loss);
        probe[t][k] = original;
        const numeric = (up - down) / (2 * EPS);
        const analytic = gradients[t][k];
        if (Math.abs(analytic - numeric) > 1e-3 + 1e-2 * Math.abs(numeric)) {
          throw new Error(`${spec.name}[${k}]: graph gradient ${analytic}, finite difference ${numeric}`);
        }
        checked++;
        if (Math.abs(numeric) > 1e-3) nonZero++;
      }
    });
    expect(checked).toBe(8 * 6 + 6 + 6 * 5 + 5 + 5 + 1);
    // The check means something only if most gradients are not zero.
    expect(nonZero).toBeGreaterThan(checked / 2);
  });
});

describe('hinge loss', () => {
  it('has zero loss and zero gradients once every pair clears the margin, and only inside-margin pairs count otherwise', async () => {
    const margin = 0.05;
    const session = await TrainingStepSession.create(shape, { kind: 'hinge', margin });
    try {
      // Orient every pair so its chosen side scores higher, then scale the last layer so margins exceed 0.05.
      const margins = referenceMargins(shape, parameters.tensors, batch);
      const oriented: PairBatch = { chosen: batch.chosen.slice(), rejected: batch.rejected.slice(), weights: batch.weights };
      margins.forEach((m, i) => {
        if (m >= 0) return;
        const d = shape.inputDim;
        oriented.chosen.set(batch.rejected.subarray(i * d, (i + 1) * d), i * d);
        oriented.rejected.set(batch.chosen.subarray(i * d, (i + 1) * d), i * d);
      });
      const scaled = { shape, tensors: parameters.tensors.map((t) => t.slice()) };
      const smallest = Math.min(...referenceMargins(shape, scaled.tensors, oriented));
      expect(smallest).toBeGreaterThan(0);
      const last = scaled.tensors.length - 2;
      scaled.tensors[last] = scaled.tensors[last].map((w) => (w * 2 * margin) / smallest);
      const clear = await session.run(scaled, oriented);
      expect(Math.min(...clear.margins)).toBeGreaterThan(margin);
      expect(clear.loss).toBe(0);
      for (const g of clear.gradients) expect(g.every((v) => v === 0)).toBe(true);

      // Swap one pair back: the loss and gradients are that pair's alone, weighted by w / Σw.
      const mixed: PairBatch = { chosen: oriented.chosen.slice(), rejected: oriented.rejected.slice(), weights: batch.weights };
      const d = shape.inputDim;
      mixed.chosen.set(oriented.rejected.subarray(0, d), 0);
      mixed.rejected.set(oriented.chosen.subarray(0, d), 0);
      const out = await session.run(scaled, mixed);
      const total = batch.weights.reduce((a, b) => a + b, 0);
      expect(out.loss).toBeCloseTo((batch.weights[0] * (margin - out.margins[0])) / total, 5);
      expect(out.gradients.some((g) => g.some((v) => v !== 0))).toBe(true);
    } finally {
      await session.release();
    }
  });
});

describe('logistic loss far from the decision boundary', () => {
  it('stays finite and exact when margins are large either way', async () => {
    const session = await TrainingStepSession.create(shape, { kind: 'logistic' });
    try {
      const scaled = { shape, tensors: parameters.tensors.map((t) => t.slice()) };
      const last = scaled.tensors.length - 2;
      scaled.tensors[last] = scaled.tensors[last].map((w) => w * 2_000);
      const out = await session.run(scaled, batch);
      expect(Math.min(...out.margins)).toBeLessThan(-50);
      expect(Math.max(...out.margins)).toBeGreaterThan(50);
      expect(Number.isFinite(out.loss)).toBe(true);
      expect(out.loss).toBeCloseTo(referenceLoss(shape, scaled.tensors, batch, { kind: 'logistic' }), 2);
      for (const g of out.gradients) expect(g.every(Number.isFinite)).toBe(true);
    } finally {
      await session.release();
    }
  });
});
