import {
  PreferencePair,
  alignmentRate,
  averagePrecision,
  averagedRank,
  evaluateJudgeAlignment,
  evaluateSelectorAlignment,
  groupsFromPairs,
  judgeAlignmentRate,
  meanAveragePrecision,
  meanRank,
  pairwiseAuc,
  percentileBootstrap,
  quantileOfSorted,
  resamplingUnits,
  rocAuc,
  seededRandom,
} from '../../src/modules/evaluation';

describe('rocAuc (scikit-learn roc_auc_score)', () => {
  it("gives 0.75 on scikit-learn's documented example", () => {
    const result = rocAuc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]);
    expect(result.value).toBeCloseTo(0.75, 12);
    expect(result).toMatchObject({ nPositive: 2, nNegative: 2 });
  });

  it('counts a positive tied with a negative as 1/2 (one threshold for tied scores)', () => {
    // pairs (pos, neg): (0.5, 0.5) = 1/2, (0.5, 0.1) = 1, (0.9, 0.5) = 1, (0.9, 0.1) = 1 -> 3.5 / 4
    expect(rocAuc([1, 0, 1, 0], [0.5, 0.5, 0.9, 0.1]).value).toBeCloseTo(0.875, 12);
  });

  it('is 0.5 when every score is tied', () => {
    expect(rocAuc([1, 0, 0, 1, 0], [3, 3, 3, 3, 3]).value).toBe(0.5);
  });

  it('is 1 for a perfect ranking and 0 for an inverted one', () => {
    expect(rocAuc([true, true, false, false], [0.9, 0.8, 0.2, 0.1]).value).toBe(1);
    expect(rocAuc([true, true, false, false], [0.1, 0.2, 0.8, 0.9]).value).toBe(0);
  });

  it('weights samples as scikit-learn sample_weight does', () => {
    // positive 0.5 (w 1); negatives 0.7 (w 3) and 0.2 (w 1): the positive beats weight 1 of 4
    expect(rocAuc([1, 0, 0], [0.5, 0.7, 0.2], [1, 3, 1]).value).toBeCloseTo(0.25, 12);
  });

  it('gives an integer weight the same result as repeating the sample', () => {
    const weighted = rocAuc([1, 0, 1, 0, 1], [0.3, 0.3, 0.6, 0.9, 0.1], [2, 1, 3, 1, 1]).value;
    const repeated = rocAuc([1, 1, 0, 1, 1, 1, 0, 1], [0.3, 0.3, 0.3, 0.6, 0.6, 0.6, 0.9, 0.1]).value;
    expect(weighted).toBeCloseTo(repeated!, 12);
  });

  it('is undefined (null) with a single class or no samples, and says how many of each class it saw', () => {
    expect(rocAuc([1, 1], [0.2, 0.4])).toEqual({ value: null, nPositive: 2, nNegative: 0 });
    expect(rocAuc([0], [0.2])).toEqual({ value: null, nPositive: 0, nNegative: 1 });
    expect(rocAuc([], [])).toEqual({ value: null, nPositive: 0, nNegative: 0 });
  });

  it('rejects mismatched lengths, non-finite scores and non-positive weights', () => {
    expect(() => rocAuc([1, 0], [0.1])).toThrow(/differ in length/);
    expect(() => rocAuc([1, 0], [0.1, Number.NaN])).toThrow(/finite/);
    expect(() => rocAuc([1, 0], [0.1, 0.2], [1, 0])).toThrow(/positive/);
  });
});

describe('averagePrecision (scikit-learn average_precision_score)', () => {
  it("gives 0.8333 on scikit-learn's documented example", () => {
    expect(averagePrecision([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]).value).toBeCloseTo(0.8333333333, 9);
  });

  it('lets tied scores enter at one threshold', () => {
    // 0.9: P 1, R 1/2; 0.5 (a positive and a negative): P 2/3, R 1 -> 1/2 + 1/2 * 2/3
    expect(averagePrecision([1, 0, 1, 0], [0.5, 0.5, 0.9, 0.1]).value).toBeCloseTo(0.5 + 1 / 3, 12);
  });

  it('is the share of positives when every score is tied', () => {
    expect(averagePrecision([1, 0, 0, 0], [0.3, 0.3, 0.3, 0.3]).value).toBe(0.25);
  });

  it('is 1 for a perfect ranking and sums the precision at each positive for an inverted one', () => {
    expect(averagePrecision([1, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]).value).toBe(1);
    // 0.2: P 1/3, R 1/2; 0.1: P 2/4, R 1 -> 1/6 + 1/4
    expect(averagePrecision([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]).value).toBeCloseTo(1 / 6 + 1 / 4, 12);
  });

  it('weights samples', () => {
    // 0.9: P 1, R 1/2; 0.8 (negative, w 2); 0.1: P 2/4, R 1 -> 1/2 + 1/4
    expect(averagePrecision([1, 0, 1], [0.9, 0.8, 0.1], [1, 2, 1]).value).toBeCloseTo(0.75, 12);
    expect(averagePrecision([1, 0, 1], [0.9, 0.8, 0.1]).value).toBeCloseTo(0.5 + 1 / 3, 12);
  });

  it('is null without a positive and 1 without a negative', () => {
    expect(averagePrecision([0, 0], [0.1, 0.2])).toEqual({ value: null, nPositive: 0, nNegative: 2 });
    expect(averagePrecision([1, 1], [0.1, 0.2])).toEqual({ value: 1, nPositive: 2, nNegative: 0 });
  });
});

describe('alignmentRate', () => {
  const scores = { a: 0.9, b: 0.1, c: 0.2, d: 0.7, e: 0.5, f: 0.5 };
  const pairs: PreferencePair[] = [
    { preferred: 'a', rejected: 'b' },
    { preferred: 'c', rejected: 'd' },
    { preferred: 'e', rejected: 'f' },
  ];

  it('counts agreements, a tie as half, and reports the pairs and ties', () => {
    expect(alignmentRate(pairs, scores)).toEqual({ value: 0.5, n: 3, ties: 1, totalWeight: 3 });
  });

  it('weights pairs', () => {
    const weighted = pairs.map((pair, i) => ({ ...pair, weight: [2, 1, 1][i] }));
    // (2 + 0 + 1/2) / 4
    expect(alignmentRate(weighted, new Map(Object.entries(scores)))).toEqual({ value: 0.625, n: 3, ties: 1, totalWeight: 4 });
  });

  it('is 1 when the scores agree with every pair, 0 when inverted, 0.5 when all tied, null when empty', () => {
    expect(alignmentRate([pairs[0]], scores).value).toBe(1);
    expect(alignmentRate([{ preferred: 'b', rejected: 'a' }], scores).value).toBe(0);
    expect(alignmentRate([pairs[2], { preferred: 'f', rejected: 'e' }], scores).value).toBe(0.5);
    expect(alignmentRate([], scores)).toEqual({ value: null, n: 0, ties: 0, totalWeight: 0 });
  });

  it('rejects an item without a score, and a non-positive weight', () => {
    expect(() => alignmentRate([{ preferred: 'a', rejected: 'zz' }], scores)).toThrow(/no score for item zz/);
    expect(() => alignmentRate([{ preferred: 'a', rejected: 'constructor' }], scores)).toThrow(/no score for item constructor/);
    expect(() => alignmentRate([{ ...pairs[0], weight: 0 }], scores)).toThrow(/weight/);
  });
});

describe('pairwiseAuc', () => {
  it('compares every preferred answer with every rejected one, unlike the alignment rate', () => {
    const scores = { a: 0.9, b: 0.1, c: 0.2, d: 0.7 };
    const pairs: PreferencePair[] = [
      { preferred: 'a', rejected: 'b' },
      { preferred: 'c', rejected: 'd' },
    ];
    // positives 0.9, 0.2; negatives 0.1, 0.7: 0.9 beats both, 0.2 beats 0.1 only -> 3/4
    expect(pairwiseAuc(pairs, scores)).toEqual({ value: 0.75, nPositive: 2, nNegative: 2 });
    expect(alignmentRate(pairs, scores).value).toBe(0.5);
  });
});

describe('mean rank and MAP over groups', () => {
  const scores = { a: 0.9, b: 0.5, c: 0.5, x: 0.3, y: 0.2, m: 0.4, n: 0.6 };
  const pairs: PreferencePair[] = [
    { preferred: 'b', rejected: 'a', group: 'q1' },
    { preferred: 'b', rejected: 'c', group: 'q1' },
    { preferred: 'x', rejected: 'y' },
    { preferred: 'm', rejected: 'n', group: 'q3' },
    { preferred: 'n', rejected: 'm', group: 'q3' },
  ];

  it('builds one group per question and one per group-less pair; disagreeing clinicians leave no relevant answer', () => {
    const groups = groupsFromPairs(pairs, scores);
    expect(groups.map((group) => group.items.map((item) => `${item.id}${item.relevant ? '+' : ''}`))).toEqual([['b+', 'a', 'c'], ['x+', 'y'], ['m', 'n']]);
  });

  it('averages the ranks of tied scores', () => {
    expect(averagedRank(0.5, [0.9, 0.5, 0.5])).toBe(2.5);
    expect(averagedRank(0.9, [0.9, 0.5, 0.5])).toBe(1);
    expect(averagedRank(1, [1, 1, 1, 1])).toBe(2.5);
  });

  it('ranks the preferred answer within its group (1 = best) and skips groups without one', () => {
    // q1: b is tied with c below a -> 2.5; the group-less pair: x first -> 1
    expect(meanRank(groupsFromPairs(pairs, scores))).toEqual({ value: 1.75, nRanked: 2, nGroups: 2, nGroupsSkipped: 1 });
  });

  it('averages the per-group average precision', () => {
    // q1: 0.9 (a, negative) P 0; 0.5 (b, c) P 1/3, R 1 -> 1/3; the group-less pair -> 1
    const result = meanAveragePrecision(groupsFromPairs(pairs, scores));
    expect(result.value).toBeCloseTo((1 / 3 + 1) / 2, 12);
    expect(result).toMatchObject({ nGroups: 2, nGroupsSkipped: 1 });
  });

  it('gives rank 1 and MAP 1 for perfect scores, rank 2 and MAP 1/2 for inverted two-answer questions, null when empty', () => {
    const twoAnswer: PreferencePair[] = [
      { preferred: 'a', rejected: 'b', group: 'g1' },
      { preferred: 'n', rejected: 'x', group: 'g2' },
    ];
    const inverted = twoAnswer.map((pair) => ({ ...pair, preferred: pair.rejected, rejected: pair.preferred }));
    expect(meanRank(groupsFromPairs(twoAnswer, scores)).value).toBe(1);
    expect(meanAveragePrecision(groupsFromPairs(twoAnswer, scores)).value).toBe(1);
    expect(meanRank(groupsFromPairs(inverted, scores)).value).toBe(2);
    expect(meanAveragePrecision(groupsFromPairs(inverted, scores)).value).toBe(0.5);
    expect(meanRank([])).toEqual({ value: null, nRanked: 0, nGroups: 0, nGroupsSkipped: 0 });
    expect(meanAveragePrecision([])).toEqual({ value: null, nGroups: 0, nGroupsSkipped: 0 });
  });
});

describe('bootstrap', () => {
  it('interpolates quantiles linearly, as numpy does by default', () => {
    expect(quantileOfSorted([1, 2, 3, 4], 0.25)).toBe(1.75);
    expect(quantileOfSorted([1, 2, 3, 4], 0.975)).toBeCloseTo(3.925, 12);
    expect(quantileOfSorted([7], 0.5)).toBe(7);
  });

  it('draws the same numbers for the same seed, in [0, 1)', () => {
    const first = seededRandom(42);
    const second = seededRandom(42);
    const other = seededRandom(43);
    const a = Array.from({ length: 1000 }, first);
    expect(Array.from({ length: 1000 }, second)).toEqual(a);
    expect(Array.from({ length: 1000 }, other)).not.toEqual(a);
    expect(a.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(a.reduce((sum, x) => sum + x, 0) / a.length).toBeGreaterThan(0.45);
    expect(a.reduce((sum, x) => sum + x, 0) / a.length).toBeLessThan(0.55);
  });

  it('leaves out resamples where the statistic is undefined, and counts them', () => {
    const interval = percentileBootstrap([0, 1], (drawn) => (drawn[0] === drawn[1] ? null : 0.5), { resamples: 200, seed: 3 });
    expect(interval.validResamples).toBeGreaterThan(0);
    expect(interval.validResamples).toBeLessThan(200);
    expect(interval).toMatchObject({ low: 0.5, high: 0.5, resamples: 200 });
  });

  it('gives null bounds on no units and rejects bad options', () => {
    expect(percentileBootstrap([], () => 1)).toMatchObject({ low: null, high: null, validResamples: 0 });
    expect(() => percentileBootstrap([1], () => 1, { resamples: 0 })).toThrow(/resamples/);
    expect(() => percentileBootstrap([1], () => 1, { level: 1 })).toThrow(/level/);
    expect(() => percentileBootstrap([1], () => 1, { seed: -1 })).toThrow(/seed/);
  });
});

describe('evaluateSelectorAlignment', () => {
  // 40 questions of two answers on 10 images; the selector agrees on 30, disagrees on 8, ties on 2
  function fixture(): { pairs: PreferencePair[]; scores: Record<string, number> } {
    const pairs: PreferencePair[] = [];
    const scores: Record<string, number> = {};
    for (let q = 0; q < 40; q++) {
      const preferred = `q${q}-a`;
      const rejected = `q${q}-b`;
      scores[preferred] = (q * 37) % 100;
      scores[rejected] = q < 30 ? scores[preferred] - 5 - (q % 7) : q < 38 ? scores[preferred] + 3 + (q % 5) : scores[preferred];
      pairs.push({ preferred, rejected, group: `q${q}`, cluster: `img${Math.floor(q / 4)}` });
    }
    return { pairs, scores };
  }

  it('reports every metric with its counts and an interval around it', () => {
    const { pairs, scores } = fixture();
    const report = evaluateSelectorAlignment(pairs, scores, { resamples: 500, seed: 7 });
    expect(report.nPairs).toBe(40);
    expect(report.nUnits).toBe(10);
    expect(report.alignmentRate).toMatchObject({ value: 31 / 40, n: 40, ties: 2 });
    expect(report.meanRank).toMatchObject({ value: (30 * 1 + 8 * 2 + 2 * 1.5) / 40, nRanked: 40, nGroups: 40 });
    expect(report.meanAveragePrecision).toMatchObject({ value: (30 * 1 + 8 * 0.5 + 2 * 0.5) / 40, nGroups: 40 });
    expect(report.auc).toMatchObject({ value: pairwiseAuc(pairs, scores).value, nPositive: 40, nNegative: 40 });
    for (const metric of [report.alignmentRate, report.auc, report.meanRank, report.meanAveragePrecision]) {
      expect(metric.interval).toMatchObject({ level: 0.95, resamples: 500, validResamples: 500, seed: 7 });
      expect(metric.interval.low!).toBeLessThanOrEqual(metric.value!);
      expect(metric.interval.high!).toBeGreaterThanOrEqual(metric.value!);
      expect(metric.interval.high!).toBeGreaterThan(metric.interval.low!);
    }
  });

  it('is deterministic for a seed and changes with it', () => {
    const { pairs, scores } = fixture();
    const first = evaluateSelectorAlignment(pairs, scores, { resamples: 300, seed: 11 });
    expect(evaluateSelectorAlignment(pairs, scores, { resamples: 300, seed: 11 })).toEqual(first);
    const reseeded = evaluateSelectorAlignment(pairs, scores, { resamples: 300, seed: 12 });
    expect([reseeded.alignmentRate.interval.low, reseeded.alignmentRate.interval.high, reseeded.auc.interval.low, reseeded.auc.interval.high]).not.toEqual([
      first.alignmentRate.interval.low,
      first.alignmentRate.interval.high,
      first.auc.interval.low,
      first.auc.interval.high,
    ]);
  });

  /** The bootstrap's definition, computed naively: every metric recomputed on each resample's pairs, a question drawn k times counted k times. */
  function naiveInterval(pairs: PreferencePair[], metric: (sample: PreferencePair[]) => number | null, options: { resamples: number; seed: number }) {
    const pairsOfDraw = (drawn: readonly PreferencePair[][]) =>
      drawn.flatMap((unit, draw) => unit.map((pair, i) => ({ ...pair, group: `${pair.group ?? `\u0000pair${i}`}\u0000draw${draw}` })));
    return percentileBootstrap(resamplingUnits(pairs), (drawn) => metric(pairsOfDraw(drawn)), options);
  }

  /** 12 images: a three-answer question with two pairs, a group-less pair, and on every third image a question clinicians disagree on; weights vary. */
  function mixedFixture(): { pairs: PreferencePair[]; scores: Record<string, number> } {
    const pairs: PreferencePair[] = [];
    const scores: Record<string, number> = {};
    for (let i = 0; i < 12; i++) {
      const [a, b, c, x, y, m, n] = ['a', 'b', 'c', 'x', 'y', 'm', 'n'].map((name) => `${name}${i}`);
      [a, b, c, x, y, m, n].forEach((id, k) => (scores[id] = ((i * 7 + k * 13) % 10) / 10));
      const cluster = `img${i}`;
      pairs.push({ preferred: a, rejected: b, group: `q${i}`, cluster, weight: 1 + (i % 3) }, { preferred: a, rejected: c, group: `q${i}`, cluster, weight: 1 + (i % 3) });
      pairs.push({ preferred: x, rejected: y, cluster, weight: 2 });
      if (i % 3 === 0) pairs.push({ preferred: m, rejected: n, group: `r${i}`, cluster }, { preferred: n, rejected: m, group: `r${i}`, cluster });
    }
    return { pairs, scores };
  }

  it.each([
    ['images', (pair: PreferencePair) => pair],
    ['questions', ({ cluster: _cluster, ...pair }: PreferencePair) => pair],
    ['pairs', ({ cluster: _cluster, group: _group, ...pair }: PreferencePair) => pair],
  ])('gives the intervals of recomputing each metric on every resample, resampling %s', (_units, strip) => {
    const { pairs: full, scores } = mixedFixture();
    const pairs = full.map(strip);
    const options = { resamples: 200, seed: 21 };
    const report = evaluateSelectorAlignment(pairs, scores, options);
    const expected = {
      alignmentRate: naiveInterval(pairs, (sample) => alignmentRate(sample, scores).value, options),
      auc: naiveInterval(pairs, (sample) => pairwiseAuc(sample, scores).value, options),
      meanRank: naiveInterval(pairs, (sample) => meanRank(groupsFromPairs(sample, scores)).value, options),
      meanAveragePrecision: naiveInterval(pairs, (sample) => meanAveragePrecision(groupsFromPairs(sample, scores)).value, options),
    };
    for (const metric of ['alignmentRate', 'auc', 'meanRank', 'meanAveragePrecision'] as const) {
      const { low, high, ...counts } = report[metric].interval;
      expect(counts).toEqual({ level: 0.95, resamples: 200, validResamples: expected[metric].validResamples, seed: 21 });
      expect(low).toBeCloseTo(expected[metric].low!, 12);
      expect(high).toBeCloseTo(expected[metric].high!, 12);
      expect(high!).toBeGreaterThan(low!);
    }
  });

  it('resamples whole images when pairs carry a cluster key', () => {
    const scores = { a: 1, b: 0, c: 0, d: 1 };
    const agreeing = { preferred: 'a', rejected: 'b' };
    const disagreeing = { preferred: 'c', rejected: 'd' };
    // one image holding both pairs: every resample is that image, so the interval collapses
    const byImage = evaluateSelectorAlignment(
      [
        { ...agreeing, cluster: 'img1' },
        { ...disagreeing, cluster: 'img1' },
      ],
      scores,
      { resamples: 1000, seed: 1 },
    );
    expect(byImage.nUnits).toBe(1);
    expect(byImage.alignmentRate.interval).toMatchObject({ low: 0.5, high: 0.5 });
    // the same two pairs resampled one by one: half the resamples draw the same pair twice
    const byPair = evaluateSelectorAlignment([agreeing, disagreeing], scores, { resamples: 1000, seed: 1 });
    expect(byPair.nUnits).toBe(2);
    expect(byPair.alignmentRate.interval).toMatchObject({ low: 0, high: 1 });
  });

  it('counts a question drawn twice as two questions', () => {
    const scores = { a: 1, b: 0, c: 0, d: 1 };
    const pairs: PreferencePair[] = [
      { preferred: 'a', rejected: 'b', group: 'q1' },
      { preferred: 'c', rejected: 'd', group: 'q2' },
    ];
    const report = evaluateSelectorAlignment(pairs, scores, { resamples: 1000, seed: 5 });
    // each resample holds two questions: ranks 1 and 1, 1 and 2, or 2 and 2 -> means 1, 1.5, 2
    expect(report.meanRank.interval).toMatchObject({ low: 1, high: 2, validResamples: 1000 });
  });

  it('rejects a question that spans two images', () => {
    expect(() =>
      resamplingUnits([
        { preferred: 'a', rejected: 'b', group: 'q1', cluster: 'img1' },
        { preferred: 'a', rejected: 'c', group: 'q1', cluster: 'img2' },
      ]),
    ).toThrow(/spans more than one cluster/);
  });

  it('has no figure and no interval on no pairs', () => {
    const report = evaluateSelectorAlignment([], {}, { resamples: 10 });
    expect(report.nPairs).toBe(0);
    expect(report.alignmentRate).toMatchObject({ value: null, n: 0, interval: { low: null, high: null } });
    expect(report.auc).toMatchObject({ value: null, interval: { low: null, high: null } });
  });
});

describe('judge alignment', () => {
  const pairs: PreferencePair[] = [
    { preferred: 'a', rejected: 'b', cluster: 'img1' },
    { preferred: 'c', rejected: 'd', cluster: 'img1' },
    { preferred: 'e', rejected: 'f', cluster: 'img2' },
    { preferred: 'g', rejected: 'h', cluster: 'img3' },
  ];
  const ratings = { a: 9, b: 6, c: 7, d: 7, e: 3, f: 8, g: 10, h: 0 };

  it('is the alignment rate of the judge ratings, equal ratings a tie', () => {
    expect(judgeAlignmentRate(pairs, ratings)).toEqual({ value: (1 + 0.5 + 0 + 1) / 4, n: 4, ties: 1, totalWeight: 4 });
  });

  it('reports the rate with a seeded interval over images', () => {
    const report = evaluateJudgeAlignment(pairs, ratings, { resamples: 400, seed: 9 });
    expect(report).toMatchObject({ nPairs: 4, nUnits: 3, alignmentRate: { value: 0.625, n: 4 } });
    expect(evaluateJudgeAlignment(pairs, ratings, { resamples: 400, seed: 9 })).toEqual(report);
    // images give 0.75 (two pairs), 0 and 1: no resample leaves [0, 1]
    expect(report.alignmentRate.interval.low).toBeGreaterThanOrEqual(0);
    expect(report.alignmentRate.interval.high).toBeLessThanOrEqual(1);
  });

  it('rejects a rating outside 0-10', () => {
    expect(() => judgeAlignmentRate([{ preferred: 'a', rejected: 'b' }], { a: 11, b: 3 })).toThrow(/\[0, 10\]/);
  });
});
