import { kmeans } from 'ml-kmeans';

/**
 * Seeded k-means for diversity sampling. Pure and free of native modules, so it also runs in a
 * compute thread (kMeansInThread in features.ts).
 */

const DEFAULT_MAX_ITERATIONS = 100;

export interface KMeansResult {
  /** Number of non-empty clusters: the requested k capped at the number of distinct rows (less only if k-means empties a cluster). */
  k: number;
  /** Cluster id per row, in row order. */
  assignments: number[];
  /** Centroid per cluster id. */
  centroids: number[][];
  iterations: number;
  converged: boolean;
}

/**
 * Seeded k-means (k-means++ initialisation, via ml-kmeans) over the rows. k is capped at the number of
 * distinct rows; the same rows, k and seed always give the same result. Cluster ids are renumbered by
 * first appearance: row 0 is in cluster 0, the next row not in cluster 0 starts cluster 1, and so on.
 * Empty input gives k 0 and no assignments. Rows must all have the same non-zero length and finite values.
 */
export function kMeans(
  rows: ArrayLike<number>[],
  k: number,
  seed: number,
  maxIterations = DEFAULT_MAX_ITERATIONS,
): KMeansResult {
  validateKMeansArguments(k, seed, maxIterations);
  if (rows.length === 0) return { k: 0, assignments: [], centroids: [], iterations: 0, converged: true };
  const data = toPlainRows(rows);
  const clusterCount = Math.min(k, countDistinctRows(data));
  const result = kmeans(data, clusterCount, { seed, initialization: 'kmeans++', maxIterations });
  return {
    ...renumberedByFirstAppearance(result.clusters, result.centroids),
    iterations: result.iterations,
    converged: result.converged,
  };
}

function validateKMeansArguments(k: number, seed: number, maxIterations: number): void {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be an integer >= 1, got ${k}`);
  // ml-kmeans seeds a 32-bit generator with the value (a non-number silently means Math.random).
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be a safe integer, got ${seed}`);
  // ml-kmeans treats maxIterations 0 as "no limit".
  if (!Number.isInteger(maxIterations) || maxIterations < 1) {
    throw new RangeError(`maxIterations must be an integer >= 1, got ${maxIterations}`);
  }
}

function toPlainRows(rows: ArrayLike<number>[]): number[][] {
  const dimension = rows[0].length;
  return rows.map((row, index) => {
    if (row.length !== dimension || dimension === 0) {
      throw new RangeError(`Row ${index} has length ${row.length}; all rows need the same non-zero length (${dimension})`);
    }
    const values = Array.from(row);
    if (!values.every(Number.isFinite)) throw new RangeError(`Row ${index} has a non-finite value`);
    return values;
  });
}

/**
 * With fewer distinct rows than k, ml-kmeans's k-means++ divides by a zero potential, picks an existing
 * centre again and leaves clusters empty without any error; so k is capped here instead.
 */
function countDistinctRows(rows: number[][]): number {
  return new Set(rows.map((row) => row.join(','))).size;
}

function renumberedByFirstAppearance(
  clusters: number[],
  centroids: number[][],
): Pick<KMeansResult, 'k' | 'assignments' | 'centroids'> {
  const newIdByOldId = new Map<number, number>();
  for (const oldId of clusters) {
    if (!newIdByOldId.has(oldId)) newIdByOldId.set(oldId, newIdByOldId.size);
  }
  const assignments = clusters.map((oldId) => newIdByOldId.get(oldId)!);
  // Map iteration follows insertion order, i.e. the new ids 0, 1, 2, ...; an empty cluster has no id.
  const renumberedCentroids = [...newIdByOldId.keys()].map((oldId) => [...centroids[oldId]]);
  return { k: newIdByOldId.size, assignments, centroids: renumberedCentroids };
}
