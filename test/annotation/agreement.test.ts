import { categoryCounts, cohenKappa, cohenKappaFromTable, fleissKappa, krippendorffAlpha } from '../../src/modules/annotation';

/** |actual − published| within half a unit of the published figure's last decimal. */
function expectPublished(actual: number | null, published: number, tolerance: number): void {
  expect(actual).not.toBeNull();
  expect(Math.abs(actual! - published)).toBeLessThanOrEqual(tolerance);
}

describe("Cohen's kappa", () => {
  // Wikipedia, "Cohen's kappa", worked example: 50 proposals, two readers
  const yesYes = 20;
  const yesANoB = 5;
  const noAYesB = 10;
  const noNo = 15;

  it('gives 0.400 on the 50-item Wikipedia example, from the table and from the ratings', () => {
    const fromTable = cohenKappaFromTable([
      [yesYes, yesANoB],
      [noAYesB, noNo],
    ]);
    expectPublished(fromTable.value, 0.4, 5e-4);
    expect(fromTable).toMatchObject({ nItems: 50, nCategories: 2 });

    const readerA = [...Array(yesYes + yesANoB).fill('yes'), ...Array(noAYesB + noNo).fill('no')];
    const readerB = [...Array(yesYes).fill('yes'), ...Array(yesANoB).fill('no'), ...Array(noAYesB).fill('yes'), ...Array(noNo).fill('no')];
    const fromRatings = cohenKappa(readerA, readerB);
    expectPublished(fromRatings.value, 0.4, 5e-4);
    expect(fromRatings).toMatchObject({ nItems: 50, nItemsSkipped: 0, nCategories: 2, weights: 'none' });
  });

  const raterA = [1, 2, 3, 3, 2, 1, 4, 1, 2];
  const raterB = [1, 2, 3, 3, 2, 2, 4, 1, 2];

  it.each([
    ['none', 0.8448],
    ['linear', 0.8941],
    ['quadratic', 0.9396],
  ] as const)('gives %s-weighted kappa %d on the ordinal example (as scikit-learn cohen_kappa_score)', (weights, published) => {
    const result = cohenKappa(raterA, raterB, { weights });
    expectPublished(result.value, published, 5e-5);
    expect(result).toMatchObject({ nItems: 9, nCategories: 4, weights });
  });

  it('leaves out items missing a rating, and counts them', () => {
    const result = cohenKappa([...raterA, null, 3], [...raterB, 2, undefined], { weights: 'linear' });
    expectPublished(result.value, 0.8941, 5e-5);
    expect(result).toMatchObject({ nItems: 9, nItemsSkipped: 2 });
  });

  it('weights by position in the category list, so an unused category widens the scale', () => {
    const withGap = cohenKappa([1, 2, 4, 4, 1], [1, 4, 4, 2, 1], { weights: 'linear' }).value;
    const declared = cohenKappa([1, 2, 4, 4, 1], [1, 4, 4, 2, 1], { weights: 'linear', categories: [1, 2, 3, 4] }).value;
    expect(withGap).not.toBeNull();
    expect(declared).not.toBeCloseTo(withGap!, 6);
    // unweighted kappa ignores the order: an unused category changes nothing
    expect(cohenKappa([1, 2, 4, 4, 1], [1, 4, 4, 2, 1], { categories: [1, 2, 3, 4] }).value).toBeCloseTo(cohenKappa([1, 2, 4, 4, 1], [1, 4, 4, 2, 1]).value!, 12);
  });

  it('is 1 on perfect agreement, below 0 on systematic disagreement', () => {
    expect(cohenKappa(['a', 'b', 'c', 'a'], ['a', 'b', 'c', 'a']).value).toBe(1);
    expect(cohenKappa(['a', 'b', 'a', 'b'], ['b', 'a', 'b', 'a']).value).toBe(-1);
  });

  it('is undefined (null) with no items or a single category for both raters', () => {
    expect(cohenKappa([], [])).toMatchObject({ value: null, nItems: 0 });
    expect(cohenKappa([null], [1])).toMatchObject({ value: null, nItems: 0, nItemsSkipped: 1 });
    expect(cohenKappa([3, 3, 3], [3, 3, 3])).toMatchObject({ value: null, nItems: 3, nCategories: 1 });
  });

  it('rejects mismatched lengths, ratings outside the categories and non-square tables', () => {
    expect(() => cohenKappa([1, 2], [1])).toThrow(/different numbers of items/);
    expect(() => cohenKappa([1, 5], [1, 2], { categories: [1, 2, 3] })).toThrow(/not one of the categories/);
    expect(() => cohenKappaFromTable([[1, 2], [3]])).toThrow(/square/);
  });
});

describe("Fleiss' kappa", () => {
  // Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 14 raters, 5 categories
  const wikipedia = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
  ];

  it('gives 0.210 on the Wikipedia example (P̄ 0.378, P̄e 0.213)', () => {
    const result = fleissKappa(wikipedia);
    expectPublished(result.value, 0.21, 5e-4);
    expectPublished(result.observedAgreement, 0.378, 5e-4);
    expectPublished(result.expectedAgreement, 0.213, 5e-4);
    expect(result).toMatchObject({ nSubjects: 10, nRaters: 14, nRatings: 140, nCategories: 5 });
  });

  it('counts raw ratings per subject into the same table', () => {
    const raw = wikipedia.map((row) => row.flatMap((count, category) => Array<number>(count).fill(category + 1)));
    const { categories, counts } = categoryCounts(raw);
    expect(categories).toEqual([1, 2, 3, 4, 5]);
    expect(counts).toEqual(wikipedia);
  });

  it('is 1 on unanimous subjects that use more than one category, null when every rating is one category or no subject', () => {
    expect(fleissKappa([
      [3, 0],
      [0, 3],
    ]).value).toBe(1);
    expect(fleissKappa([
      [3, 0],
      [3, 0],
    ])).toMatchObject({ value: null, expectedAgreement: 1, nSubjects: 2 });
    expect(fleissKappa([])).toMatchObject({ value: null, nSubjects: 0 });
  });

  it('rejects subjects with different numbers of raters, or one rater', () => {
    expect(() => fleissKappa([
      [2, 1],
      [1, 1],
    ])).toThrow(/same number of raters/);
    expect(() => fleissKappa([
      [1, 0],
      [0, 1],
    ])).toThrow(/at least 2 raters/);
  });
});

describe("Krippendorff's alpha", () => {
  // Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": 4 coders x 12 units, missing values
  const _ = null;
  const reliabilityData = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, _, _, _],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _, 3],
    [_, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _],
  ];

  it.each([
    ['nominal', 0.743],
    ['ordinal', 0.815],
    ['interval', 0.849],
    ['ratio', 0.797],
  ] as const)('gives the published %s alpha %d', (level, published) => {
    const result = krippendorffAlpha(reliabilityData, level);
    expectPublished(result.value, published, 5e-4);
    // unit 12 was coded once: not pairable; the other 11 units hold 40 pairable values
    expect(result).toMatchObject({ level, nUnits: 11, nUnitsSkipped: 1, nPairableValues: 40, nCoders: 4 });
  });

  it('takes category labels at the nominal level, numbers only at the others', () => {
    const labels = reliabilityData.map((row) => row.map((value) => (value === null ? null : `c${value}`)));
    expectPublished(krippendorffAlpha(labels, 'nominal').value, 0.743, 5e-4);
    expect(() => krippendorffAlpha(labels, 'ordinal')).toThrow(/numeric/);
    expect(() => krippendorffAlpha([[1, -1], [1, 2]], 'ratio')).toThrow(/non-negative/);
  });

  it('is 1 on perfect agreement and null when nothing is pairable or every value is the same', () => {
    expect(krippendorffAlpha([[1, 2, 3], [1, 2, 3]], 'interval').value).toBe(1);
    expect(krippendorffAlpha([[1, _], [_, 2]], 'nominal')).toMatchObject({ value: null, nUnits: 0, nUnitsSkipped: 2, nPairableValues: 0 });
    expect(krippendorffAlpha([[4, 4], [4, 4]], 'nominal')).toMatchObject({ value: null, nUnits: 2, nPairableValues: 4 });
    expect(krippendorffAlpha([], 'nominal')).toMatchObject({ value: null, nUnits: 0, nCoders: 0 });
  });

  it('is the same whatever the order of coders and units', () => {
    const shuffledUnits = [11, 3, 0, 7, 5, 9, 1, 10, 2, 8, 4, 6];
    const reordered = [...reliabilityData].reverse().map((row) => shuffledUnits.map((u) => row[u]));
    for (const level of ['nominal', 'ordinal', 'interval', 'ratio'] as const) {
      expect(krippendorffAlpha(reordered, level).value).toBeCloseTo(krippendorffAlpha(reliabilityData, level).value!, 12);
    }
  });

  it('rejects coders with different numbers of units', () => {
    expect(() => krippendorffAlpha([[1, 2], [1]], 'nominal')).toThrow(/mark uncoded units null/);
  });
});
