/**
 * The value of a clinician's judgement of a candidate (routing VALUE, issue 12), as a pure function
 * of scores so that the service (routing-value.ts, which reads them from the database) and the
 * routing benchmark (test/bench/routing.bench.ts, which makes them up) compute exactly the same thing.
 *
 * Two signals, each normalised to [0, 1] and added (so a value lies in [0, 2]):
 * - disagreement: |rank of the candidate under the active selector − its rank under the model
 *   judge|, ranks as mid-rank percentiles among the candidates that have both. Ranks rather than
 *   raw values because a selector logit and a 0-10 rating live on unrelated scales; where the two
 *   order a candidate far apart, one of them is wrong about it and a clinician settles which.
 * - threshold proximity: 1 − |F(score) − F(threshold)|, where F is the empirical distribution of
 *   the rule's selector scores over the candidates and the threshold is the score of the last
 *   candidate the project's latest dataset rule kept. A candidate just above or below the cut is
 *   the one whose judgement can change what is exported; one far above or far below cannot.
 * A candidate missing a signal (no judge rating, no score, no dataset yet) gets 0 for that signal,
 * so it ranks behind candidates that have one: a missing signal is no evidence of value.
 *
 * The priority a campaign stores is not that sum but its rank within a stratum of the selector's
 * score: the candidates are cut into up to STRATA_MAX equal-count strata by selector score (at least
 * MIN_STRATUM_SIZE each; a small campaign is one stratum), and priority = 1 − position / stratum size
 * with positions by value, highest first (ties share their mean position). Handing out by priority
 * is then round-robin over the strata, each stratum's most valuable candidate first. Why: measured
 * with `npm run bench:routing`, the plain sum fills the first labels with near-ties in one narrow
 * band around the cut, and pairs of near-ties teach the selector less than pairs across the whole
 * range; the sum then fell behind RANDOM by 10-98 labels from 100 labels on. Stratified it is level
 * with RANDOM (README, "Agreement and routing"): diversity, not the value signal, is what that
 * benchmark rewards.
 */

/** At most this many strata of the selector's score (the benchmark's 1,000 candidates: 10 of 100). */
export const STRATA_MAX = 10;
/** Fewer candidates per stratum than this and there are fewer strata (under 100 candidates: one). */
export const MIN_STRATUM_SIZE = 50;

export interface AnnotationValueInputs {
  /** Active selector score per candidate. */
  selectorScores: ReadonlyMap<string, number>;
  /** Model judge rating per candidate (e.g. the mean over its rated answers). */
  judgeRatings: ReadonlyMap<string, number>;
  /** The latest dataset rule's selector score per candidate and that rule's cut, when there is a dataset. */
  threshold?: { scores: ReadonlyMap<string, number>; value: number } | null;
}

export interface AnnotationValue {
  /** Round-robin priority over selector-score strata (see the module comment), in [0, 1]; what a campaign stores. */
  priority: number;
  /** disagreement + thresholdProximity, in [0, 2]. */
  value: number;
  disagreement: number;
  thresholdProximity: number;
}

/**
 * Mid-rank percentiles in [0, 1]: the lowest value 0, the highest 1, ties share the mean of their
 * positions. A single value gets 0.5 (it is neither low nor high).
 */
export function percentileRanks(values: ReadonlyMap<string, number>): Map<string, number> {
  const entries = [...values].sort((a, b) => a[1] - b[1]);
  const ranks = new Map<string, number>();
  const last = entries.length - 1;
  for (let start = 0; start < entries.length; ) {
    let end = start;
    while (end + 1 < entries.length && entries[end + 1][1] === entries[start][1]) end++;
    const mid = (start + end) / 2;
    for (let i = start; i <= end; i++) ranks.set(entries[i][0], last > 0 ? mid / last : 0.5);
    start = end + 1;
  }
  return ranks;
}

/** Share of `sorted` (ascending) strictly below x plus half the share equal to x: the mid-distribution function. O(log n). */
function midDistribution(sorted: readonly number[], x: number): number {
  const bound = (strict: boolean) => {
    let lo = 0;
    let hi = sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (strict ? sorted[mid] < x : sorted[mid] <= x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
  const below = bound(true);
  const equal = bound(false) - below;
  return (below + equal / 2) / sorted.length;
}

/** The value of each of `candidateIds` (see the module comment); every id gets an entry. */
export function annotationValueOf(candidateIds: readonly string[], inputs: AnnotationValueInputs): Map<string, AnnotationValue> {
  const wanted = new Set(candidateIds);
  const both = new Map<string, [number, number]>();
  for (const id of wanted) {
    const s = inputs.selectorScores.get(id);
    const j = inputs.judgeRatings.get(id);
    if (s !== undefined && j !== undefined && Number.isFinite(s) && Number.isFinite(j)) both.set(id, [s, j]);
  }
  const selectorRanks = percentileRanks(new Map([...both].map(([id, [s]]) => [id, s])));
  const judgeRanks = percentileRanks(new Map([...both].map(([id, [, j]]) => [id, j])));

  const thresholdScores = new Map<string, number>();
  if (inputs.threshold) for (const id of wanted) {
    const s = inputs.threshold.scores.get(id);
    if (s !== undefined && Number.isFinite(s)) thresholdScores.set(id, s);
  }
  const sorted = [...thresholdScores.values()].sort((a, b) => a - b);
  const cut = inputs.threshold && sorted.length ? midDistribution(sorted, inputs.threshold.value) : null;

  const out = new Map<string, AnnotationValue>();
  for (const id of candidateIds) {
    const disagreement = both.size > 1 && both.has(id) ? Math.abs(selectorRanks.get(id)! - judgeRanks.get(id)!) : 0;
    const score = thresholdScores.get(id);
    const thresholdProximity = cut !== null && score !== undefined ? 1 - Math.abs(midDistribution(sorted, score) - cut) : 0;
    out.set(id, { priority: 0, value: disagreement + thresholdProximity, disagreement, thresholdProximity });
  }
  setStratifiedPriorities(out, inputs.selectorScores.size ? inputs.selectorScores : (inputs.threshold?.scores ?? new Map()));
  return out;
}

/**
 * priority = 1 − (mean position by value within its stratum) / stratum size, strata being equal-count
 * slices of `strataBy` (the active selector's score, else the rule's) over every candidate that has
 * one. A candidate of value 0 (no signal) or without a score to stratify by gets priority 0: no
 * evidence of value.
 */
function setStratifiedPriorities(values: Map<string, AnnotationValue>, strataBy: ReadonlyMap<string, number>): void {
  const ranked = [...values]
    .filter(([id]) => Number.isFinite(strataBy.get(id)))
    .sort((a, b) => strataBy.get(a[0])! - strataBy.get(b[0])! || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const strata = Math.max(1, Math.min(STRATA_MAX, Math.floor(ranked.length / MIN_STRATUM_SIZE)));
  const groups: AnnotationValue[][] = Array.from({ length: strata }, () => []);
  ranked.forEach(([, v], i) => groups[Math.floor((i * strata) / ranked.length)].push(v));
  for (const group of groups) {
    group.sort((a, b) => b.value - a.value);
    for (let start = 0; start < group.length; ) {
      let end = start;
      while (end + 1 < group.length && group[end + 1].value === group[start].value) end++;
      for (let i = start; i <= end; i++) group[i].priority = group[i].value > 0 ? 1 - (start + end) / 2 / group.length : 0;
      start = end + 1;
    }
  }
}
