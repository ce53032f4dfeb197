import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';
import { PlainRows } from '../../src/platform/plain-rows';
import { Image } from '../../src/modules/images/image.entity';
import { ImageSource, Modality } from '../../src/modules/images/modality';
import { Candidate, CandidateForm, CandidateStatus } from '../../src/modules/candidates/candidate.entity';
import { SelectorModel } from '../../src/modules/selectors/selector-model.entity';
import { Score } from '../../src/modules/scoring/score.entity';
import { PairwiseChoice, Preference, PreferenceKind, PreferenceSource } from '../../src/modules/preferences/preference.entity';
import { DeepPartial, ObjectLiteral } from 'typeorm';

/**
 * The hot read paths hydrate rows with PlainRows instead of TypeORM's getMany() (issue 14). Both
 * must give the same entities, value for value and class for class, for every entity that uses it,
 * including the columns pg returns in a form the entity does not hold (enum arrays, numeric with a
 * transformer) and nulls.
 */
describe('PlainRows reads entities as getMany() does', () => {
  let app: TestApp;
  let lab: TestProject;

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'plain-rows-lab');
    const { ds } = app;
    const [selector] = await ds.getRepository(SelectorModel).save(<DeepPartial<SelectorModel>[]>[
      { projectId: lab.id, name: 'sel', version: 1, filesHash: 'c'.repeat(64), manifest: { kind: 'reward', nested: { a: [1, 2] } }, metrics: null, active: true, description: 'a "quoted" one' },
    ]);
    const images = await ds.getRepository(Image).save(<DeepPartial<Image>[]>[
      { projectId: lab.id, source: ImageSource.IMPORT, pairId: 'p_1', pmid: '1', caption: 'with, commas and "quotes"', mentions: ['one', 'two, with comma', 'three "q"'], modalities: [Modality.CT, Modality.CHEST_XRAY], contentHash: 'd'.repeat(64), mimeType: 'image/png', width: 10, height: 20, byteSize: 300, clusterId: 4 },
      { projectId: lab.id, source: ImageSource.UPLOAD, caption: '', mentions: [], modalities: [] },
    ]);
    const candidates = await ds.getRepository(Candidate).save(<DeepPartial<Candidate>[]>[
      { projectId: lab.id, imageId: images[0].id, status: CandidateStatus.OK, form: CandidateForm.TWO_ANSWERS, rounds: [{ question: 'Q?', answers: ['A.', 'B.'] }], costUsd: 0.012345, promptTokens: 10, completionTokens: 20, latencyMs: 33, model: 'gpt', demonstrationIds: [selector.id] },
      { projectId: lab.id, imageId: images[1].id, status: CandidateStatus.PARSE_FAILED, rawOutput: 'no rounds', failureReason: 'too few rounds' },
    ]);
    await ds.getRepository(Score).save([{ projectId: lab.id, candidateId: candidates[0].id, selectorModelId: selector.id, value: 0.125 }]);
    await ds.getRepository(Preference).save([
      { projectId: lab.id, candidateId: candidates[0].id, source: PreferenceSource.CLINICIAN, kind: PreferenceKind.PAIRWISE, annotatorId: lab.userIds.CLINICIAN, otherCandidateId: candidates[1].id, choice: PairwiseChoice.A, rubricVersion: 'v1' },
      { projectId: lab.id, candidateId: candidates[1].id, source: PreferenceSource.MODEL, kind: PreferenceKind.RATING, judgeModel: 'judge', rating: 7, rubricVersion: 'v1' },
    ]);
  });

  afterAll(async () => {
    await app?.stop();
  });

  async function compare<T extends ObjectLiteral>(entity: new () => T, rows: number): Promise<void> {
    const qb = () => app.ds.getRepository(entity).createQueryBuilder('x').where('x.projectId = :p', { p: lab.id }).orderBy('x.createdAt').addOrderBy('x.id');
    const expected = await qb().getMany();
    const actual = await PlainRows.of(app.ds, entity).getMany(qb());
    expect(expected).toHaveLength(rows);
    expect(actual).toHaveLength(rows);
    actual.forEach((row, i) => {
      expect(Object.getPrototypeOf(row)).toBe(entity.prototype);
      expect({ ...row }).toStrictEqual({ ...expected[i] });
    });
  }

  it('images: enum arrays, text arrays, nulls', () => compare(Image, 2));
  it('candidates: enums, jsonb, uuid arrays, numeric with transformer', () => compare(Candidate, 2));
  it('scores', () => compare(Score, 1));
  it('preferences: nullable enums and ids', () => compare(Preference, 2));
  it('selector models: jsonb', () => compare(SelectorModel, 1));

  it('keeps extra selected expressions in the raw rows', async () => {
    const qb = app.ds.getRepository(Candidate).createQueryBuilder('c').addSelect('c.cost_usd * 2', 'double_cost').where('c.projectId = :p AND c.status = :s', { p: lab.id, s: 'OK' });
    const { raw, entities } = await PlainRows.of(app.ds, Candidate).getRawAndEntities(qb);
    expect(entities).toHaveLength(1);
    expect(entities[0].costUsd).toBe(0.012345);
    expect(entities[0].qaRounds[0]).toMatchObject({ question: 'Q?', answer: 'A.', alternativeAnswer: 'B.' });
    expect(Number(raw[0].double_cost)).toBeCloseTo(0.02469, 6);
  });

  it('refuses a query with a joined select, which it cannot split', async () => {
    const qb = app.ds.getRepository(Candidate).createQueryBuilder('c').innerJoinAndSelect('c.image', 'image').where('c.projectId = :p', { p: lab.id });
    await expect(PlainRows.of(app.ds, Candidate).getMany(qb)).rejects.toThrow(/one alias/);
  });
});
