import { evaluateSelectorAlignment } from '../../src/modules/evaluation';
import { PreferenceRecord, TrainingPair, buildTrainingPairs, itemKey, splitPairsByImage, toAlignmentPairs } from '../../src/modules/training';

let sequence = 0;
/** A preference record with nothing judged yet; each test sets what it needs. */
function pref(fields: Partial<PreferenceRecord> & Pick<PreferenceRecord, 'source' | 'kind' | 'candidateId'>): PreferenceRecord {
  sequence++;
  return {
    id: `p${String(sequence).padStart(4, '0')}`,
    createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, sequence)),
    imageId: 'img1',
    annotatorId: fields.source === 'CLINICIAN' ? 'u1' : null,
    judgeModel: fields.source === 'MODEL' ? 'gpt-4v' : null,
    roundIndex: null,
    answerIndex: null,
    otherCandidateId: null,
    choice: null,
    rating: null,
    accepted: null,
    ...fields,
  };
}

const modelRating = (candidateId: string, roundIndex: number, answerIndex: number, rating: number, extra: Partial<PreferenceRecord> = {}) =>
  pref({ source: 'MODEL', kind: 'RATING', candidateId, roundIndex, answerIndex, rating, ...extra });

/** A pair as `preferred > rejected [source kind weight ids]`, to compare whole outputs at a glance. */
function describePair(pair: TrainingPair): string {
  return `${itemKey(pair.preferred)} > ${itemKey(pair.rejected)} [${pair.source} ${pair.kind} w${pair.weight} ${pair.preferenceIds.join(',')}]`;
}

describe('buildTrainingPairs from model ratings', () => {
  it('pairs two answers of the same round rated differently, the higher preferred; equal ratings give no pair', () => {
    const a0 = modelRating('c1', 0, 0, 8);
    const a1 = modelRating('c1', 0, 1, 5);
    const tiedA = modelRating('c1', 1, 0, 6);
    const tiedB = modelRating('c1', 1, 1, 6);
    const pairs = buildTrainingPairs([a0, a1, tiedA, tiedB], { clinicianWeight: 100 });
    expect(pairs.map(describePair)).toEqual([`c1/0/0 > c1/0/1 [MODEL RATING w1 ${a0.id},${a1.id}]`]);
    expect(pairs[0]).toMatchObject({ author: 'MODEL:gpt-4v', question: 'c1/0', imageIds: ['img1'] });
  });

  it("uses each judge's latest rating of an answer", () => {
    const a0 = modelRating('c1', 0, 0, 8);
    const a1 = modelRating('c1', 0, 1, 5);
    const a1Again = modelRating('c1', 0, 1, 9);
    expect(buildTrainingPairs([a1Again, a0, a1], { clinicianWeight: 10 }).map(describePair)).toEqual([`c1/0/1 > c1/0/0 [MODEL RATING w1 ${a1Again.id},${a0.id}]`]);
  });

  it('pairs nothing across judges, candidates or rounds, nor whole-conversation ratings', () => {
    const records = [
      modelRating('c1', 0, 0, 8),
      modelRating('c1', 0, 1, 2, { judgeModel: 'other-judge' }),
      modelRating('c2', 0, 1, 3),
      modelRating('c1', 1, 1, 1),
      pref({ source: 'MODEL', kind: 'RATING', candidateId: 'c3', rating: 9 }),
      pref({ source: 'MODEL', kind: 'RATING', candidateId: 'c4', rating: 2 }),
    ];
    expect(buildTrainingPairs(records, { clinicianWeight: 10 })).toEqual([]);
  });
});

describe('buildTrainingPairs from clinicians', () => {
  it('turns A/B choices into pairs weighted w; a tie gives none', () => {
    const chooseB = pref({ source: 'CLINICIAN', kind: 'PAIRWISE', candidateId: 'c1', roundIndex: 0, choice: 'B' });
    const chooseA = pref({ source: 'CLINICIAN', kind: 'PAIRWISE', candidateId: 'c1', roundIndex: 1, choice: 'A', annotatorId: 'u2' });
    const tie = pref({ source: 'CLINICIAN', kind: 'PAIRWISE', candidateId: 'c1', roundIndex: 2, choice: 'TIE' });
    expect(buildTrainingPairs([chooseB, chooseA, tie], { clinicianWeight: 200 }).map(describePair)).toEqual([
      `c1/0/1 > c1/0/0 [CLINICIAN PAIRWISE w200 ${chooseB.id}]`,
      `c1/1/0 > c1/1/1 [CLINICIAN PAIRWISE w200 ${chooseA.id}]`,
    ]);
  });

  it("keeps a clinician's latest choice on a round, and every clinician's own pair", () => {
    const first = pref({ source: 'CLINICIAN', kind: 'PAIRWISE', candidateId: 'c1', roundIndex: 0, choice: 'A' });
    const changedMind = pref({ source: 'CLINICIAN', kind: 'PAIRWISE', candidateId: 'c1', roundIndex: 0, choice: 'B' });
    const colleague = pref({ source: 'CLINICIAN', kind: 'PAIRWISE', candidateId: 'c1', roundIndex: 0, choice: 'A', annotatorId: 'u2' });
    const pairs = buildTrainingPairs([first, changedMind, colleague], { clinicianWeight: 10 });
    expect(pairs.map(describePair)).toEqual([`c1/0/1 > c1/0/0 [CLINICIAN PAIRWISE w10 ${changedMind.id}]`, `c1/0/0 > c1/0/1 [CLINICIAN PAIRWISE w10 ${colleague.id}]`]);
    expect(pairs.map((pair) => pair.author)).toEqual(['CLINICIAN:u1', 'CLINICIAN:u2']);
  });

  it('compares two candidates of a choice between candidates, and needs the other image', () => {
    const versus = pref({ source: 'CLINICIAN', kind: 'PAIRWISE', candidateId: 'c2', otherCandidateId: 'c3', otherImageId: 'img2', imageId: 'img2', choice: 'B' });
    expect(buildTrainingPairs([versus], { clinicianWeight: 10 })).toEqual([
      {
        preferred: { candidateId: 'c3', roundIndex: null, answerIndex: null },
        rejected: { candidateId: 'c2', roundIndex: null, answerIndex: null },
        source: 'CLINICIAN',
        kind: 'PAIRWISE',
        preferenceIds: [versus.id],
        author: 'CLINICIAN:u1',
        weight: 10,
        question: 'c2~c3/*',
        imageIds: ['img2'],
      },
    ]);
    expect(() => buildTrainingPairs([{ ...versus, otherImageId: null }], { clinicianWeight: 10 })).toThrow(/otherImageId/);
  });

  it('pairs an accepted answer with a rejected one of the same round by the same clinician', () => {
    const accepted = pref({ source: 'CLINICIAN', kind: 'ACCEPTANCE', candidateId: 'c1', roundIndex: 1, answerIndex: 1, accepted: true });
    const rejected = pref({ source: 'CLINICIAN', kind: 'ACCEPTANCE', candidateId: 'c1', roundIndex: 1, answerIndex: 0, accepted: false });
    const bothAcceptedA = pref({ source: 'CLINICIAN', kind: 'ACCEPTANCE', candidateId: 'c1', roundIndex: 2, answerIndex: 0, accepted: true });
    const bothAcceptedB = pref({ source: 'CLINICIAN', kind: 'ACCEPTANCE', candidateId: 'c1', roundIndex: 2, answerIndex: 1, accepted: true });
    const alone = pref({ source: 'CLINICIAN', kind: 'ACCEPTANCE', candidateId: 'c1', roundIndex: 3, answerIndex: 0, accepted: true });
    const otherClinician = pref({ source: 'CLINICIAN', kind: 'ACCEPTANCE', candidateId: 'c1', roundIndex: 3, answerIndex: 1, accepted: false, annotatorId: 'u2' });
    const pairs = buildTrainingPairs([accepted, rejected, bothAcceptedA, bothAcceptedB, alone, otherClinician], { clinicianWeight: 10 });
    expect(pairs.map(describePair)).toEqual([`c1/1/1 > c1/1/0 [CLINICIAN ACCEPTANCE w10 ${accepted.id},${rejected.id}]`]);
  });

  it("pairs a clinician's differing ratings of a round's two answers", () => {
    const low = pref({ source: 'CLINICIAN', kind: 'RATING', candidateId: 'c1', roundIndex: 0, answerIndex: 0, rating: 4 });
    const high = pref({ source: 'CLINICIAN', kind: 'RATING', candidateId: 'c1', roundIndex: 0, answerIndex: 1, rating: 7.5 });
    expect(buildTrainingPairs([low, high], { clinicianWeight: 300 }).map(describePair)).toEqual([`c1/0/1 > c1/0/0 [CLINICIAN RATING w300 ${high.id},${low.id}]`]);
  });

  it('gives the same pairs whatever the input order, and rejects a bad weight or an author-less record', () => {
    const records = [
      modelRating('c1', 0, 0, 8),
      modelRating('c1', 0, 1, 5),
      pref({ source: 'CLINICIAN', kind: 'PAIRWISE', candidateId: 'c1', roundIndex: 0, choice: 'B' }),
      pref({ source: 'CLINICIAN', kind: 'RATING', candidateId: 'c1', roundIndex: 1, answerIndex: 0, rating: 1 }),
      pref({ source: 'CLINICIAN', kind: 'RATING', candidateId: 'c1', roundIndex: 1, answerIndex: 1, rating: 3 }),
    ];
    const forward = buildTrainingPairs(records, { clinicianWeight: 10 });
    expect(forward).toHaveLength(3);
    expect(buildTrainingPairs([...records].reverse(), { clinicianWeight: 10 })).toEqual(forward);
    expect(() => buildTrainingPairs(records, { clinicianWeight: 0 })).toThrow(/clinicianWeight/);
    expect(() => buildTrainingPairs([{ ...records[2], annotatorId: null }], { clinicianWeight: 10 })).toThrow(/annotatorId/);
  });
});

describe('splitPairsByImage', () => {
  /** Ten images with a clinician choice and model ratings on each, and three images with model ratings only. */
  function corpus(): TrainingPair[] {
    const records: PreferenceRecord[] = [];
    for (let i = 0; i < 10; i++) {
      const imageId = `img${i}`;
      records.push(pref({ source: 'CLINICIAN', kind: 'PAIRWISE', candidateId: `c${i}`, imageId, roundIndex: 0, choice: 'A' }));
      records.push(modelRating(`c${i}`, 1, 0, 9, { imageId }), modelRating(`c${i}`, 1, 1, 3, { imageId }));
    }
    for (let i = 0; i < 3; i++) records.push(modelRating(`m${i}`, 0, 0, 2, { imageId: `model-only${i}` }), modelRating(`m${i}`, 0, 1, 7, { imageId: `model-only${i}` }));
    return buildTrainingPairs(records, { clinicianWeight: 100 });
  }

  it('holds out clinician pairs of the drawn images and keeps those images out of training entirely', () => {
    const pairs = corpus();
    const split = splitPairsByImage(pairs, { validationFraction: 0.3, seed: 4 });
    expect(split.validationImageIds).toHaveLength(3);
    const held = new Set(split.validationImageIds);
    expect(split.validation).toHaveLength(3);
    expect(split.validation.every((pair) => pair.source === 'CLINICIAN' && pair.imageIds.every((image) => held.has(image)))).toBe(true);
    expect(split.training.some((pair) => pair.imageIds.some((image) => held.has(image)))).toBe(false);
    // 7 clinician + 7 model pairs of the kept images, 3 model-only images; the 3 held-out images' model pairs are dropped
    expect(split.training).toHaveLength(17);
    expect(split).toMatchObject({ droppedModelPairs: 3, droppedClinicianPairs: 0 });
    expect([...split.validationImageIds].every((image) => image.startsWith('img'))).toBe(true);
  });

  it('draws the same images for a seed and other images for another seed', () => {
    const pairs = corpus();
    const first = splitPairsByImage(pairs, { validationFraction: 0.3, seed: 4 });
    expect(splitPairsByImage([...pairs].reverse(), { validationFraction: 0.3, seed: 4 }).validationImageIds).toEqual(first.validationImageIds);
    expect(splitPairsByImage(pairs, { validationFraction: 0.3, seed: 5 }).validationImageIds).not.toEqual(first.validationImageIds);
  });

  it('drops a clinician pair that straddles a held-out and a kept image', () => {
    const records = [
      pref({ source: 'CLINICIAN', kind: 'PAIRWISE', candidateId: 'a', imageId: 'imgA', roundIndex: 0, choice: 'A' }),
      pref({ source: 'CLINICIAN', kind: 'PAIRWISE', candidateId: 'b', imageId: 'imgB', roundIndex: 0, choice: 'B' }),
      pref({ source: 'CLINICIAN', kind: 'PAIRWISE', candidateId: 'a', imageId: 'imgA', otherCandidateId: 'b', otherImageId: 'imgB', choice: 'A' }),
    ];
    const split = splitPairsByImage(buildTrainingPairs(records, { clinicianWeight: 10 }), { validationFraction: 0.5, seed: 1 });
    expect(split.validationImageIds).toHaveLength(1);
    expect(split).toMatchObject({ droppedClinicianPairs: 1, droppedModelPairs: 0 });
    expect(split.validation).toHaveLength(1);
    expect(split.training).toHaveLength(1);
  });

  it('holds out nothing at fraction 0, every clinician image at fraction 1, and rejects a fraction outside [0, 1]', () => {
    const pairs = corpus();
    expect(splitPairsByImage(pairs, { validationFraction: 0 })).toMatchObject({ validation: [], validationImageIds: [], training: pairs });
    const all = splitPairsByImage(pairs, { validationFraction: 1 });
    expect(all).toMatchObject({ validationImageIds: Array.from({ length: 10 }, (_, i) => `img${i}`).sort(), droppedModelPairs: 10 });
    expect(all.training.every((pair) => pair.imageIds[0].startsWith('model-only'))).toBe(true);
    expect(() => splitPairsByImage(pairs, { validationFraction: 1.5 })).toThrow(/validationFraction/);
  });

  it('feeds the validation pairs to the alignment metrics, resampled by image', () => {
    const split = splitPairsByImage(corpus(), { validationFraction: 0.5, seed: 2 });
    const alignmentPairs = toAlignmentPairs(split.validation);
    // a selector that always prefers answer A agrees with every clinician choice of A
    const scores = new Map(alignmentPairs.flatMap((pair) => [[pair.preferred, 1] as const, [pair.rejected, 0] as const]));
    const report = evaluateSelectorAlignment(alignmentPairs, scores, { resamples: 50, seed: 1 });
    expect(report).toMatchObject({ nPairs: 5, nUnits: 5, alignmentRate: { value: 1, interval: { low: 1, high: 1 } } });
  });
});
