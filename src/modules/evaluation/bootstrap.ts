/**
 * Seeded percentile bootstrap, hand-written: no maintained npm package offers a seeded,
 * deterministic cluster bootstrap for Node (the usual ones draw from Math.random), and the
 * evaluation must give the same interval for the same data and seed on every run and machine.
 */

import { mulberry32 } from '../../platform/random';

/** A percentile interval and the resamples behind it. */
export interface BootstrapInterval {
  low: number | null;
  high: number | null;
  /** Confidence level, e.g. 0.95. */
  level: number;
  /** Resamples drawn. */
  resamples: number;
  /** Resamples in which the statistic was defined (the interval is taken over these). */
  validResamples: number;
  seed: number;
}

export interface BootstrapOptions {
  /** Number of resamples; default 1000. */
  resamples?: number;
  /** Seed of the pseudo-random generator (unsigned 32-bit integer); default 0. */
  seed?: number;
  /** Confidence level in (0, 1); default 0.95. */
  level?: number;
}

export const DEFAULT_BOOTSTRAP_RESAMPLES = 1000;
export const DEFAULT_BOOTSTRAP_LEVEL = 0.95;

/** The bootstrap's generator: mulberry32 from the integer seed (platform/random). */
export const seededRandom = (seed: number): (() => number) => mulberry32(seed);

/**
 * The q-quantile of ascending `sorted` values with linear interpolation between order statistics
 * (numpy's default `method="linear"`, Hyndman-Fan type 7): position (n - 1)·q.
 */
export function quantileOfSorted(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new RangeError('quantile of an empty sample');
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const above = Math.min(below + 1, sorted.length - 1);
  const fraction = position - below;
  return sorted[below] + (sorted[above] - sorted[below]) * fraction;
}

/**
 * Percentile bootstrap interval of `statistic` over `units`: each resample draws units.length
 * units with replacement (uniformly, from the seeded generator) and evaluates the statistic on
 * them; the interval is the ((1 - level)/2, (1 + level)/2) quantiles of the defined results.
 * A statistic may be undefined on a resample (null, e.g. an AUC whose resample holds one class):
 * such resamples are left out and counted. Empty units, or no defined resample, give null bounds.
 */
export function percentileBootstrap<Unit>(
  units: readonly Unit[],
  statistic: (drawn: readonly Unit[]) => number | null,
  options: BootstrapOptions = {},
): BootstrapInterval {
  const drawn: Unit[] = new Array(units.length);
  return resampleInterval(units.length, options, (indices) => {
    for (let i = 0; i < indices.length; i++) drawn[i] = units[indices[i]];
    return statistic(drawn);
  });
}

/**
 * The same bootstrap (same seed, same draws as percentileBootstrap) for statistics that are sums
 * over units: `statistic` receives how many times each unit was drawn, which lets a caller
 * precompute each unit's contribution once and evaluate a resample in O(units).
 */
export function bootstrapFromDrawCounts(nUnits: number, statistic: (drawCounts: Uint32Array) => number | null, options: BootstrapOptions = {}): BootstrapInterval {
  const counts = new Uint32Array(nUnits);
  return resampleInterval(nUnits, options, (indices) => {
    counts.fill(0);
    for (let i = 0; i < indices.length; i++) counts[indices[i]]++;
    return statistic(counts);
  });
}

function resampleInterval(nUnits: number, options: BootstrapOptions, evaluate: (indices: Uint32Array) => number | null): BootstrapInterval {
  const { resamples, seed, level } = resolveBootstrapOptions(options);
  const values: number[] = [];
  if (nUnits > 0) {
    const random = seededRandom(seed);
    const indices = new Uint32Array(nUnits);
    for (let r = 0; r < resamples; r++) {
      for (let i = 0; i < nUnits; i++) indices[i] = Math.floor(random() * nUnits);
      const value = evaluate(indices);
      if (value !== null && Number.isFinite(value)) values.push(value);
    }
  }
  values.sort((a, b) => a - b);
  const tail = (1 - level) / 2;
  return {
    low: values.length ? quantileOfSorted(values, tail) : null,
    high: values.length ? quantileOfSorted(values, 1 - tail) : null,
    level,
    resamples: nUnits > 0 ? resamples : 0,
    validResamples: values.length,
    seed,
  };
}

function resolveBootstrapOptions(options: BootstrapOptions): Required<BootstrapOptions> {
  const resamples = options.resamples ?? DEFAULT_BOOTSTRAP_RESAMPLES;
  const seed = options.seed ?? 0;
  const level = options.level ?? DEFAULT_BOOTSTRAP_LEVEL;
  if (!Number.isInteger(resamples) || resamples < 1) throw new RangeError(`bootstrap resamples must be a positive integer, got ${resamples}`);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`bootstrap seed must be an unsigned 32-bit integer, got ${seed}`);
  if (!(level > 0 && level < 1)) throw new RangeError(`bootstrap level must lie in (0, 1), got ${level}`);
  return { resamples, seed, level };
}
