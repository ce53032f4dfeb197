import { permutation, seededRandomFromText } from '../../platform/random';

export { permutation };

/**
 * A seeded generator for training: initial weights and batch order. Each use has its own stream
 * (a label such as "head-init" or "head-shuffle:<epoch>"), and the same seed always draws the same numbers.
 */
export function seededRandom(label: string, seed: number): () => number {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  return seededRandomFromText(`${label}:${seed}`);
}
