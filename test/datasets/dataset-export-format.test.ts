import {
  buildPreferencePairs,
  CandidatePreference,
  chatMessages,
  ExportItemRow,
  exportFileName,
  imagePath,
  isExportFormat,
  llavaConversation,
  missingFileSize,
  missingLine,
  MissingReason,
  RoundPreference,
  toJsonlRecord,
  toLlavaSample,
  toTrlRecord,
  toTrlVisionRecord,
  TrlSourceRow,
} from '../../src/modules/datasets/dataset-export.format';
import { assertTrlVisionPreferenceRow, TRL_DOC_VISION_CONTENT } from '../support/trl-formats';
import type { StoredRound } from '../../src/modules/candidates/conversation';

const HASH = 'a'.repeat(64);
/** The API's global id, encoded here rather than with the code under test (`Node.id`: base64url of `<Type>:<id>`). */
const gid = (type: string, id: string) => Buffer.from(`${type}:${id}`, 'utf8').toString('base64url');
const ROUNDS: StoredRound[] = [
  { question: 'What modality?', answers: ['CT.', 'MRI.'] },
  { question: 'Where is the lesion?', answers: ['Left lobe.', 'Right lobe.'] },
  { question: 'How large?', answers: ['4 cm.', '2 cm.'] },
];

const item = (over: Partial<ExportItemRow> = {}): ExportItemRow => ({
  rank: 1,
  score: 0.9,
  candidateId: 'cand-1',
  rounds: ROUNDS,
  status: 'OK',
  form: 'TWO_ANSWERS',
  runId: 'run-1',
  model: 'gpt-4o',
  promptTemplateVersion: 'generation/v1',
  sampleIndex: 0,
  imageId: 'img-1',
  pairId: '123_F1',
  pmid: '123',
  figLabel: 'Figure 1',
  caption: 'Axial CT.',
  mentions: ['See Figure 1.'],
  modalities: ['CT'],
  contentHash: HASH,
  mimeType: 'image/jpeg',
  clusterId: 7,
  ...over,
});

const trlRow = (over: Partial<TrlSourceRow> = {}): TrlSourceRow => ({
  rank: 5,
  candidateId: 'cand-1',
  imageId: 'img-1',
  contentHash: HASH,
  mimeType: 'image/png',
  rounds: ROUNDS,
  roundPrefs: null,
  candidatePrefs: null,
  ...over,
});

type Source = RoundPreference['source'];
type Choice = NonNullable<RoundPreference['choice']>;
const CLIN: Source = 'CLINICIAN';
const MODEL: Source = 'MODEL';
const pairwise = (source: Source, author: string, roundIndex: number, choice: Choice): RoundPreference => ({
  source,
  kind: 'PAIRWISE',
  author,
  roundIndex,
  answerIndex: null,
  choice,
  rating: null,
  accepted: null,
});
const rating = (source: Source, author: string, roundIndex: number, answerIndex: number, value: number): RoundPreference => ({
  source,
  kind: 'RATING',
  author,
  roundIndex,
  answerIndex,
  choice: null,
  rating: value,
  accepted: null,
});
const acceptance = (source: Source, author: string, roundIndex: number, answerIndex: number, accepted: boolean): RoundPreference => ({
  source,
  kind: 'ACCEPTANCE',
  author,
  roundIndex,
  answerIndex,
  choice: null,
  rating: null,
  accepted,
});
const ratings = (source: Source, author: string, roundIndex: number, a: number, b: number) => [rating(source, author, roundIndex, 0, a), rating(source, author, roundIndex, 1, b)];

/** The chosen answer of each round pair, by round. */
const decided = (prefs: RoundPreference[], rounds = ROUNDS) =>
  Object.fromEntries(buildPreferencePairs(trlRow({ rounds, roundPrefs: prefs })).map((p) => [p.round, p.chosen[0].content]));

describe('export names and paths', () => {
  it('file names keep safe characters and the version', () => {
    expect(exportFileName('BioMed VITAL top 80%', 3, 'llava.json')).toBe('BioMed-VITAL-top-80-v3.llava.json');
    expect(exportFileName('Résumé/../x', 1, 'jsonl')).toBe('Resume-..-x-v1.jsonl');
    expect(exportFileName('"quoted"\r\nname', 2, 'trl.jsonl')).toBe('quoted-name-v2.trl.jsonl');
    expect(exportFileName('胸部', 1, 'images.tar')).toBe('dataset-v1.images.tar');
  });

  it('formats are the known ones', () => {
    expect(['llava.json', 'jsonl', 'trl.jsonl', 'images.tar'].every(isExportFormat)).toBe(true);
    expect(['trl-vision.jsonl', 'card.md', 'card.json'].every(isExportFormat)).toBe(true);
    expect(['csv', 'json', 'tar', '', 'LLAVA.JSON'].some(isExportFormat)).toBe(false);
  });

  it('image paths come from the content hash and the mime type; none without bytes', () => {
    expect(imagePath(HASH, 'image/jpeg')).toBe(`images/${HASH}.jpg`);
    expect(imagePath(HASH, 'image/png')).toBe(`images/${HASH}.png`);
    expect(imagePath(HASH, 'image/tiff')).toBe(`images/${HASH}.tif`);
    expect(imagePath(HASH, null)).toBe(`images/${HASH}.bin`);
    expect(imagePath(null, 'image/png')).toBeNull();
  });

  it('MISSING.txt size is known before its lines', () => {
    const id = '0b9f6f3e-8d6c-4d0e-9a57-2b1a4c0e9f11';
    const text = missingLine(id, MissingReason.NOT_IN_STORAGE) + missingLine(id, MissingReason.NO_FILE) + missingLine(id, MissingReason.NO_FILE);
    expect(missingFileSize({ [MissingReason.NOT_IN_STORAGE]: 1, [MissingReason.NO_FILE]: 2 })).toBe(Buffer.byteLength(text));
    expect(missingLine(id, MissingReason.NO_FILE)).toBe(`${id}\tno-file\n`);
  });
});

describe('LLaVA and JSONL records', () => {
  it('LLaVA: first answers, <image> before the first question only', () => {
    expect(toLlavaSample(item())).toEqual({
      id: gid('Candidate', 'cand-1'),
      image: `images/${HASH}.jpg`,
      conversations: [
        { from: 'human', value: '<image>\nWhat modality?' },
        { from: 'gpt', value: 'CT.' },
        { from: 'human', value: 'Where is the lesion?' },
        { from: 'gpt', value: 'Left lobe.' },
        { from: 'human', value: 'How large?' },
        { from: 'gpt', value: '4 cm.' },
      ],
    });
    expect(llavaConversation([])).toEqual([]);
    expect(toLlavaSample(item({ contentHash: null })).image).toBeNull();
  });

  it('JSONL: the LLaVA fields, then what a data scientist filters on', () => {
    const record = toJsonlRecord(item());
    expect(record).toEqual({
      ...toLlavaSample(item()),
      candidate_uuid: 'cand-1',
      rank: 1,
      score: 0.9,
      image_id: gid('Image', 'img-1'),
      image_uuid: 'img-1',
      pair_id: '123_F1',
      pmid: '123',
      fig_label: 'Figure 1',
      modalities: ['CT'],
      caption: 'Axial CT.',
      mentions: ['See Figure 1.'],
      cluster_id: 7,
      alternative_answers: ['MRI.', 'Right lobe.', '2 cm.'],
      form: 'TWO_ANSWERS',
      status: 'OK',
      generation_run_id: gid('Run', 'run-1'),
      model: 'gpt-4o',
      prompt_template_version: 'generation/v1',
      sample_index: 0,
    });
    expect(Object.keys(record).slice(0, 3)).toEqual(['id', 'image', 'conversations']);
    const single = toJsonlRecord(item({ form: 'SINGLE_ANSWER', rounds: [{ question: 'Q?', answers: ['A.'] }] }));
    expect(single.alternative_answers).toEqual([null]);
  });
});

describe('TRL preference pairs', () => {
  it('a pairwise choice on a round: prompt is the conversation so far and the question', () => {
    const [pair, ...rest] = buildPreferencePairs(trlRow({ roundPrefs: [pairwise(CLIN, 'u1', 2, 'B')] }));
    expect(rest).toEqual([]);
    expect(pair).toEqual({
      prompt: [
        { role: 'user', content: '<image>\nWhat modality?' },
        { role: 'assistant', content: 'CT.' },
        { role: 'user', content: 'Where is the lesion?' },
        { role: 'assistant', content: 'Left lobe.' },
        { role: 'user', content: 'How large?' },
      ],
      chosen: [{ role: 'assistant', content: '2 cm.' }],
      rejected: [{ role: 'assistant', content: '4 cm.' }],
      id: 'cand-1:round:2',
      candidate_id: 'cand-1',
      other_candidate_id: null,
      round: 2,
      rank: 5,
      image: `images/${HASH}.png`,
      source: 'CLINICIAN',
      kinds: ['PAIRWISE'],
      votes: { chosen: 1, rejected: 0 },
    });
  });

  it('pairwise A/B decide, a tie gives nothing', () => {
    expect(decided([pairwise(CLIN, 'u1', 0, 'A'), pairwise(MODEL, 'm', 1, 'B'), pairwise(CLIN, 'u1', 2, 'TIE')])).toEqual({
      0: 'CT.',
      1: 'Right lobe.',
    });
  });

  it('acceptance: an accepted and a rejected answer make a pair; one answer alone or both alike do not', () => {
    expect(
      decided([
        acceptance(CLIN, 'u1', 0, 0, false),
        acceptance(CLIN, 'u1', 0, 1, true),
        acceptance(CLIN, 'u1', 1, 0, true),
        acceptance(CLIN, 'u1', 2, 0, true),
        acceptance(CLIN, 'u1', 2, 1, true),
      ]),
    ).toEqual({ 0: 'MRI.' });
  });

  it('an accepted and a rejected answer by two different clinicians compare nothing', () => {
    expect(decided([acceptance(CLIN, 'u1', 0, 0, true), acceptance(CLIN, 'u2', 0, 1, false)])).toEqual({});
  });

  it('ratings: the higher answer is chosen, equal ratings give nothing', () => {
    expect(decided([...ratings(MODEL, 'm', 0, 3, 8), ...ratings(CLIN, 'u1', 1, 9, 2), ...ratings(MODEL, 'm', 2, 5, 5)])).toEqual({ 0: 'MRI.', 1: 'Left lobe.' });
  });

  it('clinicians take precedence over models, whichever way the model leans', () => {
    const agree = buildPreferencePairs(trlRow({ roundPrefs: [pairwise(CLIN, 'u1', 0, 'A'), ...ratings(MODEL, 'm', 0, 9, 1)] }));
    expect(agree).toHaveLength(1);
    expect(agree[0]).toMatchObject({ source: 'CLINICIAN', kinds: ['PAIRWISE'], votes: { chosen: 1, rejected: 0 }, chosen: [{ content: 'CT.' }] });
    const disagree = buildPreferencePairs(trlRow({ roundPrefs: [...ratings(MODEL, 'm', 0, 1, 9), acceptance(CLIN, 'u1', 0, 0, true), acceptance(CLIN, 'u1', 0, 1, false)] }));
    expect(disagree).toHaveLength(1);
    expect(disagree[0]).toMatchObject({ source: 'CLINICIAN', kinds: ['ACCEPTANCE'], chosen: [{ content: 'CT.' }] });
  });

  it("a clinician's tie is a judgement: the model does not break it", () => {
    expect(decided([pairwise(CLIN, 'u1', 0, 'TIE'), ...ratings(MODEL, 'm', 0, 9, 1)])).toEqual({});
    expect(decided([...ratings(CLIN, 'u1', 0, 6, 6), ...ratings(MODEL, 'm', 0, 9, 1)])).toEqual({});
  });

  it('a clinician who judged one answer only leaves the decision to the model', () => {
    const pairs = buildPreferencePairs(trlRow({ roundPrefs: [acceptance(CLIN, 'u1', 0, 0, true), ...ratings(MODEL, 'm', 0, 2, 7)] }));
    expect(pairs.map((p) => [p.round, p.source, p.chosen[0].content])).toEqual([[0, 'MODEL', 'MRI.']]);
  });

  it('several authors vote; the majority decides, a split gives nothing', () => {
    const majority = buildPreferencePairs(trlRow({ roundPrefs: [...ratings(MODEL, 'm1', 0, 8, 5), ...ratings(MODEL, 'm2', 0, 4, 6), ...ratings(MODEL, 'm3', 0, 9, 2)] }));
    expect(majority).toHaveLength(1);
    expect(majority[0]).toMatchObject({ chosen: [{ content: 'CT.' }], votes: { chosen: 2, rejected: 1 }, kinds: ['RATING'] });
    expect(decided([pairwise(CLIN, 'u1', 0, 'A'), pairwise(CLIN, 'u2', 0, 'B')])).toEqual({});
  });

  it("an author's latest judgement of a kind counts, once", () => {
    expect(decided([pairwise(CLIN, 'u1', 0, 'A'), pairwise(CLIN, 'u1', 0, 'B')])).toEqual({ 0: 'MRI.' });
    const repeated = buildPreferencePairs(trlRow({ roundPrefs: [pairwise(CLIN, 'u1', 0, 'A'), pairwise(CLIN, 'u1', 0, 'A')] }));
    expect(repeated[0].votes).toEqual({ chosen: 1, rejected: 0 });
    // Re-rated answer B (model run twice): the latest rating stands.
    expect(decided([...ratings(MODEL, 'm', 0, 6, 8), rating(MODEL, 'm', 0, 1, 4)])).toEqual({ 0: 'CT.' });
  });

  it('kinds that agree are all reported', () => {
    const [pair] = buildPreferencePairs(trlRow({ roundPrefs: [...ratings(CLIN, 'u1', 0, 9, 4), pairwise(CLIN, 'u1', 0, 'A')] }));
    expect(pair).toMatchObject({ kinds: ['PAIRWISE', 'RATING'], votes: { chosen: 2, rejected: 0 } });
  });

  it('one-answer rounds, identical answers and rounds out of range give nothing', () => {
    const rounds: StoredRound[] = [
      { question: 'Q0?', answers: ['Only.'] },
      { question: 'Q1?', answers: ['Same.', 'Same.'] },
    ];
    expect(decided([rating(MODEL, 'm', 0, 0, 9), ...ratings(MODEL, 'm', 1, 9, 1), pairwise(CLIN, 'u1', 5, 'A')], rounds)).toEqual({});
  });

  it('round pairs come in round order', () => {
    const pairs = buildPreferencePairs(trlRow({ roundPrefs: [pairwise(CLIN, 'u1', 2, 'A'), pairwise(CLIN, 'u1', 0, 'A')] }));
    expect(pairs.map((p) => p.round)).toEqual([0, 2]);
  });

  describe('between two candidates', () => {
    const otherRounds: StoredRound[] = [
      { question: 'What modality?', answers: ['Computed tomography.', 'x'] },
      { question: 'Any mass?', answers: ['Yes.', 'y'] },
    ];
    const vs = (over: Partial<CandidatePreference> = {}): CandidatePreference => ({
      source: CLIN,
      author: 'u1',
      winner: 'other',
      otherCandidateId: 'cand-2',
      otherImageId: 'img-1',
      otherRounds,
      otherRank: null,
      ...over,
    });

    it('whole conversations, the shared opening question as the prompt', () => {
      const pairs = buildPreferencePairs(trlRow({ candidatePrefs: [vs()] }));
      expect(pairs).toEqual([
        {
          prompt: [{ role: 'user', content: '<image>\nWhat modality?' }],
          chosen: chatMessages(otherRounds).slice(1),
          rejected: chatMessages(ROUNDS).slice(1),
          id: 'cand-1:vs:cand-2',
          candidate_id: 'cand-1',
          other_candidate_id: 'cand-2',
          round: null,
          rank: 5,
          image: `images/${HASH}.png`,
          source: 'CLINICIAN',
          kinds: ['PAIRWISE'],
          votes: { chosen: 1, rejected: 0 },
        },
      ]);
    });

    it('the prompt ends on a user message; nothing shared gives an empty prompt', () => {
      const sameFirstRound = [ROUNDS[0], { question: 'Other?', answers: ['Other.'] }];
      const [shared] = buildPreferencePairs(trlRow({ candidatePrefs: [vs({ winner: 'self', otherRounds: sameFirstRound })] }));
      expect(shared.prompt).toEqual(chatMessages(ROUNDS).slice(0, 1));
      expect(shared.chosen).toEqual(chatMessages(ROUNDS).slice(1));
      expect(shared.rejected).toEqual(chatMessages(sameFirstRound).slice(1));
      const [nothing] = buildPreferencePairs(trlRow({ candidatePrefs: [vs({ otherRounds: [{ question: 'Else?', answers: ['E.'] }] })] }));
      expect(nothing.prompt).toEqual([]);
      expect(nothing.chosen).toEqual([
        { role: 'user', content: '<image>\nElse?' },
        { role: 'assistant', content: 'E.' },
      ]);
    });

    it('written once: with the better-ranked candidate when both are in the dataset', () => {
      expect(buildPreferencePairs(trlRow({ rank: 5, candidatePrefs: [vs({ otherRank: 3 })] }))).toEqual([]);
      expect(buildPreferencePairs(trlRow({ rank: 5, candidatePrefs: [vs({ otherRank: 9 })] }))).toHaveLength(1);
    });

    it('ties, splits, self-comparisons, identical conversations and other images give nothing', () => {
      expect(buildPreferencePairs(trlRow({ candidatePrefs: [vs({ winner: 'tie' })] }))).toEqual([]);
      expect(buildPreferencePairs(trlRow({ candidatePrefs: [vs({ winner: 'self' }), vs({ author: 'u2', winner: 'other' })] }))).toEqual([]);
      expect(buildPreferencePairs(trlRow({ candidatePrefs: [vs({ otherCandidateId: 'cand-1' })] }))).toEqual([]);
      expect(buildPreferencePairs(trlRow({ candidatePrefs: [vs({ otherRounds: ROUNDS })] }))).toEqual([]);
      expect(buildPreferencePairs(trlRow({ candidatePrefs: [vs({ otherImageId: 'img-2' })] }))).toEqual([]);
    });

    it('clinicians over models; the latest choice of an author counts', () => {
      const [pair] = buildPreferencePairs(trlRow({ candidatePrefs: [vs({ source: MODEL, author: 'm', winner: 'self' }), vs({ winner: 'other' })] }));
      expect(pair).toMatchObject({ source: 'CLINICIAN', chosen: chatMessages(otherRounds).slice(1) });
      const [changed] = buildPreferencePairs(trlRow({ candidatePrefs: [vs({ winner: 'other' }), vs({ winner: 'self' })] }));
      expect(changed).toMatchObject({ chosen: chatMessages(ROUNDS).slice(1), votes: { chosen: 1, rejected: 0 } });
    });

    it('after the round pairs, one per other candidate', () => {
      const pairs = buildPreferencePairs(
        trlRow({ roundPrefs: [pairwise(CLIN, 'u1', 1, 'A')], candidatePrefs: [vs({ otherCandidateId: 'cand-3' }), vs(), vs({ author: 'u2' })] }),
      );
      expect(pairs.map((p) => p.id)).toEqual(['cand-1:round:1', 'cand-1:vs:cand-2', 'cand-1:vs:cand-3']);
      expect(pairs[1].votes).toEqual({ chosen: 2, rejected: 0 });
    });
  });
});

describe('TRL records: global ids, and the vision format', () => {
  const roundPair = () => buildPreferencePairs(trlRow({ roundPrefs: [pairwise(CLIN, 'u1', 1, 'B')] }))[0];
  const otherRounds: StoredRound[] = [{ question: 'Anything else?', answers: ['No.', 'n'] }];
  const vsPair = (prompted: boolean) =>
    buildPreferencePairs(
      trlRow({
        candidatePrefs: [
          {
            source: CLIN,
            author: 'u1',
            winner: 'other',
            otherCandidateId: 'cand-2',
            otherImageId: 'img-1',
            otherRounds: prompted ? [{ question: ROUNDS[0].question, answers: ['Ultrasound.', 'x'] }] : otherRounds,
            otherRank: null,
          },
        ],
      }),
    )[0];

  it('trl.jsonl: candidate ids are global ids, the raw ones beside them', () => {
    const record = toTrlRecord(roundPair());
    const c1 = gid('Candidate', 'cand-1');
    expect(record).toMatchObject({ id: `${c1}:round:1`, candidate_id: c1, candidate_uuid: 'cand-1', other_candidate_id: null, other_candidate_uuid: null, round: 1 });
    const vs = toTrlRecord(vsPair(true));
    expect(vs).toMatchObject({ id: `${c1}:vs:${gid('Candidate', 'cand-2')}`, other_candidate_id: gid('Candidate', 'cand-2'), other_candidate_uuid: 'cand-2' });
    // Everything but the ids is the pair as built.
    const { id: _a, candidate_id: _b, other_candidate_id: _c, ...same } = roundPair();
    expect(record).toMatchObject(same);
  });

  it("the reference itself passes the shape check, and what TRL's doc rules out fails it", () => {
    const doc = { images: ['sky.png'], prompt: [{ role: 'user', content: TRL_DOC_VISION_CONTENT }], chosen: [{ role: 'assistant', content: [{ type: 'text', text: 'It is blue.' }] }], rejected: [{ role: 'assistant', content: [{ type: 'text', text: 'It is green.' }] }] };
    expect(() => assertTrlVisionPreferenceRow(doc)).not.toThrow();
    expect(() => assertTrlVisionPreferenceRow({ ...doc, images: undefined })).toThrow(/images/);
    expect(() => assertTrlVisionPreferenceRow({ ...doc, image: 'sky.png', images: undefined })).toThrow(/images/);
    expect(() => assertTrlVisionPreferenceRow({ ...doc, prompt: [{ role: 'user', content: '<image>\nWhat color is the sky?' }] })).toThrow(/typed parts/);
    expect(() => assertTrlVisionPreferenceRow({ ...doc, prompt: [{ role: 'user', content: [{ type: 'text', text: 'What color?' }] }] })).toThrow(/image part/);
  });

  it('trl-vision.jsonl: an images column and typed parts, one image part where <image> was, same texts', () => {
    const pair = roundPair();
    const vision = toTrlVisionRecord(pair);
    assertTrlVisionPreferenceRow(vision);
    expect(vision.images).toEqual([`images/${HASH}.png`]);
    expect(vision.prompt[0]).toEqual({ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What modality?' }] });
    expect(vision.prompt.slice(1)).toEqual(pair.prompt.slice(1).map((m) => ({ role: m.role, content: [{ type: 'text', text: m.content }] })));
    expect(vision.chosen).toEqual([{ role: 'assistant', content: [{ type: 'text', text: 'Right lobe.' }] }]);
    expect(vision.rejected).toEqual([{ role: 'assistant', content: [{ type: 'text', text: 'Left lobe.' }] }]);
    const { prompt: _p, chosen: _c, rejected: _r, image, ...rest } = toTrlRecord(pair);
    expect(image).toBe(vision.images[0]);
    expect(vision).toMatchObject(rest);
    expect(Object.keys(vision)).not.toContain('image');
  });

  it('an implicit prompt puts the image part in both chosen and rejected; a shared opening keeps it in the prompt', () => {
    const implicit = toTrlVisionRecord(vsPair(false));
    assertTrlVisionPreferenceRow(implicit);
    expect(implicit.prompt).toEqual([]);
    expect(implicit.chosen[0].content).toEqual([{ type: 'image' }, { type: 'text', text: 'Anything else?' }]);
    expect(implicit.rejected[0].content).toEqual([{ type: 'image' }, { type: 'text', text: 'What modality?' }]);
    const shared = toTrlVisionRecord(vsPair(true));
    assertTrlVisionPreferenceRow(shared);
    expect(shared.prompt).toEqual([{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What modality?' }] }]);
  });

  it('a figure without bytes: no images and no image part, still the documented shape', () => {
    const vision = toTrlVisionRecord(buildPreferencePairs(trlRow({ contentHash: null, roundPrefs: [pairwise(CLIN, 'u1', 0, 'A')] }))[0]);
    assertTrlVisionPreferenceRow(vision);
    expect(vision.images).toEqual([]);
    expect(vision.prompt).toEqual([{ role: 'user', content: [{ type: 'text', text: 'What modality?' }] }]);
  });
});
