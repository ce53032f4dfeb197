/**
 * Inter-annotator agreement (issue 12): Cohen's kappa (unweighted, linear, quadratic), Fleiss'
 * kappa and Krippendorff's alpha (nominal, ordinal, interval, ratio; missing data allowed).
 *
 * Hand-written: no maintained npm package covers these for Node with missing data, weighted kappa
 * as scikit-learn computes it and Krippendorff's four metrics. The tests check every figure
 * against its published reference values (Krippendorff 2011, the Wikipedia worked examples of
 * Cohen's and Fleiss' kappa, scikit-learn's cohen_kappa_score). Float64 arithmetic throughout.
 */

/** A rating: a category label or a number. null/undefined mean "not rated" (missing). */
export type RatingValue = string | number;
export type MaybeRating = RatingValue | null | undefined;

export type KappaWeights = 'none' | 'linear' | 'quadratic';

export interface CohenKappaResult {
  /** Kappa; null when undefined: no item, or chance disagreement 0 (e.g. both raters always gave one category). */
  value: number | null;
  weights: KappaWeights;
  /** Items rated by both raters (the ones the figure is computed on). */
  nItems: number;
  /** Items left out because one rater or both gave no rating. */
  nItemsSkipped: number;
  nCategories: number;
}

export interface FleissKappaResult {
  /** Kappa; null when undefined: no subject, or every rating in one category (chance agreement 1). */
  value: number | null;
  nSubjects: number;
  /** Raters per subject (the same for every subject). */
  nRaters: number;
  nRatings: number;
  nCategories: number;
  /** P̄, the mean share of agreeing rater pairs per subject. */
  observedAgreement: number | null;
  /** P̄e = Σ p_j², the agreement expected by chance. */
  expectedAgreement: number | null;
}

export type AlphaLevel = 'nominal' | 'ordinal' | 'interval' | 'ratio';

export interface KrippendorffAlphaResult {
  /** Alpha; null when undefined: no pairable value, or every pairable value the same (no expected disagreement). */
  value: number | null;
  level: AlphaLevel;
  /** Units with at least two values (pairable units). */
  nUnits: number;
  /** Units left out: fewer than two coders gave them a value. */
  nUnitsSkipped: number;
  /** n, the number of pairable values (values in pairable units). */
  nPairableValues: number;
  nCoders: number;
}

function isMissing(value: MaybeRating): value is null | undefined {
  return value === null || value === undefined;
}

/** Numbers ascending, then strings in code-unit order: the order scikit-learn's np.unique gives each kind. */
function compareRatings(a: RatingValue, b: RatingValue): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'number') return -1;
  if (typeof b === 'number') return 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function assertRatingValue(value: RatingValue): void {
  if (typeof value === 'number' && !Number.isFinite(value)) throw new RangeError(`rating must be a finite number, got ${value}`);
}

/**
 * The weight of a disagreement between the categories at positions i and j of the ordered
 * category list, as scikit-learn's cohen_kappa_score: 1 for any disagreement (none), |i − j|
 * (linear), (i − j)² (quadratic). Positions, not values: pass the full category list to
 * cohenKappa when a scale has values nobody used.
 */
export function disagreementWeight(i: number, j: number, weights: KappaWeights): number {
  if (weights === 'none') return i === j ? 0 : 1;
  const distance = Math.abs(i - j);
  return weights === 'linear' ? distance : distance * distance;
}

/**
 * Cohen's kappa of two raters from their contingency table (rows: rater A's category, columns:
 * rater B's, same category order): κ = 1 − Σ w_ij·O_ij / Σ w_ij·E_ij with E_ij = row_i·col_j / N.
 * Unweighted, it equals (p_o − p_e)/(1 − p_e).
 */
export function cohenKappaFromTable(table: readonly (readonly number[])[], weights: KappaWeights = 'none'): CohenKappaResult {
  const k = table.length;
  for (const row of table) {
    if (row.length !== k) throw new RangeError(`contingency table must be square: ${k} rows, a row of ${row.length}`);
    for (const count of row) if (!(Number.isFinite(count) && count >= 0)) throw new RangeError(`contingency counts must be non-negative, got ${count}`);
  }
  const rowSums = table.map((row) => row.reduce((sum, count) => sum + count, 0));
  const columnSums = table.map((_, j) => table.reduce((sum, row) => sum + row[j], 0));
  const total = rowSums.reduce((sum, count) => sum + count, 0);
  let observed = 0;
  let expected = 0;
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      const weight = disagreementWeight(i, j, weights);
      observed += weight * table[i][j];
      expected += (weight * rowSums[i] * columnSums[j]) / total;
    }
  }
  const value = total > 0 && expected > 0 ? 1 - observed / expected : null;
  return { value, weights, nItems: total, nItemsSkipped: 0, nCategories: k };
}

/**
 * Cohen's kappa of two raters over the same items (ratingsA[i] and ratingsB[i] rate item i).
 * Items missing a rating from either rater are left out (and counted). Categories are those
 * given (in that order, which the linear and quadratic weights use) or else the sorted union of
 * the ratings; a rating outside given categories is an error. Agreement on every item in one
 * category leaves chance disagreement 0: kappa is then undefined (null; scikit-learn gives NaN).
 */
export function cohenKappa(
  ratingsA: readonly MaybeRating[],
  ratingsB: readonly MaybeRating[],
  options: { weights?: KappaWeights; categories?: readonly RatingValue[] } = {},
): CohenKappaResult {
  if (ratingsA.length !== ratingsB.length) throw new RangeError(`the two raters rated different numbers of items: ${ratingsA.length} and ${ratingsB.length}`);
  const pairs: [RatingValue, RatingValue][] = [];
  ratingsA.forEach((a, i) => {
    const b = ratingsB[i];
    if (!isMissing(a) && !isMissing(b)) pairs.push([a, b]);
  });
  const categories = options.categories ?? sortedDistinct(pairs.flat());
  const position = categoryPositions(categories);
  const table = categories.map(() => categories.map(() => 0));
  for (const [a, b] of pairs) table[positionOf(position, a)][positionOf(position, b)]++;
  const result = cohenKappaFromTable(table, options.weights ?? 'none');
  return { ...result, nItemsSkipped: ratingsA.length - pairs.length };
}

function sortedDistinct(values: readonly RatingValue[]): RatingValue[] {
  values.forEach(assertRatingValue);
  return [...new Set(values)].sort(compareRatings);
}

function categoryPositions(categories: readonly RatingValue[]): Map<RatingValue, number> {
  const position = new Map<RatingValue, number>();
  categories.forEach((category, i) => {
    if (position.has(category)) throw new RangeError(`category ${category} is listed twice`);
    position.set(category, i);
  });
  return position;
}

function positionOf(position: ReadonlyMap<RatingValue, number>, value: RatingValue): number {
  const index = position.get(value);
  if (index === undefined) throw new RangeError(`rating ${value} is not one of the categories`);
  return index;
}

/**
 * Fleiss' kappa from counts: counts[i][j] raters put subject i in category j; every subject has
 * the same number n ≥ 2 of raters (not necessarily the same people). P_i = (Σ_j n_ij² − n)/(n(n − 1)),
 * P̄ = mean P_i, p_j = Σ_i n_ij/(N·n), P̄e = Σ p_j², κ = (P̄ − P̄e)/(1 − P̄e).
 * Every rating in one category: P̄e = 1 and kappa is undefined (null). No subject: null.
 */
export function fleissKappa(counts: readonly (readonly number[])[]): FleissKappaResult {
  const nSubjects = counts.length;
  const nCategories = nSubjects ? counts[0].length : 0;
  const nRaters = nSubjects ? sum(counts[0]) : 0;
  assertFleissCounts(counts, nCategories, nRaters);
  const empty = { value: null, nSubjects, nRaters, nRatings: nSubjects * nRaters, nCategories, observedAgreement: null, expectedAgreement: null };
  if (nSubjects === 0) return empty;
  const observedAgreement = counts.reduce((total, row) => total + (row.reduce((s, c) => s + c * c, 0) - nRaters) / (nRaters * (nRaters - 1)), 0) / nSubjects;
  const expectedAgreement = counts[0]
    .map((_, j) => counts.reduce((total, row) => total + row[j], 0) / (nSubjects * nRaters))
    .reduce((total, share) => total + share * share, 0);
  const value = expectedAgreement < 1 ? (observedAgreement - expectedAgreement) / (1 - expectedAgreement) : null;
  return { ...empty, value, observedAgreement, expectedAgreement };
}

function sum(values: readonly number[]): number {
  return values.reduce((total, value) => total + value, 0);
}

function assertFleissCounts(counts: readonly (readonly number[])[], nCategories: number, nRaters: number): void {
  counts.forEach((row, i) => {
    if (row.length !== nCategories) throw new RangeError(`subject ${i} has ${row.length} category counts, subject 0 has ${nCategories}`);
    for (const count of row) if (!(Number.isInteger(count) && count >= 0)) throw new RangeError(`subject ${i}: counts must be non-negative integers, got ${count}`);
    if (sum(row) !== nRaters) throw new RangeError(`Fleiss' kappa needs the same number of raters per subject: subject ${i} has ${sum(row)}, subject 0 has ${nRaters}`);
  });
  if (counts.length > 0 && nRaters < 2) throw new RangeError(`Fleiss' kappa needs at least 2 raters per subject, got ${nRaters}`);
}

/**
 * Category counts per subject from each subject's ratings (one list per subject), for
 * fleissKappa; missing ratings are left out. Categories are those given or the sorted union.
 */
export function categoryCounts(ratingsPerSubject: readonly (readonly MaybeRating[])[], categories?: readonly RatingValue[]): { categories: RatingValue[]; counts: number[][] } {
  const given = ratingsPerSubject.map((ratings) => ratings.filter((rating): rating is RatingValue => !isMissing(rating)));
  const ordered = categories ? [...categories] : sortedDistinct(given.flat());
  const position = categoryPositions(ordered);
  const counts = given.map((ratings) => {
    const row = ordered.map(() => 0);
    for (const rating of ratings) row[positionOf(position, rating)]++;
    return row;
  });
  return { categories: ordered, counts };
}

/**
 * Krippendorff's alpha (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability").
 * `data` is the reliability data matrix: one row per coder, one column per unit, null/undefined
 * where a coder did not code a unit. Only units with m_u ≥ 2 values are pairable. The coincidence
 * matrix o_ck = Σ_u (number of c–k value pairs in u)/(m_u − 1), n_c = Σ_k o_ck, n = Σ_c n_c, and
 * α = 1 − (n − 1)·Σ o_ck δ²_ck / Σ n_c n_k δ²_ck, with the level's difference function δ² (see
 * squaredDifference). Nominal accepts any labels; the other levels need numbers (ratio: ≥ 0).
 */
export function krippendorffAlpha(data: readonly (readonly MaybeRating[])[], level: AlphaLevel): KrippendorffAlphaResult {
  const nUnitsTotal = assertReliabilityData(data);
  const units = pairableUnits(data, nUnitsTotal, level);
  const values = sortedDistinct(units.flat());
  const index = categoryPositions(values);
  const coincidences = coincidenceMatrix(units, index);
  const marginals = coincidences.map(sum);
  const n = sum(marginals);
  const delta = differenceMatrix(values, marginals, level);
  let observed = 0;
  let expected = 0;
  for (let c = 0; c < values.length; c++) {
    for (let k = 0; k < values.length; k++) {
      observed += coincidences[c][k] * delta[c][k];
      expected += marginals[c] * marginals[k] * delta[c][k];
    }
  }
  return {
    value: n > 0 && expected > 0 ? 1 - ((n - 1) * observed) / expected : null,
    level,
    nUnits: units.length,
    nUnitsSkipped: nUnitsTotal - units.length,
    nPairableValues: n,
    nCoders: data.length,
  };
}

function assertReliabilityData(data: readonly (readonly MaybeRating[])[]): number {
  const nUnits = data.length ? data[0].length : 0;
  data.forEach((row, coder) => {
    if (row.length !== nUnits) throw new RangeError(`coder ${coder} has ${row.length} units, coder 0 has ${nUnits}: mark uncoded units null`);
  });
  return nUnits;
}

/** The values of each unit coded by at least two coders, checked against the level. */
function pairableUnits(data: readonly (readonly MaybeRating[])[], nUnits: number, level: AlphaLevel): RatingValue[][] {
  const units: RatingValue[][] = [];
  for (let u = 0; u < nUnits; u++) {
    const values = data.map((row) => row[u]).filter((value): value is RatingValue => !isMissing(value));
    values.forEach((value) => assertLevelValue(value, level));
    if (values.length >= 2) units.push(values);
  }
  return units;
}

function assertLevelValue(value: RatingValue, level: AlphaLevel): void {
  assertRatingValue(value);
  if (level === 'nominal') return;
  if (typeof value !== 'number') throw new RangeError(`${level} alpha needs numeric values, got ${JSON.stringify(value)}`);
  if (level === 'ratio' && value < 0) throw new RangeError(`ratio alpha needs non-negative values, got ${value}`);
}

/** o_ck: each unit's ordered value pairs (of different coders), each weighted 1/(m_u − 1). */
function coincidenceMatrix(units: readonly RatingValue[][], index: ReadonlyMap<RatingValue, number>): number[][] {
  const matrix = [...index.keys()].map(() => new Array<number>(index.size).fill(0));
  for (const values of units) {
    const inUnit = new Map<number, number>();
    for (const value of values) inUnit.set(index.get(value)!, (inUnit.get(index.get(value)!) ?? 0) + 1);
    for (const [c, countC] of inUnit) {
      for (const [k, countK] of inUnit) matrix[c][k] += (countC * (c === k ? countK - 1 : countK)) / (values.length - 1);
    }
  }
  return matrix;
}

/** δ²_ck for every pair of the sorted distinct values. */
function differenceMatrix(values: readonly RatingValue[], marginals: readonly number[], level: AlphaLevel): number[][] {
  return values.map((_, c) => values.map((__, k) => squaredDifference(values, marginals, c, k, level)));
}

/**
 * Krippendorff's difference functions between the values at sorted positions c and k:
 * nominal 0 if equal else 1; interval (c − k)²; ratio ((c − k)/(c + k))² (0 when both are 0);
 * ordinal (Σ_{g=c..k} n_g − (n_c + n_k)/2)², which measures the distance by how many pairable
 * values lie between the two ranks, so only the order of the values matters.
 */
export function squaredDifference(values: readonly RatingValue[], marginals: readonly number[], c: number, k: number, level: AlphaLevel): number {
  if (c === k) return 0;
  if (level === 'nominal') return 1;
  const a = values[c] as number;
  const b = values[k] as number;
  if (level === 'interval') return (a - b) ** 2;
  if (level === 'ratio') return a + b === 0 ? 0 : ((a - b) / (a + b)) ** 2;
  const [low, high] = c < k ? [c, k] : [k, c];
  let between = 0;
  for (let g = low; g <= high; g++) between += marginals[g];
  return (between - (marginals[c] + marginals[k]) / 2) ** 2;
}
