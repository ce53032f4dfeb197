import crypto from 'node:crypto';

/**
 * A seeded PRNG (mulberry32, 32-bit state) for training: initial weights and batch order. The state
 * comes from SHA-256 of a label and the seed, so each use (initialisation, each epoch's shuffle) has
 * its own stream and the same seed always draws the same numbers, on any platform.
 */
export function seededRandom(label: string, seed: number): () => number {
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  const digest = crypto.createHash('sha256').update(`${label}:${seed}`).digest();
  let state = digest.readUInt32LE(0);
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A Fisher-Yates permutation of 0..count-1 drawn from `random`. */
export function permutation(count: number, random: () => number): Uint32Array {
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const swap = order[i];
    order[i] = order[j];
    order[j] = swap;
  }
  return order;
}
