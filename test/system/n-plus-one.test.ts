import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { CANDIDATE_PAGE_QUERY } from '../support/candidate-page';
import { StatementCounter } from '../../src/platform/db';
import { Role } from '../../src/modules/projects/role';
import { Image } from '../../src/modules/images/image.entity';
import { ImageSource, Modality } from '../../src/modules/images/modality';
import { Candidate, CandidateForm, CandidateStatus } from '../../src/modules/candidates/candidate.entity';
import { SelectorModel } from '../../src/modules/selectors/selector-model.entity';
import { Score } from '../../src/modules/scoring/score.entity';
import { PairwiseChoice, Preference, PreferenceKind, PreferenceSource } from '../../src/modules/preferences/preference.entity';

/** Relay global id, built here on purpose rather than with the code under test. */
const gid = (type: string, id: string) => Buffer.from(`${type}:${id}`).toString('base64url');

const IMAGE_COUNT = 120;
const BASE_TIME = Date.parse('2024-03-01T00:00:00.000Z');
const MODALITY_CYCLE: Modality[][] = [[Modality.CT], [Modality.MRI], [Modality.CT, Modality.MRI], [Modality.HISTOLOGY], [Modality.CHEST_XRAY]];
const STATUS_CYCLE = [CandidateStatus.OK, CandidateStatus.OK, CandidateStatus.PARSE_FAILED, CandidateStatus.REFUSED];
const KIND_CYCLE = [PreferenceKind.PAIRWISE, PreferenceKind.RATING, PreferenceKind.ACCEPTANCE];

interface SeededPreference {
  kind: PreferenceKind;
  source: PreferenceSource;
  annotatorEmail: string | null;
  createdAt: number;
}

interface SeededCandidate {
  id: string;
  index: number;
  status: CandidateStatus;
  image: Image;
  scores: { selector: string; value: number }[];
  mainScore: number;
  preferences: SeededPreference[];
}

/** Time between two statement-counter readings; the counter is process-wide, so nothing else may run meanwhile. */
async function countStatements<T>(work: () => Promise<T>): Promise<{ result: T; statements: number }> {
  StatementCounter.reset();
  const result = await work();
  return { result, statements: StatementCounter.count };
}

describe('nested connections are batched (no N+1)', () => {
  let app: TestApp;
  let lab: TestProject;
  let mainSelector: SelectorModel;
  const seeded = new Map<string, SeededCandidate>(); // by candidate global id
  const candidatesByImage = new Map<string, SeededCandidate>(); // by image global id

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'n1-lab');
    const { ds } = app;
    const emails: Record<string, string> = {
      [lab.userIds.CLINICIAN]: `clinician@${lab.slug}.test`,
      [lab.userIds.OWNER]: `owner@${lab.slug}.test`,
    };

    const selectorRepo = ds.getRepository(SelectorModel);
    const selectors = await selectorRepo.save([
      selectorRepo.create({ projectId: lab.id, name: 'vital-selector', version: 1, filesHash: 'a'.repeat(64), manifest: { kind: 'reward' }, active: true }),
      selectorRepo.create({ projectId: lab.id, name: 'baseline-selector', version: 1, filesHash: 'b'.repeat(64), manifest: { kind: 'reward' }, active: false }),
    ]);
    mainSelector = selectors[0];

    const imageRepo = ds.getRepository(Image);
    const images = await imageRepo.save(
      Array.from({ length: IMAGE_COUNT }, (_, i) =>
        imageRepo.create({
          projectId: lab.id,
          source: ImageSource.IMPORT,
          pairId: `n1_${i}`,
          pmid: String(1000 + i),
          caption: `Figure ${i}: axial slice number ${i}`,
          modalities: MODALITY_CYCLE[i % MODALITY_CYCLE.length],
          contentHash: i % 3 === 0 ? i.toString(16).padStart(64, '0') : null,
          mimeType: i % 3 === 0 ? 'image/png' : null,
          createdAt: new Date(BASE_TIME + i * 1000),
        }),
      ),
      { chunk: 50 },
    );

    const candidateRepo = ds.getRepository(Candidate);
    const candidates = await candidateRepo.save(
      images.map((image, i) =>
        candidateRepo.create({
          projectId: lab.id,
          imageId: image.id,
          status: STATUS_CYCLE[i % STATUS_CYCLE.length],
          form: CandidateForm.SINGLE_ANSWER,
          rounds: [{ question: `What is shown in figure ${i}?`, answers: [`An axial slice (${i}).`] }],
          createdAt: new Date(BASE_TIME + i * 1000 + 500),
        }),
      ),
      { chunk: 50 },
    );

    const scoreRepo = ds.getRepository(Score);
    const scoreRows: Score[] = [];
    const prefRepo = ds.getRepository(Preference);
    const prefRows: Preference[] = [];
    candidates.forEach((c, i) => {
      const values = [((i * 37) % 100) / 100, ((i * 53) % 100) / 100 + 0.005];
      selectors.forEach((sel, s) =>
        scoreRows.push(scoreRepo.create({ projectId: lab.id, candidateId: c.id, selectorModelId: sel.id, value: values[s], createdAt: new Date(BASE_TIME + i * 1000 + 600 + s) })),
      );
      const preferences: SeededPreference[] = [];
      for (let j = 0; j < i % 4; j++) {
        const kind = KIND_CYCLE[(i + j) % KIND_CYCLE.length];
        const clinician = j % 2 === 0;
        const annotatorId = clinician ? (j === 0 ? lab.userIds.CLINICIAN : lab.userIds.OWNER) : null;
        const createdAt = BASE_TIME + i * 1000 + 700 + j;
        prefRows.push(
          prefRepo.create({
            projectId: lab.id,
            candidateId: c.id,
            source: clinician ? PreferenceSource.CLINICIAN : PreferenceSource.MODEL,
            kind,
            annotatorId,
            judgeModel: clinician ? null : 'judge-model-1',
            roundIndex: kind === PreferenceKind.RATING ? null : 0,
            choice: kind === PreferenceKind.PAIRWISE ? PairwiseChoice.A : null,
            rating: kind === PreferenceKind.RATING ? (i % 11) : null,
            rubricVersion: kind === PreferenceKind.RATING ? 'rubric-v1' : null,
            answerIndex: kind === PreferenceKind.ACCEPTANCE ? 0 : null,
            accepted: kind === PreferenceKind.ACCEPTANCE ? i % 2 === 0 : null,
            otherCandidateId: kind === PreferenceKind.PAIRWISE ? candidates[(i + 1) % candidates.length].id : null,
            createdAt: new Date(createdAt),
          }),
        );
        preferences.push({ kind, source: clinician ? PreferenceSource.CLINICIAN : PreferenceSource.MODEL, annotatorEmail: annotatorId ? emails[annotatorId] : null, createdAt });
      }
      const entry: SeededCandidate = {
        id: c.id,
        index: i,
        status: c.status,
        image: images[i],
        scores: selectors.map((sel, s) => ({ selector: sel.name, value: values[s] })),
        mainScore: values[0],
        preferences,
      };
      seeded.set(gid('Candidate', c.id), entry);
      candidatesByImage.set(gid('Image', images[i].id), entry);
    });
    await scoreRepo.save(scoreRows, { chunk: 100 });
    await prefRepo.save(prefRows, { chunk: 100 });
    expect(prefRows.length).toBe(Array.from({ length: IMAGE_COUNT }, (_, i) => i % 4).reduce((a, b) => a + b, 0));

    // The first request of a key writes its last-used time; spend that write here, outside any count.
    const warm = await gql(app.graphqlUrl, lab.keys[Role.VIEWER], '{ viewer { role } }');
    expect(warm.errors).toBeUndefined();
  });
  afterAll(() => app?.stop());

  const CANDIDATES_QUERY = CANDIDATE_PAGE_QUERY;

  function checkCandidatePage(data: any, first: number): void {
    const conn = data.candidates;
    expect(conn.totalCount).toBe(IMAGE_COUNT);
    expect(conn.edges).toHaveLength(first);
    // Newest first: the last seeded candidate leads.
    expect(conn.edges.map((e: any) => seeded.get(e.node.id)?.index)).toEqual(Array.from({ length: first }, (_, k) => IMAGE_COUNT - 1 - k));
    for (const { node } of conn.edges) {
      const want = seeded.get(node.id)!;
      expect(node.status).toBe(want.status);
      expect(node.image.id).toBe(gid('Image', want.image.id));
      expect(node.image.caption).toBe(want.image.caption);
      expect(node.image.modalities).toEqual(want.image.modalities);
      expect(node.image.thumbnailUrl === null).toBe(want.image.contentHash === null);
      expect(node.image.candidateCount).toBe(1);
      expect(node.scores.totalCount).toBe(2);
      const scores = node.scores.edges.map((e: any) => ({ selector: e.node.selectorModel.name, value: e.node.value }));
      expect(scores.sort((a: any, b: any) => a.selector.localeCompare(b.selector))).toEqual([...want.scores].sort((a, b) => a.selector.localeCompare(b.selector)));
      expect(node.score).toBe(want.mainScore);
      expect(node.preferenceCount).toBe(want.preferences.length);
      const expectedPrefs = [...want.preferences]
        .sort((a, b) => b.createdAt - a.createdAt)
        .slice(0, 3)
        .map((p) => ({ kind: p.kind, source: p.source, annotator: p.annotatorEmail ? { email: p.annotatorEmail } : null }));
      expect(node.preferences.edges.map((e: any) => e.node)).toEqual(expectedPrefs);
    }
  }

  it('answers candidates with image, scores, score, preferences in the same number of statements for 10 and 100', async () => {
    const key = lab.keys[Role.VIEWER];
    const sel = gid('SelectorModel', mainSelector.id);
    const small = await countStatements(() => gql(app.graphqlUrl, key, CANDIDATES_QUERY, { first: 10, sel }));
    const large = await countStatements(() => gql(app.graphqlUrl, key, CANDIDATES_QUERY, { first: 100, sel }));
    console.log(`candidates statements: first=10 → ${small.statements}, first=100 → ${large.statements}`);

    expect(small.result.errors).toBeUndefined();
    expect(large.result.errors).toBeUndefined();
    checkCandidatePage(small.result.data, 10);
    checkCandidatePage(large.result.data, 100);

    // Sanity: the page of 100 really reaches candidates with 0, 1, 2 and 3 preferences.
    const prefCounts = new Set(large.result.data!.candidates.edges.map((e: any) => e.node.preferenceCount));
    expect([...prefCounts].sort()).toEqual([0, 1, 2, 3]);

    expect(large.statements).toBe(small.statements);
    // auth + candidates page + count + images + candidateCount + scores page + scores count
    // + selector models + score by selector + preference count + preferences page + annotators
    expect(large.statements).toBeGreaterThanOrEqual(11);
    expect(large.statements).toBeLessThanOrEqual(12);
  });

  const IMAGES_QUERY = `query($first: Int!) {
    images(first: $first) {
      edges { node {
        id
        candidates(first: 5) { totalCount edges { node { id scores(first: 2) { edges { node { value } } } } } }
      } }
    }
  }`;

  function checkImagePage(data: any, first: number): void {
    const edges = data.images.edges;
    expect(edges).toHaveLength(first);
    expect(edges.map((e: any) => candidatesByImage.get(e.node.id)?.index)).toEqual(Array.from({ length: first }, (_, k) => IMAGE_COUNT - 1 - k));
    for (const { node } of edges) {
      const want = candidatesByImage.get(node.id)!;
      expect(node.candidates.totalCount).toBe(1);
      expect(node.candidates.edges).toHaveLength(1);
      const candidate = node.candidates.edges[0].node;
      expect(candidate.id).toBe(gid('Candidate', want.id));
      const values = candidate.scores.edges.map((e: any) => e.node.value).sort();
      expect(values).toEqual(want.scores.map((s) => s.value).sort());
    }
  }

  it('answers images with their candidates and scores in the same number of statements for 10 and 100', async () => {
    const key = lab.keys[Role.VIEWER];
    const small = await countStatements(() => gql(app.graphqlUrl, key, IMAGES_QUERY, { first: 10 }));
    const large = await countStatements(() => gql(app.graphqlUrl, key, IMAGES_QUERY, { first: 100 }));
    console.log(`images statements: first=10 → ${small.statements}, first=100 → ${large.statements}`);

    expect(small.result.errors).toBeUndefined();
    expect(large.result.errors).toBeUndefined();
    checkImagePage(small.result.data, 10);
    checkImagePage(large.result.data, 100);

    expect(large.statements).toBe(small.statements);
    // auth + images page + candidates pages + candidate counts + scores pages
    expect(large.statements).toBeLessThanOrEqual(5);
  });

  it('batches a second page reached with a cursor the same way', async () => {
    const key = lab.keys[Role.VIEWER];
    const sel = gid('SelectorModel', mainSelector.id);
    const firstPage = await gql(app.graphqlUrl, key, `{ candidates(first: 20) { pageInfo { endCursor hasNextPage } } }`);
    const after = firstPage.data!.candidates.pageInfo.endCursor;
    expect(firstPage.data!.candidates.pageInfo.hasNextPage).toBe(true);
    const query = CANDIDATES_QUERY.replace('candidates(first: $first)', 'candidates(first: $first, after: $after)').replace('query($first: Int!,', 'query($first: Int!, $after: String,');
    const small = await countStatements(() => gql(app.graphqlUrl, key, query, { first: 10, sel, after }));
    const large = await countStatements(() => gql(app.graphqlUrl, key, query, { first: 100, sel, after }));
    expect(small.result.errors).toBeUndefined();
    expect(large.result.errors).toBeUndefined();
    // 120 candidates, 20 already seen: the page of 100 holds the remaining 100.
    const indexes = large.result.data!.candidates.edges.map((e: any) => seeded.get(e.node.id)!.index);
    expect(indexes).toEqual(Array.from({ length: 100 }, (_, k) => IMAGE_COUNT - 21 - k));
    expect(large.statements).toBe(small.statements);
  });
});
