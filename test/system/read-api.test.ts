import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';
import { gql, errorCodes } from '../support/graphql-client';
import { Role } from '../../src/modules/projects/role';
import { Image } from '../../src/modules/images/image.entity';
import { ImageSource, Modality } from '../../src/modules/images/modality';
import { Candidate, CandidateForm, CandidateStatus } from '../../src/modules/candidates/candidate.entity';
import { SelectorModel } from '../../src/modules/selectors/selector-model.entity';
import { Score } from '../../src/modules/scoring/score.entity';
import { PairwiseChoice, Preference, PreferenceKind, PreferenceSource } from '../../src/modules/preferences/preference.entity';
import { Run, RunKind, RunStatus } from '../../src/modules/runs/run.entity';
import { Demonstration } from '../../src/modules/demonstrations/demonstration.entity';

/** Relay global id, built here on purpose rather than with the code under test. */
const gid = (type: string, id: string) => Buffer.from(`${type}:${id}`).toString('base64url');
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64url');

const BASE_TIME = Date.parse('2024-01-01T00:00:00.000Z');
const DIRECT_IMAGES = 20;
const MODALITY_CYCLE: Modality[][] = [[Modality.CT], [Modality.MRI], [Modality.CT, Modality.MRI], [Modality.HISTOLOGY], [Modality.CHEST_XRAY], [Modality.OTHER]];
const CAPTIONS = [
  (i: number) => `Axial MRI showing a disc herniation, case ${i}`,
  (i: number) => `Multiple herniations of the lumbar spine, case ${i}`,
  (i: number) => `Chest radiograph with pneumothorax, case ${i}`,
  (i: number) => `Liver biopsy showing steatosis, case ${i}`,
  (i: number) => `Kidney CT with calculi, case ${i}`,
];
const STATUS_CYCLE = [CandidateStatus.OK, CandidateStatus.OK, CandidateStatus.PARSE_FAILED, CandidateStatus.REFUSED, CandidateStatus.FAILED, CandidateStatus.OK];
/** Score of candidate k under the main selector; k = 10, 11 are unscored there. 0.5 appears twice on purpose. */
const MAIN_SCORES = [0.9, 0.1, 0.5, 0.7, 0.5, 0.3, 0.8, 0.2, 0.6, 0.4];

/** Newest first, ties broken by id: the order every created_at connection promises. */
const byNewest = <T extends { createdAt: Date; id: string }>(a: T, b: T) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
const sortedIds = (ids: string[]) => [...ids].sort();

const IMPORT_RECORDS = [
  {
    id: 'd1',
    pair_id: 'demo_1',
    pmid: '5001',
    fig_caption: 'CT of the abdomen showing a hypodense lesion',
    domain: { ct_scan: true },
    conversations: [
      { from: 'human', value: '<image>\nWhat modality is this?' },
      { from: 'gpt', value: 'A CT scan.' },
    ],
  },
  {
    id: 'd2',
    pair_id: 'demo_2',
    pmid: '5002',
    fig_caption: 'Sagittal MRI with disc herniations at L4-L5',
    domain: { mri: true },
    conversations: [
      { from: 'human', value: '<image>\nWhat is seen at L4-L5?' },
      { from: 'gpt', value: 'Disc herniations.' },
    ],
  },
  {
    id: 'd3',
    pair_id: 'demo_3',
    pmid: '5003',
    fig_caption: 'Histology section next to the CT of the same lesion',
    domain: { histology: true, ct_scan: true },
    conversations: [
      { from: 'human', value: '<image>\nWhich stain is used?' },
      { from: 'gpt', value: 'H&E.' },
    ],
  },
  {
    id: 'd4',
    pair_id: 'demo_4',
    pmid: '5004',
    fig_caption: 'Frontal chest radiograph',
    domain: { chest_xray: true },
    conversations: [
      { from: 'human', value: '<image>\nIs there a pneumothorax?' },
      { from: 'gpt', value: 'No.' },
    ],
  },
  { id: 'r5', pair_id: 'record_5', pmid: '5005', fig_caption: 'Gross specimen of a resected kidney', domain: { gross: true } },
];

describe('read api: pagination, filters, sorting and annotation mutations', () => {
  let app: TestApp;
  let lab: TestProject;
  let other: TestProject;
  let images: Image[]; // every image of lab, newest first
  let direct: Image[]; // the directly inserted ones, by index
  let candidates: Candidate[]; // by index k
  let mainSel: SelectorModel;
  let otherSel: SelectorModel;
  let runs: Record<string, Run>;
  let prefs: Record<string, Preference>;

  const q = (role: Role, query: string, variables: Record<string, unknown> = {}, project: TestProject = lab) => gql(app.graphqlUrl, project.keys[role], query, variables);
  const read = (query: string, variables: Record<string, unknown> = {}) => q(Role.VIEWER, query, variables);
  const cand = (k: number) => gid('Candidate', candidates[k].id);

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'read-lab');
    other = await createTestProject(app, 'read-other');
    const { ds } = app;

    const imported = await app.services.recordsImport.import(lab.ctx(Role.CURATOR), IMPORT_RECORDS, [], { createDemonstrations: true });
    expect(imported).toMatchObject({ recordErrors: [], imagesCreated: 5, demonstrationsCreated: 4 });

    const imageRepo = ds.getRepository(Image);
    direct = await imageRepo.save(
      Array.from({ length: DIRECT_IMAGES }, (_, i) =>
        imageRepo.create({
          projectId: lab.id,
          source: ImageSource.IMPORT,
          pairId: `direct_${i}`,
          caption: CAPTIONS[i % CAPTIONS.length](i),
          modalities: MODALITY_CYCLE[i % MODALITY_CYCLE.length],
          clusterId: i % 4 === 3 ? null : i % 3,
          contentHash: i % 4 === 0 ? (i + 1).toString(16).padStart(64, 'c') : null,
          // Pairs of images share a timestamp, so that the id tie-breaker is exercised.
          createdAt: new Date(BASE_TIME + Math.floor(i / 2) * 1000),
        }),
      ),
    );
    images = (await imageRepo.findBy({ projectId: lab.id })).sort(byNewest);
    expect(images).toHaveLength(DIRECT_IMAGES + 5);

    const runRepo = ds.getRepository(Run);
    const runSpecs: [string, RunKind, RunStatus][] = [
      ['genDone', RunKind.GENERATION, RunStatus.SUCCEEDED],
      ['genRunning', RunKind.GENERATION, RunStatus.RUNNING],
      ['scoring', RunKind.SCORING, RunStatus.SUCCEEDED],
      ['rating', RunKind.RATING, RunStatus.FAILED],
      ['export', RunKind.EXPORT, RunStatus.QUEUED],
    ];
    const savedRuns = await runRepo.save(runSpecs.map(([, kind, status], i) => runRepo.create({ projectId: lab.id, kind, status, params: { i }, createdAt: new Date(BASE_TIME + i * 1000) })));
    runs = Object.fromEntries(runSpecs.map(([name], i) => [name, savedRuns[i]]));

    // 12 candidates on direct images 0..5, two samples each.
    const candidateRepo = ds.getRepository(Candidate);
    candidates = await candidateRepo.save(
      Array.from({ length: 12 }, (_, k) => {
        const twoAnswers = k % 3 === 0;
        return candidateRepo.create({
          projectId: lab.id,
          imageId: direct[Math.floor(k / 2)].id,
          runId: k < 8 ? runs.genDone.id : k < 10 ? runs.genRunning.id : null,
          sampleIndex: k % 2,
          status: STATUS_CYCLE[k % STATUS_CYCLE.length],
          form: twoAnswers ? CandidateForm.TWO_ANSWERS : CandidateForm.SINGLE_ANSWER,
          rounds: [0, 1].map((r) => ({ question: `Question ${r} of candidate ${k}?`, answers: twoAnswers ? [`Answer A${r}`, `Answer B${r}`] : [`Answer ${r}`] })),
          createdAt: new Date(BASE_TIME + 100_000 + k * 1000),
        });
      }),
    );

    const selectorRepo = ds.getRepository(SelectorModel);
    [mainSel, otherSel] = await selectorRepo.save([
      selectorRepo.create({ projectId: lab.id, name: 'vital', version: 1, filesHash: 'a'.repeat(64), manifest: {}, active: true }),
      selectorRepo.create({ projectId: lab.id, name: 'baseline', version: 1, filesHash: 'b'.repeat(64), manifest: {}, active: false }),
    ]);
    const scoreRepo = ds.getRepository(Score);
    await scoreRepo.save([
      ...MAIN_SCORES.map((value, k) => scoreRepo.create({ projectId: lab.id, candidateId: candidates[k].id, selectorModelId: mainSel.id, value })),
      // The other selector scores candidates the main one does not, with values inside any range tested.
      ...[0, 10, 11].map((k) => scoreRepo.create({ projectId: lab.id, candidateId: candidates[k].id, selectorModelId: otherSel.id, value: 0.55 })),
    ]);

    const prefRepo = ds.getRepository(Preference);
    const prefSpecs: [string, Partial<Preference>][] = [
      ['p1', { candidateId: candidates[0].id, source: PreferenceSource.CLINICIAN, kind: PreferenceKind.PAIRWISE, annotatorId: lab.userIds.CLINICIAN, roundIndex: 0, choice: PairwiseChoice.A }],
      ['p2', { candidateId: candidates[0].id, source: PreferenceSource.MODEL, kind: PreferenceKind.RATING, judgeModel: 'judge-1', rating: 7, rubricVersion: 'v1' }],
      ['p3', { candidateId: candidates[1].id, source: PreferenceSource.MODEL, kind: PreferenceKind.ACCEPTANCE, judgeModel: 'judge-1', roundIndex: 0, answerIndex: 0, accepted: true }],
      ['p4', { candidateId: candidates[3].id, source: PreferenceSource.CLINICIAN, kind: PreferenceKind.RATING, annotatorId: lab.userIds.OWNER, rating: 4, rubricVersion: 'v1' }],
      ['p5', { candidateId: candidates[6].id, source: PreferenceSource.CLINICIAN, kind: PreferenceKind.ACCEPTANCE, annotatorId: lab.userIds.CLINICIAN, roundIndex: 1, answerIndex: 1, accepted: false }],
    ];
    const savedPrefs = await prefRepo.save(prefSpecs.map(([, p], i) => prefRepo.create({ projectId: lab.id, ...p, createdAt: new Date(BASE_TIME + 200_000 + i * 1000) })));
    prefs = Object.fromEntries(prefSpecs.map(([name], i) => [name, savedPrefs[i]]));

    // The other project: rows that must never show up in lab's answers.
    await imageRepo.save(Array.from({ length: 10 }, (_, i) => imageRepo.create({ projectId: other.id, source: ImageSource.UPLOAD, caption: `disc herniation elsewhere ${i}`, modalities: [Modality.CT], clusterId: 1, createdAt: new Date(BASE_TIME + i * 1000) })));
  });
  afterAll(() => app?.stop());

  describe('page arguments', () => {
    it('requires first', async () => {
      for (const query of ['{ images { totalCount } }', '{ candidates { totalCount } }', '{ preferences { totalCount } }']) {
        const res = await read(query);
        expect(errorCodes(res)).toEqual(['GRAPHQL_VALIDATION_FAILED']);
        expect(res.errors![0].message).toMatch(/first/);
      }
    });

    it.each([
      ['images', 0],
      ['images', 101],
      ['candidates', 0],
      ['candidates', 101],
      ['preferences', 101],
      ['demonstrations', 0],
      ['runs', 101],
    ])('rejects %s(first: %d) with BAD_USER_INPUT', async (field, first) => {
      const res = await read(`query($first: Int!) { ${field}(first: $first) { totalCount } }`, { first });
      expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
      expect(res.errors![0].extensions!.fields.map((f: any) => f.field)).toEqual(['first']);
    });

    it('accepts first: 1 and first: 100', async () => {
      for (const first of [1, 100]) {
        const res = await read(`query($first: Int!) { images(first: $first) { edges { cursor } } }`, { first });
        expect(res.errors).toBeUndefined();
        expect(res.data!.images.edges).toHaveLength(Math.min(first, images.length));
      }
    });

    it('rejects first out of range on a nested connection too', async () => {
      const res = await read(`{ candidates(first: 1) { edges { node { scores(first: 101) { totalCount } } } } }`);
      expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
    });

    it.each([
      ['not base64 JSON', 'not-a-cursor'],
      ['JSON of another shape', b64('{"a":1}')],
      ['a timestamp that is not one', b64('[{"t":"yesterday"},"3f2b8c1e-0000-4000-8000-000000000000"]')],
      ['an id that is not a uuid', b64(`[{"t":"2024-01-01T00:00:00.000Z"},"not-a-uuid"]`)],
      ['a score cursor on a time-sorted list', b64('[{"n":0.5},"3f2b8c1e-0000-4000-8000-000000000000"]')],
    ])('rejects an after cursor that is %s with BAD_USER_INPUT', async (_label, after) => {
      const res = await read(`query($after: String) { images(first: 5, after: $after) { edges { cursor } } }`, { after });
      expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
      expect(res.errors![0].extensions!.field).toBe('after');
    });

    it('rejects a time cursor on a score-sorted list with BAD_USER_INPUT', async () => {
      const timeCursor = b64(`[{"t":"2024-01-01T00:00:00.000Z"},"3f2b8c1e-0000-4000-8000-000000000000"]`);
      const res = await read(`query($after: String, $sel: ID!) { candidates(first: 3, after: $after, orderBy: { field: SCORE, selectorModelId: $sel }) { edges { cursor } } }`, {
        after: timeCursor,
        sel: gid('SelectorModel', mainSel.id),
      });
      expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
    });

    it('rejects a malformed cursor on a nested connection', async () => {
      const res = await read(`{ images(first: 1) { edges { node { candidates(first: 2, after: "garbage") { totalCount } } } } }`);
      expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
    });
  });

  describe('keyset pagination', () => {
    const PAGE = `query($after: String, $dir: SortDirection!) {
      images(first: 7, after: $after, orderBy: { direction: $dir }) {
        totalCount
        edges { cursor node { id } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      }
    }`;

    async function walk(dir: 'ASC' | 'DESC'): Promise<string[]> {
      const seen: string[] = [];
      let after: string | null = null;
      for (let pageNo = 0; pageNo < 10; pageNo++) {
        const res = await read(PAGE, { after, dir });
        expect(res.errors).toBeUndefined();
        const conn = res.data!.images;
        expect(conn.totalCount).toBe(images.length);
        expect(conn.pageInfo.hasPreviousPage).toBe(pageNo > 0);
        expect(conn.pageInfo.startCursor).toBe(conn.edges[0]?.cursor ?? null);
        expect(conn.pageInfo.endCursor).toBe(conn.edges[conn.edges.length - 1]?.cursor ?? null);
        const remaining = images.length - seen.length;
        expect(conn.edges).toHaveLength(Math.min(7, remaining));
        seen.push(...conn.edges.map((e: any) => e.node.id));
        expect(conn.pageInfo.hasNextPage).toBe(remaining > 7);
        if (!conn.pageInfo.hasNextPage) return seen;
        after = conn.pageInfo.endCursor;
      }
      throw new Error('paging did not end');
    }

    it('visits every image exactly once, newest first, with first: 7', async () => {
      const seen = await walk('DESC');
      expect(seen).toEqual(images.map((i) => gid('Image', i.id)));
      expect(new Set(seen).size).toBe(images.length);
    });

    it('visits every image exactly once in ascending order too', async () => {
      const seen = await walk('ASC');
      expect(seen).toEqual([...images].reverse().map((i) => gid('Image', i.id)));
    });

    it('pages a filtered list: candidates with status OK, two at a time', async () => {
      const expected = candidates.filter((c) => c.status === CandidateStatus.OK).sort(byNewest).map((c) => gid('Candidate', c.id));
      const seen: string[] = [];
      let after: string | null = null;
      let hasNext = true;
      while (hasNext) {
        const res: any = await read(`query($after: String) { candidates(first: 2, after: $after, filter: { statuses: [OK] }) { totalCount edges { node { id } } pageInfo { hasNextPage endCursor } } }`, { after });
        expect(res.errors).toBeUndefined();
        expect(res.data.candidates.totalCount).toBe(expected.length);
        seen.push(...res.data.candidates.edges.map((e: any) => e.node.id));
        ({ hasNextPage: hasNext, endCursor: after } = res.data.candidates.pageInfo);
        expect(seen.length).toBeLessThanOrEqual(expected.length);
      }
      expect(seen).toEqual(expected);
    });
  });

  describe('filters', () => {
    const imageIds = async (filter: Record<string, unknown>) => {
      const res = await read(`query($filter: ImageFilter) { images(first: 100, filter: $filter) { totalCount edges { node { id } } } }`, { filter });
      expect(res.errors).toBeUndefined();
      const ids = res.data!.images.edges.map((e: any) => e.node.id);
      expect(res.data!.images.totalCount).toBe(ids.length);
      return ids as string[];
    };
    const expectImages = (pred: (i: Image) => boolean) => images.filter(pred).map((i) => gid('Image', i.id));
    const withCandidates = () => new Set(candidates.map((c) => c.imageId));

    it.each([[[Modality.CT]], [[Modality.MRI, Modality.HISTOLOGY]], [[Modality.GROSS]], [[Modality.CHEST_XRAY, Modality.OTHER]]])('images by modalities %j (any of)', async (mods) => {
      const expected = expectImages((i) => i.modalities.some((m) => mods.includes(m)));
      expect(expected.length).toBeGreaterThan(0);
      expect(await imageIds({ modalities: mods })).toEqual(expected);
    });

    it('images by caption full-text search, singular finding plural', async () => {
      const expected = expectImages((i) => /\bherniations?\b/i.test(i.caption));
      // Both forms are seeded, so the stemmed match is really tested.
      expect(images.some((i) => /\bherniations\b/.test(i.caption)) && images.some((i) => /\bherniation\b/.test(i.caption))).toBe(true);
      expect(await imageIds({ captionSearch: 'herniation' })).toEqual(expected);
      expect(await imageIds({ captionSearch: 'herniations' })).toEqual(expected);
    });

    it('images by caption search with web-search syntax: negation and phrase', async () => {
      expect(await imageIds({ captionSearch: 'herniation -lumbar' })).toEqual(expectImages((i) => /\bherniations?\b/i.test(i.caption) && !/lumbar/i.test(i.caption)));
      expect(await imageIds({ captionSearch: '"chest radiograph"' })).toEqual(expectImages((i) => /chest radiograph/i.test(i.caption)));
      expect(await imageIds({ captionSearch: 'pneumothorax' })).toEqual(expectImages((i) => /pneumothorax/i.test(i.caption)));
      expect(await imageIds({ captionSearch: 'xylophone' })).toEqual([]);
    });

    it.each([0, 1, 2])('images by clusterId %d', async (clusterId) => {
      const expected = expectImages((i) => i.clusterId === clusterId);
      expect(expected.length).toBeGreaterThan(0);
      expect(await imageIds({ clusterId })).toEqual(expected);
    });

    it('images by hasCandidates', async () => {
      const withC = withCandidates();
      expect(await imageIds({ hasCandidates: true })).toEqual(expectImages((i) => withC.has(i.id)));
      expect(await imageIds({ hasCandidates: false })).toEqual(expectImages((i) => !withC.has(i.id)));
    });

    it('images by hasBytes', async () => {
      expect(await imageIds({ hasBytes: true })).toEqual(expectImages((i) => i.contentHash !== null));
      expect(await imageIds({ hasBytes: false })).toEqual(expectImages((i) => i.contentHash === null));
    });

    it('images by several filters at once (AND)', async () => {
      const withC = withCandidates();
      const expected = expectImages((i) => i.modalities.includes(Modality.CT) && i.contentHash === null && withC.has(i.id));
      expect(expected.length).toBeGreaterThan(0);
      expect(await imageIds({ modalities: [Modality.CT], hasBytes: false, hasCandidates: true })).toEqual(expected);
    });

    const candidateIds = async (filter: Record<string, unknown>) => {
      const res = await read(`query($filter: CandidateFilter) { candidates(first: 100, filter: $filter) { totalCount edges { node { id } } } }`, { filter });
      expect(res.errors).toBeUndefined();
      const ids = res.data!.candidates.edges.map((e: any) => e.node.id);
      expect(res.data!.candidates.totalCount).toBe(ids.length);
      return ids as string[];
    };
    const expectCandidates = (pred: (c: Candidate, k: number) => boolean) =>
      candidates
        .filter(pred)
        .sort(byNewest)
        .map((c) => gid('Candidate', c.id));

    it('candidates by imageId and runId', async () => {
      expect(await candidateIds({ imageId: gid('Image', direct[2].id) })).toEqual(expectCandidates((c) => c.imageId === direct[2].id));
      expect(await candidateIds({ runId: gid('Run', runs.genDone.id) })).toEqual(expectCandidates((c) => c.runId === runs.genDone.id));
      expect(await candidateIds({ runId: gid('Run', runs.genRunning.id) })).toEqual(expectCandidates((c) => c.runId === runs.genRunning.id));
      expect(await candidateIds({ imageId: gid('Image', direct[4].id), runId: gid('Run', runs.genRunning.id) })).toEqual(expectCandidates((c) => c.imageId === direct[4].id && c.runId === runs.genRunning.id));
    });

    it('rejects a candidate filter id of the wrong type with BAD_USER_INPUT', async () => {
      const res = await read(`query($id: ID) { candidates(first: 5, filter: { imageId: $id }) { totalCount } }`, { id: gid('Run', runs.genDone.id) });
      expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
    });

    it('candidates by statuses', async () => {
      expect(await candidateIds({ statuses: ['REFUSED', 'FAILED'] })).toEqual(expectCandidates((c) => [CandidateStatus.REFUSED, CandidateStatus.FAILED].includes(c.status)));
      expect(await candidateIds({ statuses: ['OK'] })).toEqual(expectCandidates((c) => c.status === CandidateStatus.OK));
    });

    it('candidates by score range under a selector, bounds inclusive', async () => {
      const sel = gid('SelectorModel', mainSel.id);
      const inRange = (min: number | null, max: number | null) =>
        expectCandidates((_c, k) => k < MAIN_SCORES.length && (min === null || MAIN_SCORES[k] >= min) && (max === null || MAIN_SCORES[k] <= max));
      expect(await candidateIds({ score: { selectorModelId: sel, min: 0.3, max: 0.7 } })).toEqual(inRange(0.3, 0.7));
      expect(inRange(0.3, 0.7)).toHaveLength(6);
      expect(await candidateIds({ score: { selectorModelId: sel, min: 0.8 } })).toEqual(inRange(0.8, null));
      expect(await candidateIds({ score: { selectorModelId: sel, max: 0.2 } })).toEqual(inRange(null, 0.2));
      // No bound: every candidate scored by that selector, and only those.
      expect(await candidateIds({ score: { selectorModelId: sel } })).toEqual(inRange(null, null));
      expect(await candidateIds({ score: { selectorModelId: gid('SelectorModel', otherSel.id), min: 0.5, max: 0.6 } })).toEqual(expectCandidates((_c, k) => [0, 10, 11].includes(k)));
    });

    it('candidates by hasPreferences', async () => {
      const judged = new Set(Object.values(prefs).map((p) => p.candidateId));
      expect(await candidateIds({ hasPreferences: true })).toEqual(expectCandidates((c) => judged.has(c.id)));
      expect(await candidateIds({ hasPreferences: false })).toEqual(expectCandidates((c) => !judged.has(c.id)));
    });

    const preferenceIds = async (filter: Record<string, unknown> | null) => {
      const res = await read(`query($filter: PreferenceFilter) { preferences(first: 100, filter: $filter) { totalCount edges { node { id } } } }`, { filter });
      expect(res.errors).toBeUndefined();
      const ids = res.data!.preferences.edges.map((e: any) => e.node.id);
      expect(res.data!.preferences.totalCount).toBe(ids.length);
      return ids as string[];
    };
    const expectPrefs = (...names: string[]) =>
      names
        .map((n) => prefs[n])
        .sort(byNewest)
        .map((p) => gid('Preference', p.id));

    it('preferences, newest first, by sources, kinds, annotator and candidate', async () => {
      expect(await preferenceIds(null)).toEqual(expectPrefs('p1', 'p2', 'p3', 'p4', 'p5'));
      expect(await preferenceIds({ sources: ['CLINICIAN'] })).toEqual(expectPrefs('p1', 'p4', 'p5'));
      expect(await preferenceIds({ sources: ['MODEL'] })).toEqual(expectPrefs('p2', 'p3'));
      expect(await preferenceIds({ kinds: ['RATING'] })).toEqual(expectPrefs('p2', 'p4'));
      expect(await preferenceIds({ kinds: ['PAIRWISE', 'ACCEPTANCE'] })).toEqual(expectPrefs('p1', 'p3', 'p5'));
      expect(await preferenceIds({ sources: ['CLINICIAN'], kinds: ['RATING'] })).toEqual(expectPrefs('p4'));
      expect(await preferenceIds({ candidateId: cand(0) })).toEqual(expectPrefs('p1', 'p2'));

      // The annotator id is the User id the API itself hands out.
      const me = await q(Role.CLINICIAN, '{ viewer { user { id } } }');
      const clinicianId = me.data!.viewer.user.id;
      expect(clinicianId).toBe(gid('User', lab.userIds.CLINICIAN));
      expect(await preferenceIds({ annotatorId: clinicianId })).toEqual(expectPrefs('p1', 'p5'));
      expect(await preferenceIds({ annotatorId: gid('User', lab.userIds.OWNER) })).toEqual(expectPrefs('p4'));
      expect(await preferenceIds({ annotatorId: gid('User', lab.userIds.VIEWER) })).toEqual([]);
    });

    it('rejects a preference annotatorId that is not a User id', async () => {
      const res = await read(`query($id: ID) { preferences(first: 5, filter: { annotatorId: $id }) { totalCount } }`, { id: cand(0) });
      expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
    });

    const demoQuery = `query($filter: DemonstrationFilter) { demonstrations(first: 100, filter: $filter) { totalCount edges { node { externalId active image { modalities } } } } }`;
    const demoIds = async (filter: Record<string, unknown> | null) => {
      const res = await read(demoQuery, { filter });
      expect(res.errors).toBeUndefined();
      expect(res.data!.demonstrations.totalCount).toBe(res.data!.demonstrations.edges.length);
      return sortedIds(res.data!.demonstrations.edges.map((e: any) => e.node.externalId));
    };

    it('demonstrations by modalities', async () => {
      expect(await demoIds(null)).toEqual(['d1', 'd2', 'd3', 'd4']);
      expect(await demoIds({ modalities: ['CT'] })).toEqual(['d1', 'd3']);
      expect(await demoIds({ modalities: ['MRI', 'CHEST_XRAY'] })).toEqual(['d2', 'd4']);
      // The gross record has no conversation, so no demonstration.
      expect(await demoIds({ modalities: ['GROSS'] })).toEqual([]);
      expect(await demoIds({ active: true })).toEqual(['d1', 'd2', 'd3', 'd4']);
      expect(await demoIds({ active: false })).toEqual([]);
    });

    it('runs by kinds and statuses', async () => {
      const runIds = async (args: Record<string, unknown>) => {
        const res = await read(`query($kinds: [RunKind!], $statuses: [RunStatus!]) { runs(first: 100, kinds: $kinds, statuses: $statuses) { totalCount edges { node { id kind status } } } }`, args);
        expect(res.errors).toBeUndefined();
        expect(res.data!.runs.totalCount).toBe(res.data!.runs.edges.length);
        return res.data!.runs.edges.map((e: any) => e.node.id) as string[];
      };
      const expectRuns = (...names: string[]) =>
        names
          .map((n) => runs[n])
          .sort(byNewest)
          .map((r) => gid('Run', r.id));
      expect(await runIds({})).toEqual(expectRuns('genDone', 'genRunning', 'scoring', 'rating', 'export'));
      expect(await runIds({ kinds: ['GENERATION'] })).toEqual(expectRuns('genDone', 'genRunning'));
      expect(await runIds({ statuses: ['SUCCEEDED'] })).toEqual(expectRuns('genDone', 'scoring'));
      expect(await runIds({ kinds: ['GENERATION', 'SCORING'], statuses: ['SUCCEEDED', 'QUEUED'] })).toEqual(expectRuns('genDone', 'scoring'));
      expect(await runIds({ kinds: ['TRAINING'] })).toEqual([]);
    });

    it('never shows rows of another project', async () => {
      const res = await q(Role.VIEWER, `{ images(first: 100, filter: { captionSearch: "herniation" }) { totalCount } candidates(first: 5) { totalCount } }`, {}, other);
      expect(res.errors).toBeUndefined();
      expect(res.data).toEqual({ images: { totalCount: 10 }, candidates: { totalCount: 0 } });
    });
  });

  describe('sorting candidates by score', () => {
    const SORTED = `query($after: String, $dir: SortDirection!, $sel: ID!) {
      candidates(first: 3, after: $after, orderBy: { field: SCORE, direction: $dir, selectorModelId: $sel }) {
        totalCount
        edges { node { id score(selectorModelId: $sel) } }
        pageInfo { hasNextPage endCursor }
      }
    }`;

    async function walk(dir: 'ASC' | 'DESC', sel: string): Promise<{ id: string; score: number }[]> {
      const seen: { id: string; score: number }[] = [];
      let after: string | null = null;
      for (let pageNo = 0; pageNo < 10; pageNo++) {
        const res: any = await read(SORTED, { after, dir, sel });
        expect(res.errors).toBeUndefined();
        expect(res.data.candidates.totalCount).toBe(MAIN_SCORES.length);
        expect(res.data.candidates.edges.length).toBeLessThanOrEqual(3);
        seen.push(...res.data.candidates.edges.map((e: any) => e.node));
        if (!res.data.candidates.pageInfo.hasNextPage) return seen;
        after = res.data.candidates.pageInfo.endCursor;
      }
      throw new Error('paging did not end');
    }

    const expected = (dir: 'ASC' | 'DESC') => {
      const rows = MAIN_SCORES.map((score, k) => ({ id: candidates[k].id, score }));
      rows.sort((a, b) => a.score - b.score || (a.id < b.id ? -1 : 1));
      if (dir === 'DESC') rows.reverse();
      return rows.map((r) => ({ id: gid('Candidate', r.id), score: r.score }));
    };

    it.each(['ASC', 'DESC'] as const)('pages %s by score three at a time, leaving unscored candidates out', async (dir) => {
      const seen = await walk(dir, gid('SelectorModel', mainSel.id));
      expect(seen).toEqual(expected(dir));
      expect(seen.map((s) => s.id)).not.toContain(cand(10));
      expect(seen.map((s) => s.id)).not.toContain(cand(11));
    });

    it('combines the score sort with a filter', async () => {
      const res = await read(`query($sel: ID) { candidates(first: 100, filter: { statuses: [OK] }, orderBy: { field: SCORE, direction: DESC, selectorModelId: $sel }) { totalCount edges { node { id } } } }`, {
        sel: gid('SelectorModel', mainSel.id),
      });
      expect(res.errors).toBeUndefined();
      const want = expected('DESC').filter((r) => candidates.find((c) => gid('Candidate', c.id) === r.id)!.status === CandidateStatus.OK);
      expect(res.data!.candidates.edges.map((e: any) => e.node.id)).toEqual(want.map((r) => r.id));
      expect(res.data!.candidates.totalCount).toBe(want.length);
    });

    it('needs selectorModelId to sort by SCORE', async () => {
      const res = await read(`{ candidates(first: 3, orderBy: { field: SCORE }) { totalCount } }`);
      expect(errorCodes(res)).toEqual(['BAD_USER_INPUT']);
      const wrongType = await read(SORTED, { dir: 'ASC', sel: cand(0) });
      expect(errorCodes(wrongType)).toEqual(['BAD_USER_INPUT']);
    });
  });

  describe('cursor stability', () => {
    it('keeps image page 2 right when newer images arrive after page 1', async () => {
      const repo = app.ds.getRepository(Image);
      const original = (await repo.findBy({ projectId: other.id })).sort(byNewest).map((i) => gid('Image', i.id));
      expect(original).toHaveLength(10);
      const PAGE = `query($after: String) { images(first: 4, after: $after) { totalCount edges { node { id } } pageInfo { hasNextPage endCursor } } }`;
      const page1 = await q(Role.VIEWER, PAGE, {}, other);
      expect(page1.data!.images.edges.map((e: any) => e.node.id)).toEqual(original.slice(0, 4));

      const newest = Date.parse('2030-01-01T00:00:00.000Z');
      await repo.save([0, 1, 2].map((i) => repo.create({ projectId: other.id, source: ImageSource.UPLOAD, caption: `late ${i}`, createdAt: new Date(newest + i * 1000) })));

      const seen = [...page1.data!.images.edges.map((e: any) => e.node.id)];
      let after = page1.data!.images.pageInfo.endCursor;
      let hasNext = page1.data!.images.pageInfo.hasNextPage;
      while (hasNext) {
        const page = await q(Role.VIEWER, PAGE, { after }, other);
        expect(page.errors).toBeUndefined();
        expect(page.data!.images.totalCount).toBe(13);
        seen.push(...page.data!.images.edges.map((e: any) => e.node.id));
        ({ hasNextPage: hasNext, endCursor: after } = page.data!.images.pageInfo);
      }
      expect(seen).toEqual(original);
    });

    it('keeps a score-sorted page 2 right when a better-scored candidate arrives after page 1', async () => {
      const sel = gid('SelectorModel', mainSel.id);
      const order = MAIN_SCORES.map((score, k) => ({ id: candidates[k].id, score }))
        .sort((a, b) => b.score - a.score || (a.id < b.id ? 1 : -1))
        .map((r) => gid('Candidate', r.id));
      const PAGE = `query($after: String, $sel: ID) { candidates(first: 4, after: $after, orderBy: { field: SCORE, direction: DESC, selectorModelId: $sel }) { edges { node { id } } pageInfo { hasNextPage endCursor } } }`;
      const page1 = await read(PAGE, { sel });
      expect(page1.data!.candidates.edges.map((e: any) => e.node.id)).toEqual(order.slice(0, 4));

      const repo = app.ds.getRepository(Candidate);
      const late = await repo.save(repo.create({ projectId: lab.id, imageId: direct[10].id, status: CandidateStatus.OK, rounds: [{ question: 'Late?', answers: ['Yes.'] }] }));
      await app.ds.getRepository(Score).save({ projectId: lab.id, candidateId: late.id, selectorModelId: mainSel.id, value: 0.99 });
      try {
        const seen = [...page1.data!.candidates.edges.map((e: any) => e.node.id)];
        let after = page1.data!.candidates.pageInfo.endCursor;
        let hasNext = true;
        while (hasNext) {
          const page = await read(PAGE, { after, sel });
          expect(page.errors).toBeUndefined();
          seen.push(...page.data!.candidates.edges.map((e: any) => e.node.id));
          ({ hasNextPage: hasNext, endCursor: after } = page.data!.candidates.pageInfo);
        }
        expect(seen).toEqual(order);
        expect(seen).not.toContain(gid('Candidate', late.id));
      } finally {
        await app.ds.getRepository(Score).delete({ candidateId: late.id });
        await repo.delete({ id: late.id });
      }
    });
  });

  describe('recordPreference', () => {
    const RECORD = `mutation($input: RecordPreferenceInput!) {
      recordPreference(input: $input) {
        preference { id kind source roundIndex choice rating rubricVersion rationale answerIndex accepted judgeModel
          annotator { id email } candidate { id } otherCandidate { id } }
        userErrors { code field message }
      }
    }`;
    const record = (input: Record<string, unknown>, role: Role = Role.CLINICIAN) => q(role, RECORD, { input });
    const countPrefs = async () => Number((await app.ds.query('SELECT count(*) AS n FROM preferences WHERE project_id = $1', [lab.id]))[0].n);
    const clinician = () => ({ id: gid('User', lab.userIds.CLINICIAN), email: `clinician@${lab.slug}.test` });
    const recorded: string[] = [];

    it('records PAIRWISE between the two answers of a round of a TWO_ANSWERS candidate', async () => {
      expect(candidates[0].form).toBe(CandidateForm.TWO_ANSWERS);
      const res = await record({ candidateId: cand(0), kind: 'PAIRWISE', roundIndex: 1, choice: 'B', rationale: 'B names the level.' });
      expect(res.errors).toBeUndefined();
      expect(res.data!.recordPreference.userErrors).toEqual([]);
      expect(res.data!.recordPreference.preference).toMatchObject({
        kind: 'PAIRWISE',
        source: 'CLINICIAN',
        roundIndex: 1,
        choice: 'B',
        rationale: 'B names the level.',
        rating: null,
        accepted: null,
        judgeModel: null,
        annotator: clinician(),
        candidate: { id: cand(0) },
        otherCandidate: null,
      });
      recorded.push(res.data!.recordPreference.preference.id);
    });

    it('records PAIRWISE between two candidates', async () => {
      const res = await record({ candidateId: cand(1), otherCandidateId: cand(2), kind: 'PAIRWISE', choice: 'TIE' });
      expect(res.data!.recordPreference.userErrors).toEqual([]);
      expect(res.data!.recordPreference.preference).toMatchObject({ kind: 'PAIRWISE', choice: 'TIE', roundIndex: null, candidate: { id: cand(1) }, otherCandidate: { id: cand(2) }, annotator: clinician() });
      recorded.push(res.data!.recordPreference.preference.id);
    });

    it('records a RATING with its rubric version', async () => {
      const res = await record({ candidateId: cand(1), kind: 'RATING', rating: 8.5, rubricVersion: 'rubric-v2', rationale: 'Accurate, a little terse.' });
      expect(res.data!.recordPreference.userErrors).toEqual([]);
      expect(res.data!.recordPreference.preference).toMatchObject({ kind: 'RATING', rating: 8.5, rubricVersion: 'rubric-v2', choice: null, annotator: clinician() });
      recorded.push(res.data!.recordPreference.preference.id);
    });

    it('records an ACCEPTANCE of answer B of a round', async () => {
      const res = await record({ candidateId: cand(3), kind: 'ACCEPTANCE', roundIndex: 0, answerIndex: 1, accepted: false });
      expect(res.data!.recordPreference.userErrors).toEqual([]);
      expect(res.data!.recordPreference.preference).toMatchObject({ kind: 'ACCEPTANCE', roundIndex: 0, answerIndex: 1, accepted: false, annotator: clinician() });
      recorded.push(res.data!.recordPreference.preference.id);
    });

    it('stores the recorded rows with the clinician as annotator', async () => {
      expect(recorded).toHaveLength(4);
      const rows: { id: string; source: string; annotator_id: string; judge_model: string | null; project_id: string }[] = await app.ds.query(
        'SELECT id, source, annotator_id, judge_model, project_id FROM preferences WHERE id = ANY($1::uuid[])',
        [recorded.map((g) => Buffer.from(g, 'base64url').toString('utf8').split(':')[1])],
      );
      expect(rows).toHaveLength(4);
      for (const row of rows) expect(row).toMatchObject({ source: 'CLINICIAN', annotator_id: lab.userIds.CLINICIAN, judge_model: null, project_id: lab.id });
      // And the API sees them: filter by the clinician and count on the candidate.
      const res = await read(`query($a: ID, $c: ID!) { preferences(first: 100, filter: { annotatorId: $a }) { totalCount } node(id: $c) { ... on Candidate { preferenceCount } } }`, {
        a: gid('User', lab.userIds.CLINICIAN),
        c: cand(1),
      });
      expect(res.data).toEqual({ preferences: { totalCount: 2 + 4 }, node: { preferenceCount: 1 + 2 } });
    });

    it.each([
      ['roundIndex out of range', () => ({ candidateId: cand(0), kind: 'PAIRWISE', roundIndex: 2, choice: 'A' }), 'INVALID', ['roundIndex']],
      ['PAIRWISE without choice', () => ({ candidateId: cand(0), kind: 'PAIRWISE', roundIndex: 0 }), 'INVALID', ['choice']],
      ['PAIRWISE of answers without roundIndex', () => ({ candidateId: cand(0), kind: 'PAIRWISE', choice: 'A' }), 'INVALID', ['roundIndex']],
      ['PAIRWISE of answers on a SINGLE_ANSWER candidate', () => ({ candidateId: cand(1), kind: 'PAIRWISE', roundIndex: 0, choice: 'A' }), 'INVALID', ['candidateId']],
      ['ACCEPTANCE of answer B on a SINGLE_ANSWER candidate', () => ({ candidateId: cand(1), kind: 'ACCEPTANCE', roundIndex: 0, answerIndex: 1, accepted: true }), 'INVALID', ['candidateId']],
      ['a candidate compared with itself', () => ({ candidateId: cand(1), otherCandidateId: cand(1), kind: 'PAIRWISE', choice: 'A' }), 'INVALID', ['otherCandidateId']],
      ['RATING without rubricVersion', () => ({ candidateId: cand(1), kind: 'RATING', rating: 5 }), 'INVALID', ['rubricVersion']],
      ['a candidate that does not exist', () => ({ candidateId: gid('Candidate', '00000000-0000-4000-8000-000000000000'), kind: 'RATING', rating: 5, rubricVersion: 'v1' }), 'NOT_FOUND', ['candidateId']],
      ['an other candidate that does not exist', () => ({ candidateId: cand(1), otherCandidateId: gid('Candidate', '00000000-0000-4000-8000-000000000000'), kind: 'PAIRWISE', choice: 'A' }), 'NOT_FOUND', ['otherCandidateId']],
    ])('answers %s with a userError and writes nothing', async (_label, input, code, field) => {
      const before = await countPrefs();
      const res = await record(input());
      expect(res.errors).toBeUndefined();
      expect(res.data!.recordPreference.preference).toBeNull();
      expect(res.data!.recordPreference.userErrors).toEqual([expect.objectContaining({ code, field })]);
      expect(await countPrefs()).toBe(before);
    });

    it('answers NOT_FOUND for a candidate of another project', async () => {
      const repo = app.ds.getRepository(Candidate);
      const foreignImage = await app.ds.getRepository(Image).findOneByOrFail({ projectId: other.id, caption: 'disc herniation elsewhere 0' });
      const foreign = await repo.save(repo.create({ projectId: other.id, imageId: foreignImage.id, status: CandidateStatus.OK, rounds: [{ question: 'Q?', answers: ['A.'] }] }));
      const before = await countPrefs();
      const res = await record({ candidateId: gid('Candidate', foreign.id), kind: 'RATING', rating: 5, rubricVersion: 'v1' });
      expect(res.data!.recordPreference.userErrors).toEqual([expect.objectContaining({ code: 'NOT_FOUND', field: ['candidateId'] })]);
      expect(await countPrefs()).toBe(before);
    });

    it('rejects rating 11 as a userErrors entry before anything runs', async () => {
      const before = await countPrefs();
      const res = await record({ candidateId: cand(1), kind: 'RATING', rating: 11, rubricVersion: 'v1' });
      expect(res.errors).toBeUndefined();
      expect(res.data!.recordPreference.userErrors).toEqual([expect.objectContaining({ code: 'INVALID', field: ['input', 'rating'] })]);
      expect(await countPrefs()).toBe(before);
      const negative = await record({ candidateId: cand(1), kind: 'RATING', rating: -0.5, rubricVersion: 'v1' });
      expect(negative.data!.recordPreference.userErrors).toEqual([expect.objectContaining({ code: 'INVALID', field: ['input', 'rating'] })]);
    });

    it('refuses a VIEWER with FORBIDDEN', async () => {
      const before = await countPrefs();
      const res = await record({ candidateId: cand(1), kind: 'RATING', rating: 5, rubricVersion: 'v1' }, Role.VIEWER);
      expect(errorCodes(res)).toEqual(['FORBIDDEN']);
      expect(await countPrefs()).toBe(before);
    });
  });

  describe('setDemonstrationActive', () => {
    const SET = `mutation($id: ID!, $active: Boolean!) { setDemonstrationActive(input: { id: $id, active: $active }) { demonstration { id active externalId selectedBy { email } } userErrors { code field } } }`;
    const activeFilter = async (active: boolean) => {
      const res = await read(`query($active: Boolean) { demonstrations(first: 100, filter: { active: $active }) { totalCount edges { node { externalId } } } }`, { active });
      expect(res.data!.demonstrations.totalCount).toBe(res.data!.demonstrations.edges.length);
      return sortedIds(res.data!.demonstrations.edges.map((e: any) => e.node.externalId));
    };

    it('lets a clinician retire and restore a demonstration, and the active filter follows', async () => {
      const d2 = await app.ds.getRepository(Demonstration).findOneByOrFail({ projectId: lab.id, externalId: 'd2' });
      const id = gid('Demonstration', d2.id);

      const off = await q(Role.CLINICIAN, SET, { id, active: false });
      expect(off.errors).toBeUndefined();
      expect(off.data!.setDemonstrationActive).toEqual({ demonstration: { id, active: false, externalId: 'd2', selectedBy: { email: `clinician@${lab.slug}.test` } }, userErrors: [] });
      expect(await activeFilter(false)).toEqual(['d2']);
      expect(await activeFilter(true)).toEqual(['d1', 'd3', 'd4']);
      const mriActive = await read(`{ demonstrations(first: 10, filter: { modalities: [MRI], active: true }) { totalCount } }`);
      expect(mriActive.data!.demonstrations.totalCount).toBe(0);

      const on = await q(Role.CLINICIAN, SET, { id, active: true });
      expect(on.data!.setDemonstrationActive.demonstration.active).toBe(true);
      expect(await activeFilter(false)).toEqual([]);
      expect(await activeFilter(true)).toEqual(['d1', 'd2', 'd3', 'd4']);
    });

    it('answers NOT_FOUND for an unknown demonstration, and FORBIDDEN to a viewer', async () => {
      const missing = await q(Role.CLINICIAN, SET, { id: gid('Demonstration', '00000000-0000-4000-8000-000000000000'), active: false });
      expect(missing.data!.setDemonstrationActive).toEqual({ demonstration: null, userErrors: [{ code: 'NOT_FOUND', field: ['id'] }] });
      const d1 = await app.ds.getRepository(Demonstration).findOneByOrFail({ projectId: lab.id, externalId: 'd1' });
      const viewer = await q(Role.VIEWER, SET, { id: gid('Demonstration', d1.id), active: false });
      expect(errorCodes(viewer)).toEqual(['FORBIDDEN']);
      expect(await activeFilter(true)).toEqual(['d1', 'd2', 'd3', 'd4']);
    });
  });
});
