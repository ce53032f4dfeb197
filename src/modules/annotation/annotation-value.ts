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
 * The priority a campaign stores is not that sum alone: it interleaves the order by value with a
 * fixed pseudo-random order (a hash of the candidate id), priority = max(1 − position by value / n,
 * 1 − (position by hash + ½) / n) over the n candidates with a signal, so the hand-out alternates the
 * most valuable remaining candidate and a random one (each candidate at its first turn). Why, measured
 * with `npm run bench:routing` (README, "Agreement and routing"): the sum alone fills the labels with
 * near-ties around the cut; that pays when the selector is already decent (an initial selector that
 * learned from demonstrations: ahead of RANDOM) and costs when it only knows the judge (behind
 * RANDOM by 12-98 labels from 100 labels on); the random half keeps the labels spread over the whole
 * range, and the interleave was level with RANDOM in the second world and ahead in the first, the
 * only variant tried (strata of the selector's score, each signal alone, the sum) that was never
 * behind.
 */

export interface AnnotationValueInputs {
  /** Active selector score per candidate. */
  selectorScores: ReadonlyMap<string, number>;
  /** Model judge rating per candidate (e.g. the mean over its rated answers). */
  judgeRatings: ReadonlyMap<string, number>;
  /** The latest dataset rule's selector score per candidate and that rule's cut, when there is a dataset. */
  threshold?: { scores: ReadonlyMap<string, number>; value: number } | null;
}

export interface AnnotationValue {
  /** The value order interleaved with a pseudo-random one (see the module comment), in [0, 1]; what a campaign stores. */
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
  setInterleavedPriorities(out);
  return out;
}

/** FNV-1a of the id, in [0, 1): the fixed pseudo-random order the value order is interleaved with. */
export function idHash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) / 2 ** 32;
}

/**
 * priority = max(1 − (mean position by value) / n, 1 − (position by idHash + ½) / n) over the n
 * candidates with a signal; a candidate of value 0 (no signal) gets 0: no evidence of value.
 */
function setInterleavedPriorities(values: Map<string, AnnotationValue>): void {
  const signalled = [...values].filter(([, v]) => v.value > 0);
  const n = signalled.length;
  const byValue = signalled.map(([, v]) => v).sort((a, b) => b.value - a.value);
  for (let start = 0; start < n; ) {
    let end = start;
    while (end + 1 < n && byValue[end + 1].value === byValue[start].value) end++;
    for (let i = start; i <= end; i++) byValue[i].priority = 1 - (start + end) / 2 / n;
    start = end + 1;
  }
  const byHash = [...signalled].sort((a, b) => idHash(a[0]) - idHash(b[0]) || (a[0] < b[0] ? -1 : 1));
  byHash.forEach(([, v], i) => (v.priority = Math.max(v.priority, 1 - (i + 0.5) / n)));
}
