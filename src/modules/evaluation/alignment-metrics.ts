/**
 * How well a selector (or a model judge) agrees with clinicians' preferences (issue 11).
 *
 * Hand-written: no maintained npm package computes scikit-learn-compatible ROC AUC and average
 * precision (with its tie and weight handling), grouped mean rank and MAP, and a seeded cluster
 * bootstrap for Node. The definitions follow scikit-learn (roc_auc_score, average_precision_score)
 * and the tests check them against scikit-learn's documented examples and hand-computed cases.
 * All arithmetic is Float64; AUC and AP sort once (O(n log n)).
 */
import { BootstrapInterval, BootstrapOptions, bootstrapFromDrawCounts } from './bootstrap';

/** One clinician judgement: `preferred` was judged better than `rejected`. */
export interface PreferencePair {
  preferred: string;
  rejected: string;
  /** Positive weight; default 1. */
  weight?: number;
  /**
   * The question the two answers belong to (e.g. candidate + round). Mean rank and MAP rank the
   * answers within each group; a pair without a group is a group of its own two answers.
   */
  group?: string;
  /** The resampling cluster, e.g. the image: the bootstrap then draws whole images. */
  cluster?: string;
}

/** A score per item id (selector score, or judge rating); higher means better. */
export type ItemScores = ReadonlyMap<string, number> | Readonly<Record<string, number>>;

/** Scored items of one group, flagged relevant when clinicians preferred them. */
export interface RankedGroup {
  key: string;
  items: readonly { id: string; score: number; relevant: boolean }[];
}

export interface AlignmentRate {
  /** Weighted share of pairs scored as the clinician ranked them; a tie counts 1/2. Null when no pairs. */
  value: number | null;
  /** Pairs. */
  n: number;
  /** Pairs whose two scores are equal. */
  ties: number;
  totalWeight: number;
}

export interface AucResult {
  /** ROC AUC; null when either class is absent (undefined, scikit-learn raises). */
  value: number | null;
  nPositive: number;
  nNegative: number;
}

export interface AveragePrecisionResult {
  /** Average precision; null when there is no positive (scikit-learn warns and returns 0). */
  value: number | null;
  nPositive: number;
  nNegative: number;
}

export interface MeanRankResult {
  /** Mean rank of the relevant answers, 1 = best; null when no group has a relevant answer. */
  value: number | null;
  /** Relevant answers ranked. */
  nRanked: number;
  /** Groups that contributed (have a relevant answer). */
  nGroups: number;
  /** Groups left out because no answer in them is relevant. */
  nGroupsSkipped: number;
}

export interface MeanAveragePrecisionResult {
  /** Mean over groups of their average precision; null when no group has a relevant answer. */
  value: number | null;
  nGroups: number;
  nGroupsSkipped: number;
}

export interface SelectorAlignmentReport {
  /** Pairs evaluated. */
  nPairs: number;
  /** Resampling units (clusters when pairs carry one, else groups, else pairs). */
  nUnits: number;
  alignmentRate: AlignmentRate & { interval: BootstrapInterval };
  auc: AucResult & { interval: BootstrapInterval };
  meanRank: MeanRankResult & { interval: BootstrapInterval };
  meanAveragePrecision: MeanAveragePrecisionResult & { interval: BootstrapInterval };
}

export interface JudgeAlignmentReport {
  nPairs: number;
  nUnits: number;
  alignmentRate: AlignmentRate & { interval: BootstrapInterval };
}

/** The score of `id`; a missing or non-finite score is the caller's error, never silently skipped. */
export function scoreOf(scores: ItemScores, id: string): number {
  const record = scores as Readonly<Record<string, number>>;
  // Own properties only: an item id such as "constructor" must not find Object.prototype's.
  const score = scores instanceof Map ? scores.get(id) : Object.hasOwn(record, id) ? record[id] : undefined;
  if (score === undefined) throw new RangeError(`no score for item ${id}`);
  if (!Number.isFinite(score)) throw new RangeError(`score of item ${id} is not a finite number: ${score}`);
  return score;
}

function weightOf(pair: PreferencePair): number {
  const weight = pair.weight ?? 1;
  if (!(Number.isFinite(weight) && weight > 0)) throw new RangeError(`pair weight must be a positive finite number, got ${weight}`);
  return weight;
}

/**
 * Alignment rate: Σ w·agree / Σ w over pairs, where agree is 1 when the preferred item scores
 * strictly higher than the rejected one, 1/2 when the two scores are equal (the scorer did not
 * decide, so it gets half credit, as the Mann-Whitney statistic does), 0 otherwise.
 * Empty input: value null, n 0. All ties: 0.5.
 */
export function alignmentRate(pairs: readonly PreferencePair[], scores: ItemScores): AlignmentRate {
  const { agreed, totalWeight, ties } = alignmentSums(pairs, scores);
  return { value: pairs.length ? agreed / totalWeight : null, n: pairs.length, ties, totalWeight };
}

function alignmentSums(pairs: readonly PreferencePair[], scores: ItemScores): { agreed: number; totalWeight: number; ties: number } {
  let agreed = 0;
  let totalWeight = 0;
  let ties = 0;
  for (const pair of pairs) {
    const weight = weightOf(pair);
    const difference = scoreOf(scores, pair.preferred) - scoreOf(scores, pair.rejected);
    if (difference > 0) agreed += weight;
    else if (difference === 0) {
      agreed += weight / 2;
      ties++;
    }
    totalWeight += weight;
  }
  return { agreed, totalWeight, ties };
}

/**
 * Judge alignment: the alignment rate of model-judge ratings (0-10 per answer) on clinician pairs;
 * equal ratings are a tie (1/2). Ratings outside [0, 10] are rejected.
 */
export function judgeAlignmentRate(pairs: readonly PreferencePair[], ratings: ItemScores): AlignmentRate {
  for (const pair of pairs) for (const id of [pair.preferred, pair.rejected]) assertRating(id, scoreOf(ratings, id));
  return alignmentRate(pairs, ratings);
}

function assertRating(id: string, rating: number): void {
  if (rating < 0 || rating > 10) throw new RangeError(`judge rating of item ${id} must lie in [0, 10], got ${rating}`);
}

interface LabelledScore {
  positive: boolean;
  score: number;
  weight: number;
  /** Index of the bootstrap unit the sample belongs to, when there is one. */
  unit?: number;
}

/** Samples sorted by score, highest first, cut where the score changes: one block per threshold. */
interface ThresholdBlocks {
  sorted: LabelledScore[];
  /** End (exclusive) of each block in `sorted`. */
  ends: number[];
}

function thresholdBlocks(samples: readonly LabelledScore[]): ThresholdBlocks {
  const sorted = [...samples].sort((a, b) => b.score - a.score);
  const ends: number[] = [];
  for (let i = 1; i <= sorted.length; i++) if (i === sorted.length || sorted[i].score !== sorted[i - 1].score) ends.push(i);
  return { sorted, ends };
}

/**
 * Calls `step` once per threshold, highest first, with the positive and negative weight at that
 * score; each sample's weight is multiplied by `multiplier` (the bootstrap's draw count).
 */
function forEachThreshold(
  blocks: ThresholdBlocks,
  step: (positiveWeight: number, negativeWeight: number) => void,
  multiplier: (sample: LabelledScore) => number = () => 1,
): void {
  let start = 0;
  for (const end of blocks.ends) {
    let positiveWeight = 0;
    let negativeWeight = 0;
    for (let i = start; i < end; i++) {
      const sample = blocks.sorted[i];
      const weight = sample.weight * multiplier(sample);
      if (sample.positive) positiveWeight += weight;
      else negativeWeight += weight;
    }
    step(positiveWeight, negativeWeight);
    start = end;
  }
}

/** Trapezoidal ROC area over the thresholds; null when one class has no weight. */
function aucOfBlocks(blocks: ThresholdBlocks, multiplier?: (sample: LabelledScore) => number): number | null {
  let truePositives = 0;
  let falsePositives = 0;
  let area = 0;
  forEachThreshold(
    blocks,
    (positiveWeight, negativeWeight) => {
      area += negativeWeight * (truePositives + positiveWeight / 2);
      truePositives += positiveWeight;
      falsePositives += negativeWeight;
    },
    multiplier,
  );
  return truePositives > 0 && falsePositives > 0 ? area / (truePositives * falsePositives) : null;
}

function toSamples(labels: readonly (boolean | 0 | 1)[], scores: readonly number[], weights?: readonly number[]): LabelledScore[] {
  if (labels.length !== scores.length) throw new RangeError(`labels (${labels.length}) and scores (${scores.length}) differ in length`);
  if (weights && weights.length !== labels.length) throw new RangeError(`weights (${weights.length}) and labels (${labels.length}) differ in length`);
  return labels.map((label, i) => {
    const score = scores[i];
    const weight = weights ? weights[i] : 1;
    if (!Number.isFinite(score)) throw new RangeError(`score ${i} is not a finite number: ${score}`);
    if (!(Number.isFinite(weight) && weight > 0)) throw new RangeError(`weight ${i} must be a positive finite number, got ${weight}`);
    return { positive: label === true || label === 1, score, weight };
  });
}

function countClasses(samples: readonly LabelledScore[]): { nPositive: number; nNegative: number } {
  const nPositive = samples.filter((sample) => sample.positive).length;
  return { nPositive, nNegative: samples.length - nPositive };
}

/**
 * ROC AUC as scikit-learn's roc_auc_score (binary, optional sample weights): the trapezoidal area
 * under the ROC curve whose points are the distinct score thresholds. Tied scores form one point,
 * so a positive tied with a negative counts 1/2: this equals the Mann-Whitney U / (P·N).
 * Labels: true/1 positive, false/0 negative. A single class (or empty input): value null.
 */
export function rocAuc(labels: readonly (boolean | 0 | 1)[], scores: readonly number[], weights?: readonly number[]): AucResult {
  const samples = toSamples(labels, scores, weights);
  return { value: aucOfBlocks(thresholdBlocks(samples)), ...countClasses(samples) };
}

/**
 * Average precision as scikit-learn's average_precision_score: AP = Σ_n (R_n − R_{n−1})·P_n over
 * the distinct score thresholds from the highest down (no interpolation). Tied scores enter
 * together at one threshold. No positive: value null (scikit-learn warns and returns 0). No
 * negative: 1. Empty: null.
 */
export function averagePrecision(labels: readonly (boolean | 0 | 1)[], scores: readonly number[], weights?: readonly number[]): AveragePrecisionResult {
  const samples = toSamples(labels, scores, weights);
  const counts = countClasses(samples);
  if (counts.nPositive === 0) return { value: null, ...counts };
  const totalPositive = samples.reduce((sum, sample) => sum + (sample.positive ? sample.weight : 0), 0);
  let truePositives = 0;
  let falsePositives = 0;
  let previousRecall = 0;
  let sum = 0;
  forEachThreshold(thresholdBlocks(samples), (positiveWeight, negativeWeight) => {
    truePositives += positiveWeight;
    falsePositives += negativeWeight;
    const recall = truePositives / totalPositive;
    sum += (recall - previousRecall) * (truePositives / (truePositives + falsePositives));
    previousRecall = recall;
  });
  return { value: sum, ...counts };
}

/**
 * AUC of a selector on clinician pairs: every pair contributes its preferred item's score as a
 * positive and its rejected item's score as a negative, both with the pair's weight (an item in
 * several pairs contributes once per pair). Unlike the alignment rate, it compares every preferred
 * answer with every rejected one, also across questions.
 */
export function pairwiseAuc(pairs: readonly PreferencePair[], scores: ItemScores): AucResult {
  const samples = pairSamples(pairs, scores);
  return { value: aucOfBlocks(thresholdBlocks(samples)), ...countClasses(samples) };
}

function pairSamples(pairs: readonly PreferencePair[], scores: ItemScores, unit?: number): LabelledScore[] {
  return pairs.flatMap((pair) => {
    const weight = weightOf(pair);
    return [
      { positive: true, score: scoreOf(scores, pair.preferred), weight, unit },
      { positive: false, score: scoreOf(scores, pair.rejected), weight, unit },
    ];
  });
}

/**
 * Groups the pairs' items by question: a pair with `group` joins that group, a pair without one
 * is its own group. The items of a group are every item of its pairs; an item is relevant when
 * clinicians preferred it in at least one pair of the group and rejected it in none (clinicians
 * who disagree leave neither answer relevant). Weights play no part in ranking.
 */
export function groupsFromPairs(pairs: readonly PreferencePair[], scores: ItemScores): RankedGroup[] {
  const groups = new Map<string, { preferred: Set<string>; rejected: Set<string>; items: Set<string> }>();
  pairs.forEach((pair, index) => {
    const key = pair.group ?? `\u0000pair:${index}`;
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { preferred: new Set(), rejected: new Set(), items: new Set() }));
    group.items.add(pair.preferred).add(pair.rejected);
    group.preferred.add(pair.preferred);
    group.rejected.add(pair.rejected);
  });
  return [...groups].map(([key, group]) => ({
    key,
    items: [...group.items].map((id) => ({ id, score: scoreOf(scores, id), relevant: group.preferred.has(id) && !group.rejected.has(id) })),
  }));
}

/**
 * Rank of an item with `score` among `scores` (descending, 1 = best), ties averaged: a score shared
 * by t items that beat b others gets b + (t + 1)/2, the mean of the ranks b+1 … b+t.
 */
export function averagedRank(score: number, scores: readonly number[]): number {
  let higher = 0;
  let equal = 0;
  for (const other of scores) {
    if (other > score) higher++;
    else if (other === score) equal++;
  }
  return higher + (equal + 1) / 2;
}

/**
 * Mean rank of clinician-preferred answers: within each group, the rank of each relevant answer
 * among all the group's answers by score (1 = best, ties averaged, see averagedRank), averaged over
 * all relevant answers of all groups. Groups without a relevant answer are skipped and counted.
 * For two-answer questions it is 1 when the selector always agrees, 2 when it never does, 1.5 on ties.
 */
export function meanRank(groups: readonly RankedGroup[]): MeanRankResult {
  const { rankSum, nRanked, nGroups } = rankSums(groups);
  return { value: nRanked ? rankSum / nRanked : null, nRanked, nGroups, nGroupsSkipped: groups.length - nGroups };
}

function rankSums(groups: readonly RankedGroup[]): { rankSum: number; nRanked: number; nGroups: number } {
  let rankSum = 0;
  let nRanked = 0;
  let nGroups = 0;
  for (const group of groups) {
    const scores = group.items.map((item) => item.score);
    const relevant = group.items.filter((item) => item.relevant);
    if (relevant.length === 0) continue;
    nGroups++;
    for (const item of relevant) rankSum += averagedRank(item.score, scores);
    nRanked += relevant.length;
  }
  return { rankSum, nRanked, nGroups };
}

/**
 * MAP: the unweighted mean over groups of each group's average precision (scikit-learn's
 * definition, ties entering together, see averagePrecision) with the relevant answers as
 * positives. Groups without a relevant answer are skipped and counted; a group of only relevant
 * answers has AP 1.
 */
export function meanAveragePrecision(groups: readonly RankedGroup[]): MeanAveragePrecisionResult {
  const { apSum, nGroups } = averagePrecisionSums(groups);
  return { value: nGroups ? apSum / nGroups : null, nGroups, nGroupsSkipped: groups.length - nGroups };
}

function averagePrecisionSums(groups: readonly RankedGroup[]): { apSum: number; nGroups: number } {
  let apSum = 0;
  let nGroups = 0;
  for (const group of groups) {
    const ap = averagePrecision(
      group.items.map((item) => item.relevant),
      group.items.map((item) => item.score),
    ).value;
    if (ap === null) continue;
    apSum += ap;
    nGroups++;
  }
  return { apSum, nGroups };
}

/**
 * The bootstrap's resampling units. Pairs that share an image (or a question) are not independent,
 * so a unit is a cluster when the pairs carry one, else a group when they carry one, else a pair.
 * A group must lie within one cluster: ranking needs the whole group in each resample.
 */
export function resamplingUnits(pairs: readonly PreferencePair[]): PreferencePair[][] {
  const hasCluster = pairs.some((pair) => pair.cluster !== undefined);
  const hasGroup = pairs.some((pair) => pair.group !== undefined);
  if (hasCluster) assertGroupsWithinClusters(pairs);
  const units = new Map<string, PreferencePair[]>();
  pairs.forEach((pair, index) => {
    const key = hasCluster ? unitKey('cluster', pair.cluster, index) : hasGroup ? unitKey('group', pair.group, index) : unitKey('pair', undefined, index);
    const unit = units.get(key);
    if (unit) unit.push(pair);
    else units.set(key, [pair]);
  });
  return [...units.values()];
}

function unitKey(kind: string, key: string | undefined, index: number): string {
  return key === undefined ? `\u0000${kind}-less:${index}` : `${kind}:${key}`;
}

function assertGroupsWithinClusters(pairs: readonly PreferencePair[]): void {
  const clusterOfGroup = new Map<string, string | undefined>();
  for (const pair of pairs) {
    if (pair.group === undefined) continue;
    if (clusterOfGroup.has(pair.group) && clusterOfGroup.get(pair.group) !== pair.cluster) {
      throw new RangeError(`group ${pair.group} spans more than one cluster; a question must belong to one image`);
    }
    clusterOfGroup.set(pair.group, pair.cluster);
  }
}

/**
 * What one resampling unit adds to each metric. Groups never span units, so a resample's alignment
 * rate, mean rank and MAP are ratios of these sums weighted by how often each unit was drawn; a
 * unit drawn twice counts its questions twice (never merged into larger groups).
 */
interface UnitSums {
  agreed: number;
  totalWeight: number;
  rankSum: number;
  nRanked: number;
  apSum: number;
  nApGroups: number;
}

function unitSums(unit: readonly PreferencePair[], scores: ItemScores): UnitSums {
  const { agreed, totalWeight } = alignmentSums(unit, scores);
  const groups = groupsFromPairs(unit, scores);
  const { rankSum, nRanked } = rankSums(groups);
  const { apSum, nGroups } = averagePrecisionSums(groups);
  return { agreed, totalWeight, rankSum, nRanked, apSum, nApGroups: nGroups };
}

/** Σ count·numerator / Σ count·denominator over the units; null when the denominator is 0. */
function drawnRatio(counts: Uint32Array, sums: readonly UnitSums[], numerator: keyof UnitSums, denominator: keyof UnitSums): number | null {
  let top = 0;
  let bottom = 0;
  for (let u = 0; u < sums.length; u++) {
    if (counts[u] === 0) continue;
    top += counts[u] * sums[u][numerator];
    bottom += counts[u] * sums[u][denominator];
  }
  return bottom > 0 ? top / bottom : null;
}

/**
 * All selector metrics on clinician pairs, each with a seeded percentile bootstrap interval over
 * the same resamples (see resamplingUnits). Same pairs, scores and seed: same report. Each unit's
 * contribution is computed once; a resample costs O(units) for the ratios and one pass over the
 * pre-sorted scores for the AUC.
 */
export function evaluateSelectorAlignment(pairs: readonly PreferencePair[], scores: ItemScores, bootstrap: BootstrapOptions = {}): SelectorAlignmentReport {
  const units = resamplingUnits(pairs);
  const sums = units.map((unit) => unitSums(unit, scores));
  const aucBlocks = thresholdBlocks(units.flatMap((unit, u) => pairSamples(unit, scores, u)));
  const groups = groupsFromPairs(pairs, scores);
  const interval = (statistic: (counts: Uint32Array) => number | null) => bootstrapFromDrawCounts(units.length, statistic, bootstrap);
  return {
    nPairs: pairs.length,
    nUnits: units.length,
    alignmentRate: { ...alignmentRate(pairs, scores), interval: interval((counts) => drawnRatio(counts, sums, 'agreed', 'totalWeight')) },
    auc: { ...pairwiseAuc(pairs, scores), interval: interval((counts) => aucOfBlocks(aucBlocks, (sample) => counts[sample.unit!])) },
    meanRank: { ...meanRank(groups), interval: interval((counts) => drawnRatio(counts, sums, 'rankSum', 'nRanked')) },
    meanAveragePrecision: { ...meanAveragePrecision(groups), interval: interval((counts) => drawnRatio(counts, sums, 'apSum', 'nApGroups')) },
  };
}

/** The judge's alignment rate on clinician pairs with its bootstrap interval (units as above). */
export function evaluateJudgeAlignment(pairs: readonly PreferencePair[], ratings: ItemScores, bootstrap: BootstrapOptions = {}): JudgeAlignmentReport {
  const rate = judgeAlignmentRate(pairs, ratings);
  const units = resamplingUnits(pairs);
  const sums = units.map((unit) => unitSums(unit, ratings));
  return {
    nPairs: pairs.length,
    nUnits: units.length,
    alignmentRate: { ...rate, interval: bootstrapFromDrawCounts(units.length, (counts) => drawnRatio(counts, sums, 'agreed', 'totalWeight'), bootstrap) },
  };
}
