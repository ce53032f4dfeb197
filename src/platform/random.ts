import crypto from 'node:crypto';

/**
 * Seeded randomness, one implementation for every use that must be reproducible from a seed:
 * demonstration draws, bootstrap resampling, training initialisation and batch order. Hand-written
 * because these few lines are the whole algorithm and must never change under a dependency update:
 * a stored seed must draw the same numbers forever, on any platform.
 */

/**
 * Mulberry32: a small, fast 32-bit generator with a full 2^32 period, good enough for sampling and
 * resampling. Returns uniform floats in [0, 1).
 */
export function mulberry32(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A generator seeded from text (SHA-256 of it), so each use can have its own stream: a label and a
 * seed ("head-init:7", "<run seed>:<image>:<sample>") always give the same numbers.
 */
export function seededRandomFromText(text: string): () => number {
  const digest = crypto.createHash('sha256').update(text).digest();
  return mulberry32(digest.readUInt32LE(0) || 1);
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
