/**
 * An independent float64 JS implementation of the head's forward and pairwise losses, for checking
 * the ONNX training graph: its loss and its finite differences.
 */
import { HeadShape, PairwiseLoss } from '../../src/modules/training/head-graph';
import { PairBatch } from '../../src/modules/training/head-trainer';
import { seededRandom } from '../../src/modules/training/random';

/** Scores of `rows` [n·D] and every layer's pre-activations (for kink checks). */
export function referenceForward(shape: HeadShape, tensors: ArrayLike<number>[], rows: ArrayLike<number>, count: number): { scores: number[]; preActivations: number[] } {
  const widths = [shape.inputDim, ...shape.hidden, 1];
  const preActivations: number[] = [];
  const scores: number[] = [];
  for (let r = 0; r < count; r++) {
    let activation = Array.from({ length: shape.inputDim }, (_, k) => rows[r * shape.inputDim + k]);
    for (let layer = 0; layer + 1 < widths.length; layer++) {
      const [weight, bias] = [tensors[2 * layer], tensors[2 * layer + 1]];
      const inWidth = widths[layer];
      const z = Array.from({ length: widths[layer + 1] }, (_, o) => {
        let total = bias[o];
        for (let i = 0; i < inWidth; i++) total += weight[o * inWidth + i] * activation[i];
        return total;
      });
      const last = layer + 2 === widths.length;
      if (!last) preActivations.push(...z);
      activation = last ? z : z.map((v) => Math.max(0, v));
    }
    scores.push(activation[0]);
  }
  return { scores, preActivations };
}

export function referenceMargins(shape: HeadShape, tensors: ArrayLike<number>[], batch: PairBatch): number[] {
  const count = batch.weights.length;
  const chosen = referenceForward(shape, tensors, batch.chosen, count).scores;
  const rejected = referenceForward(shape, tensors, batch.rejected, count).scores;
  return chosen.map((s, i) => s - rejected[i]);
}

/** Σ w·ℓ(margin) / Σ w in float64. */
export function referenceLoss(shape: HeadShape, tensors: ArrayLike<number>[], batch: PairBatch, loss: PairwiseLoss): number {
  const margins = referenceMargins(shape, tensors, batch);
  let weighted = 0;
  let total = 0;
  margins.forEach((m, i) => {
    const pairLoss = loss.kind === 'logistic' ? Math.log1p(Math.exp(-m)) : Math.max(0, loss.margin - m);
    weighted += batch.weights[i] * pairLoss;
    total += batch.weights[i];
  });
  return weighted / total;
}

/** Uniform values in [−scale, scale) from a seeded stream. */
export function randomFloats(count: number, seed: number, scale = 1): Float32Array {
  const random = seededRandom('test-data', seed);
  return Float32Array.from({ length: count }, () => (2 * random() - 1) * scale);
}
