/**
 * campaignAgreement and clinicianPairs on judgements whose figures are worked out by hand (in the
 * comments), including the published 50-item Cohen example and the weighted-kappa example of issue 12.
 */
import { campaignAgreement, clinicianPairs, Judgement } from '../../src/modules/annotation/campaign-agreement';

const base = { otherCandidateId: null, roundIndex: 0, answerIndex: 0, accepted: null, choice: null, rating: null } as const;
const accept = (annotatorId: string, candidateId: string, accepted: boolean, answerIndex = 0): Judgement => ({ ...base, annotatorId, kind: 'ACCEPTANCE', candidateId, answerIndex, accepted });
const rate = (annotatorId: string, candidateId: string, rating: number, answerIndex = 0): Judgement => ({ ...base, annotatorId, kind: 'RATING', candidateId, answerIndex, rating });
const choose = (annotatorId: string, candidateId: string, choice: 'A' | 'B' | 'TIE', otherCandidateId: string | null = null): Judgement => ({ ...base, annotatorId, kind: 'PAIRWISE', candidateId, answerIndex: null, choice, otherCandidateId });

describe('campaignAgreement', () => {
  it('reproduces the 50-item Cohen example (κ 0.400) on ACCEPTANCE units, with Scott/Fleiss and Krippendorff for two raters', () => {
    // 20 both accept, 5 only u1 accepts, 10 only u2 accepts, 15 both reject.
    const judgements: Judgement[] = [];
    for (let i = 0; i < 50; i++) {
      const [a, b] = i < 20 ? [true, true] : i < 25 ? [true, false] : i < 35 ? [false, true] : [false, false];
      judgements.push(accept('u1', `c${i}`, a), accept('u2', `c${i}`, b));
    }
    const result = campaignAgreement(judgements);
    expect(result).toMatchObject({ kind: 'ACCEPTANCE', nUnits: 50, nUnitsShared: 50, nAnnotators: 2 });
    expect(result.pairs).toHaveLength(1);
    expect(result.pairs[0]).toMatchObject({ annotatorA: 'u1', annotatorB: 'u2', nItems: 50, kappaLinear: null, kappaQuadratic: null });
    expect(result.pairs[0].kappa).toBeCloseTo(0.4, 12);
    // Fleiss with two raters is Scott's pi: P̄ 0.7, p_accept 55/100, P̄e 0.55² + 0.45² = 0.505 → 0.195 / 0.495.
    expect(result.fleiss.value).toBeCloseTo(0.195 / 0.495, 12);
    expect(result.fleiss).toMatchObject({ nSubjects: 50, nRaters: 2 });
    // Krippendorff: 15 disagreeing units give o = 15 each way; n_acc 55, n_rej 45, n 100: 1 − 99·30 / (2·55·45) = 0.4.
    for (const alpha of [result.alphaNominal, result.alphaOrdinal, result.alphaInterval]) {
      expect(alpha.value).toBeCloseTo(0.4, 12);
      expect(alpha.nUnits).toBe(50);
    }
    expect(result.annotators.map((a) => [a.annotatorId, a.nItems, a.nOthers, a.nItemsVsMajority])).toEqual([['u1', 50, 1, 50], ['u2', 50, 1, 50]]);
    expect(result.annotators[0].meanKappaVsOthers).toBeCloseTo(0.4, 12);
    expect(result.annotators[0].kappaVsMajority).toBeCloseTo(0.4, 12);
  });

  it('gives each clinician their kappa vs each other one and vs the majority of the others', () => {
    // Units 1-4 (answers): u1 Y Y N N, u2 Y N N N, u3 Y Y N Y; unit 5 only u1 judged.
    const rows: [string, boolean[]][] = [['u1', [true, true, false, false, true]], ['u2', [true, false, false, false]], ['u3', [true, true, false, true]]];
    const judgements = rows.flatMap(([annotator, values]) => values.map((v, unit) => accept(annotator, 'c', v, unit)));
    const result = campaignAgreement(judgements);
    expect(result).toMatchObject({ nUnits: 5, nUnitsShared: 4, nAnnotators: 3 });
    const kappa = (a: string, b: string) => result.pairs.find((p) => p.annotatorA === a && p.annotatorB === b)!;
    // u1-u2: po 3/4, pe ½·¼ + ½·¾ = ½ → ½. u1-u3: po 3/4, pe ½ → ½. u2-u3: po ½, pe 3/8 → 0.2.
    expect(kappa('u1', 'u2').kappa).toBeCloseTo(0.5, 12);
    expect(kappa('u1', 'u2').nItems).toBe(4);
    expect(kappa('u1', 'u3').kappa).toBeCloseTo(0.5, 12);
    expect(kappa('u2', 'u3').kappa).toBeCloseTo(0.2, 12);
    const [u1, u2, u3] = result.annotators;
    expect(u1.meanKappaVsOthers).toBeCloseTo(0.5, 12);
    expect(u2.meanKappaVsOthers).toBeCloseTo(0.35, 12);
    expect(u3.meanKappaVsOthers).toBeCloseTo(0.35, 12);
    expect(u1.nItems).toBe(5);
    // u1 vs majority of u2, u3: units 2 and 4 tie, unit 5 has no other → units 1 and 3 agree → κ 1.
    expect(u1).toMatchObject({ nItemsVsMajority: 2, kappaVsMajority: 1 });
    // u2 vs majority (Y, Y, N on units 1-3; unit 4 ties): pairs YY, NY, NN → po 2/3, pe 4/9 → 0.4.
    expect(u2.nItemsVsMajority).toBe(3);
    expect(u2.kappaVsMajority).toBeCloseTo(0.4, 12);
    // Fleiss over the four units with three raters: P̄ 2/3, P̄e ½ → 1/3.
    expect(result.fleiss).toMatchObject({ nSubjects: 4, nRaters: 3 });
    expect(result.fleiss.value).toBeCloseTo(1 / 3, 12);
  });

  it('weights RATING disagreements over the 0-10 scale (the issue example: 0.8448, 0.8941, 0.9396)', () => {
    const a = [1, 2, 3, 3, 2, 1, 4, 1, 2];
    const b = [1, 2, 3, 3, 2, 2, 4, 1, 2];
    const judgements = a.flatMap((value, i) => [rate('u1', `c${i}`, value), rate('u2', `c${i}`, b[i])]);
    const [pair] = campaignAgreement(judgements).pairs;
    expect(pair.nItems).toBe(9);
    expect(pair.kappa).toBeCloseTo(0.8448, 4);
    expect(pair.kappaLinear).toBeCloseTo(0.8941, 4);
    expect(pair.kappaQuadratic).toBeCloseTo(0.9396, 4);
  });

  it('keys PAIRWISE units by the two sides compared, with B < TIE < A on the ordered scale', () => {
    // Three comparisons: A/A, B/TIE, TIE/TIE → po 2/3, pe 1/9 + 0 + 2/9 → κ ½.
    const judgements = [choose('u1', 'c1', 'A'), choose('u2', 'c1', 'A'), choose('u1', 'c2', 'B'), choose('u2', 'c2', 'TIE'), choose('u1', 'c3', 'TIE', 'c4'), choose('u2', 'c3', 'TIE', 'c4')];
    const result = campaignAgreement(judgements);
    expect(result.nUnits).toBe(3);
    expect(result.pairs[0].kappa).toBeCloseTo(0.5, 12);
    // Interval on 2/2, 0/1, 1/1: values 0,1,1,1,2,2 → n_0 1, n_1 3, n_2 2; o_01 = o_10 = 1; D_o = 2·1 / 6·... computed directly:
    // α = 1 − (n − 1)·Σ o δ² / Σ n_c n_k δ² = 1 − 5·2 / (2·(1·3·1 + 1·2·4 + 3·2·1)) = 1 − 10/34.
    expect(result.alphaInterval.value).toBeCloseTo(1 - 10 / 34, 12);
  });

  it('is empty and undefined without judgements', () => {
    const result = campaignAgreement([]);
    expect(result).toMatchObject({ kind: null, nUnits: 0, nAnnotators: 0, pairs: [], annotators: [] });
    expect(result.fleiss.value).toBeNull();
    expect(result.alphaNominal.value).toBeNull();
  });
});

describe('clinicianPairs', () => {
  it('pairs accepted against rejected answers of a round, higher against lower ratings, and the chosen side of a pairwise judgement', () => {
    const pairs = clinicianPairs([
      accept('u1', 'c1', true, 0),
      accept('u1', 'c1', false, 1),
      accept('u2', 'c1', true, 0),
      accept('u2', 'c1', true, 1),
      rate('u1', 'c2', 4, 0),
      rate('u1', 'c2', 9, 1),
      rate('u2', 'c2', 5, 0),
      rate('u2', 'c2', 5, 1),
      choose('u1', 'c3', 'B'),
      choose('u2', 'c3', 'TIE'),
      choose('u1', 'c4', 'A', 'c5'),
    ]);
    const shown = pairs.map((p) => `${p.annotatorId} ${p.preferred.key} > ${p.rejected.key}`).sort();
    expect(shown).toEqual(['u1 c1:0:0 > c1:0:1', 'u1 c2:0:1 > c2:0:0', 'u1 c3:0:1 > c3:0:0', 'u1 c4:0:- > c5:0:-']);
  });
});
