/**
 * createDataset: selection rules over a selector's scores, frozen items in rank order, counts per
 * modality, a reproducible content hash, unions, filters, errors, and reading a dataset page by page.
 */
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { errorCodes, gql, GraphQLResponse } from '../support/graphql-client';
import { FIGURE_CAPTIONS, seedPipeline } from '../support/pipeline-fixture';
import { referenceSelectorUpload, registerSelector, seedCandidates, selectorGlobalId } from '../support/scoring-fixture';
import { SHARED_IMAGE_NAMES } from '../support/shared-data';
import { fromGlobalId, toGlobalId } from '../../src/platform/ids';

jest.setTimeout(60_000);

const PER_IMAGE = 6;

const CREATE_DATASET = `mutation($input: CreateDatasetInput!) {
  createDataset(input: $input) {
    dataset { id name version itemCount countsByModality contentHash rule selectorModel { id version } }
    userErrors { field message code }
  }
}`;

const ITEMS = `query($id: ID!, $first: Int!, $after: String) {
  node(id: $id) { ... on Dataset { items(first: $first, after: $after) { totalCount pageInfo { hasNextPage endCursor } edges { node { rank score candidate { id } } } } } }
}`;

interface Item {
  rank: number;
  score: number;
  candidateId: string;
}

describe('datasets', () => {
  let app: TestApp;
  let lab: TestProject;
  let other: TestProject;
  let selectorId: string;
  let imageIds: string[];
  /** Candidate id → score, as stored. */
  const scores = new Map<string, number>();
  /** Candidate id → modality of its image. */
  const modalityOf = new Map<string, string>();

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'datasets');
    other = await createTestProject(app, 'datasets-other');
    ({ imageIds } = await seedPipeline(app, lab, { demonstrations: false }));
    const candidateIds = await seedCandidates(app, lab, imageIds, PER_IMAGE);
    const registered = await registerSelector(app, lab.keys.CURATOR, 'reference', referenceSelectorUpload(), { activate: true });
    selectorId = fromGlobalId(registered.data!.registerSelectorModel.selectorModel.id)!.id;
    // Distinct, known scores: the rule's arithmetic is what is under test here; scoring.test.ts covers ONNX.
    candidateIds.forEach((id, i) => {
      scores.set(id, Math.round(((i * 7919) % 101) * 10) / 100 - 3);
      modalityOf.set(id, FIGURE_CAPTIONS[SHARED_IMAGE_NAMES[Math.floor(i / PER_IMAGE)]].modalities[0]);
    });
    await app.ds.query(
      `INSERT INTO scores (project_id, candidate_id, selector_model_id, value) SELECT $1, c, $2, v FROM unnest($3::uuid[], $4::float8[]) AS t(c, v)`,
      [lab.id, selectorId, [...scores.keys()], [...scores.values()]],
    );
    // Candidates that did not parse compete only when asked for.
    const failed = await seedCandidates(app, lab, imageIds.slice(0, 1), 2, 'PARSE_FAILED');
    await app.ds.query(`INSERT INTO scores (project_id, candidate_id, selector_model_id, value) SELECT $1, c, $2, 100 FROM unnest($3::uuid[]) AS c`, [lab.id, selectorId, failed]);
  });

  afterAll(async () => {
    await app?.stop();
  });

  const ranked = (ids: Iterable<string>) => [...ids].sort((a, b) => scores.get(b)! - scores.get(a)! || (a < b ? -1 : 1));

  async function create(input: Record<string, unknown>, key = lab.keys.CURATOR) {
    const res = await gql(app.graphqlUrl, key, CREATE_DATASET, { input });
    expect(res.errors).toBeUndefined();
    return res.data!.createDataset;
  }

  async function allItems(datasetId: string, pageSize = 7): Promise<Item[]> {
    const items: Item[] = [];
    let after: string | null = null;
    for (;;) {
      const res: GraphQLResponse = await gql(app.graphqlUrl, lab.keys.VIEWER, ITEMS, { id: datasetId, first: pageSize, after });
      const page: any = res.data!.node.items;
      items.push(...page.edges.map((e: any) => ({ rank: e.node.rank, score: e.node.score, candidateId: fromGlobalId(e.node.candidate.id)!.id })));
      if (!page.pageInfo.hasNextPage) return items;
      after = page.pageInfo.endCursor;
    }
  }

  it('keeps the top fraction in rank order and records the rule, the selector version, counts per modality and a hash', async () => {
    const { dataset, userErrors } = await create({ name: 'vital-80', topFraction: 0.8 });
    expect(userErrors).toEqual([]);
    const expected = ranked(scores.keys()).slice(0, Math.ceil(scores.size * 0.8));
    expect(dataset).toMatchObject({ name: 'vital-80', version: 1, itemCount: expected.length, selectorModel: { id: selectorGlobalId(selectorId), version: 1 } });
    expect(dataset.rule).toMatchObject({ topFraction: 0.8, topK: null, selector: { name: 'reference', version: 1 } });
    expect(dataset.contentHash).toMatch(/^[0-9a-f]{64}$/);

    const items = await allItems(dataset.id);
    expect(items.map((i) => i.candidateId)).toEqual(expected);
    expect(items.map((i) => i.rank)).toEqual(expected.map((_, i) => i + 1));
    items.forEach((i) => expect(i.score).toBe(scores.get(i.candidateId)));

    const counts: Record<string, number> = {};
    for (const id of expected) counts[modalityOf.get(id)!] = (counts[modalityOf.get(id)!] ?? 0) + 1;
    expect(dataset.countsByModality).toEqual(counts);
  });

  it('gives the same hash for the same rule on the same data, as a new version, and a new hash when the data changes', async () => {
    const first = (await create({ name: 'repeat', topK: 10 })).dataset;
    const second = (await create({ name: 'repeat', topK: 10 })).dataset;
    expect(second.version).toBe(first.version + 1);
    expect(second.contentHash).toBe(first.contentHash);
    expect(await allItems(second.id)).toEqual(await allItems(first.id));

    const [best] = ranked(scores.keys());
    await app.ds.query(`UPDATE scores SET value = value - 50 WHERE candidate_id = $1`, [best]);
    try {
      const third = (await create({ name: 'repeat', topK: 10 })).dataset;
      expect(third.contentHash).not.toBe(first.contentHash);
    } finally {
      await app.ds.query(`UPDATE scores SET value = value + 50 WHERE candidate_id = $1`, [best]);
    }
  });

  it('filters by modality and status, and applies a minimum score', async () => {
    const ct = (await create({ name: 'ct', topK: 4, candidates: { modalities: ['CT'] } })).dataset;
    const ctIds = ranked([...modalityOf].filter(([, m]) => m === 'CT').map(([id]) => id)).slice(0, 4);
    expect((await allItems(ct.id)).map((i) => i.candidateId)).toEqual(ctIds);
    expect(ct.countsByModality).toEqual({ CT: 4 });

    const floor = 0.5;
    const above = (await create({ name: 'floor', minScore: floor })).dataset;
    expect((await allItems(above.id)).map((i) => i.candidateId)).toEqual(ranked([...scores.keys()].filter((id) => scores.get(id)! >= floor)));

    const withFailed = (await create({ name: 'with-failed', topK: 2, candidates: { statuses: ['OK', 'PARSE_FAILED'] } })).dataset;
    expect((await allItems(withFailed.id)).map((i) => i.score)).toEqual([100, 100]);
  });

  it('unions with other datasets, ranking every item by the selector', async () => {
    const mri = (await create({ name: 'mri', topK: 3, candidates: { modalities: ['MRI'] } })).dataset;
    const union = (await create({ name: 'ct-and-mri', topK: 3, candidates: { modalities: ['CT'] }, unionDatasetIds: [mri.id] })).dataset;
    const expected = ranked([
      ...ranked([...modalityOf].filter(([, m]) => m === 'MRI').map(([id]) => id)).slice(0, 3),
      ...ranked([...modalityOf].filter(([, m]) => m === 'CT').map(([id]) => id)).slice(0, 3),
    ]);
    expect((await allItems(union.id, 4)).map((i) => i.candidateId)).toEqual(expected);
    expect(union.countsByModality).toEqual({ CT: 3, MRI: 3 });
  });

  it('answers bad rules with user errors and writes nothing', async () => {
    const [{ n: before }] = await app.ds.query(`SELECT count(*)::int AS n FROM datasets`);
    const both = await create({ name: 'x', topK: 3, topFraction: 0.5 });
    expect(both.userErrors).toEqual([expect.objectContaining({ code: 'INVALID', field: ['input', 'topK'] })]);
    const none = await create({ name: 'x' });
    expect(none.userErrors).toEqual([expect.objectContaining({ code: 'INVALID' })]);
    const empty = await create({ name: 'x', minScore: 1e9 });
    expect(empty.userErrors).toEqual([expect.objectContaining({ code: 'INVALID', message: expect.stringMatching(/selects no candidate/) })]);
    const badName = await create({ name: 'no spaces', topK: 1 });
    expect(badName.userErrors).toEqual([expect.objectContaining({ field: ['input', 'name'] })]);
    const unknownRun = await create({ name: 'x', topK: 1, candidates: { generationRunIds: [toGlobalId('Run', '00000000-0000-0000-0000-000000000000')] } });
    expect(unknownRun.userErrors).toEqual([expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'candidates', 'generationRunIds'] })]);
    const [{ n: after }] = await app.ds.query(`SELECT count(*)::int AS n FROM datasets`);
    expect(after).toBe(before);
  });

  it('exports what it froze: the LLaVA JSON and JSONL downloads round-trip to the items, by their signed links or the same key', async () => {
    const { dataset } = await create({ name: 'export', topFraction: 0.5 });
    const res = await gql(app.graphqlUrl, lab.keys.VIEWER, `query($id: ID!) { node(id: $id) { ... on Dataset { exports { format url } } } }`, { id: dataset.id });
    const urls = Object.fromEntries(res.data!.node.exports.map((e: { format: string; url: string }) => [e.format, e.url]));
    expect(Object.keys(urls).sort()).toEqual(['CARD_JSON', 'CARD_MD', 'IMAGES_TAR', 'JSONL', 'LLAVA_JSON', 'TRL_JSONL', 'TRL_VISION_JSONL']);
    const items = await allItems(dataset.id);
    /** The link without its signature: then only a key of the project opens it. */
    const unsigned = (url: string) => url.split('?')[0];

    const llava = await fetch(urls.LLAVA_JSON);
    expect(llava.status).toBe(200);
    const samples = (await llava.json()) as { id: string; image: string; conversations: { from: string; value: string }[] }[];
    // `id` is the candidate's global id: it is what `DatasetItem.candidate.id` gives.
    expect(samples.map((s) => s.id)).toEqual(items.map((i) => toGlobalId('Candidate', i.candidateId)));
    const withKey = await fetch(unsigned(urls.LLAVA_JSON), { headers: { authorization: `Bearer ${lab.keys.VIEWER}` } });
    expect(await withKey.json()).toEqual(samples);
    const rounds: { id: string; rounds: { question: string; answers: string[] }[] }[] = await app.ds.query(`SELECT id, rounds FROM candidates WHERE id = ANY($1::uuid[])`, [items.map((i) => i.candidateId)]);
    const roundsById = new Map(rounds.map((r) => [toGlobalId('Candidate', r.id), r.rounds]));
    for (const sample of samples) {
      const expected = roundsById.get(sample.id)!.flatMap((r, i) => [
        { from: 'human', value: i === 0 ? `<image>\n${r.question}` : r.question },
        { from: 'gpt', value: r.answers[0] },
      ]);
      expect(sample.conversations).toEqual(expected);
    }

    const jsonl = await fetch(unsigned(urls.JSONL), { headers: { authorization: `Bearer ${lab.keys.VIEWER}` } });
    const records = (await jsonl.text()).trim().split('\n').map((line) => JSON.parse(line));
    expect(records.map((r) => [r.id, r.candidate_uuid, r.rank, r.score])).toEqual(items.map((i) => [toGlobalId('Candidate', i.candidateId), i.candidateId, i.rank, i.score]));

    const foreign = await fetch(unsigned(urls.LLAVA_JSON), { headers: { authorization: `Bearer ${other.keys.OWNER}` } });
    expect(foreign.status).toBe(404);
    const anonymous = await fetch(unsigned(urls.LLAVA_JSON));
    expect(anonymous.status).toBe(401);
  });

  it("the dataset card of a created dataset: composition, the rule's selector and the content hash as frozen, counted again in SQL", async () => {
    const { dataset } = await create({ name: 'carded', topK: 9, description: 'For the card' });
    const uuid = fromGlobalId(dataset.id)!.id;
    const res = await gql(app.graphqlUrl, lab.keys.VIEWER, `query($id: ID!) { node(id: $id) { ... on Dataset { exports { format url } } } }`, { id: dataset.id });
    const url = res.data!.node.exports.find((e: { format: string }) => e.format === 'CARD_JSON').url;
    const card: any = await (await fetch(url)).json();
    const modalities: { m: string; n: number }[] = await app.ds.query(
      `SELECT m::text AS m, count(*)::int AS n FROM dataset_items di JOIN candidates c ON c.id = di.candidate_id JOIN images i ON i.id = c.image_id, unnest(i.modalities) m WHERE di.dataset_id = $1 GROUP BY 1`,
      [uuid],
    );
    expect(card.composition.byModality).toEqual(Object.fromEntries(modalities.map((r) => [r.m, r.n])));
    expect(Object.values(card.composition.bySource).reduce((a: number, b) => a + (b as number), 0)).toBe(9);
    const [selector] = await app.ds.query(`SELECT name, version, files_hash FROM selector_models WHERE id = $1`, [selectorId]);
    expect(card.selection.selector).toEqual({ id: selectorGlobalId(selectorId), name: selector.name, version: selector.version, filesHash: selector.files_hash });
    expect(card.selection.rule).toMatchObject({ topK: 9 });
    expect(card.selection.alignmentStatus).toBe('not evaluated');
    expect(card.dataset).toMatchObject({ id: dataset.id, uuid, name: 'carded', version: 1, description: 'For the card', itemCount: 9, contentHash: dataset.contentHash });
    const [{ n, cost }] = await app.ds.query(`SELECT count(*)::int AS n, coalesce(sum(cost_usd), 0)::float8 AS cost FROM candidates WHERE id IN (SELECT candidate_id FROM dataset_items WHERE dataset_id = $1)`, [uuid]);
    expect(card.generation.totals).toMatchObject({ candidates: n, costUsd: expect.closeTo(cost, 9) });
    const md = await (await fetch(res.data!.node.exports.find((e: { format: string }) => e.format === 'CARD_MD').url)).text();
    expect(md).toContain(`| content hash (SHA-256) | ${dataset.contentHash} |`);
    expect(md).toContain(`Selector ${selector.name} version ${selector.version}`);
    for (const r of modalities) expect(md).toContain(`| ${r.m} | ${r.n} |`);
  });

  it("keeps other projects out: their keys, selectors and datasets", async () => {
    const mine = (await create({ name: 'private', topK: 2 })).dataset;
    const viaOtherSelector = await create({ name: 'steal', topK: 2, selectorModelId: selectorGlobalId(selectorId) }, other.keys.CURATOR);
    expect(viaOtherSelector.userErrors).toEqual([expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'selectorModelId'] })]);
    const peek = await gql(app.graphqlUrl, other.keys.OWNER, `query($id: ID!) { node(id: $id) { id } }`, { id: mine.id });
    expect(errorCodes(peek)).toEqual(['NOT_FOUND']);
    const listed = await gql(app.graphqlUrl, other.keys.OWNER, `{ datasets(first: 10) { totalCount } }`);
    expect(listed.data!.datasets.totalCount).toBe(0);

    // The other project with a selector of its own still cannot union our dataset.
    const theirs = await registerSelector(app, other.keys.CURATOR, 'theirs', referenceSelectorUpload(), { activate: true });
    expect(theirs.data!.registerSelectorModel.userErrors).toEqual([]);
    const union = await create({ name: 'steal', minScore: -1e9, unionDatasetIds: [mine.id] }, other.keys.CURATOR);
    expect(union.userErrors).toEqual([expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'unionDatasetIds'] })]);

    const asViewer = await gql(app.graphqlUrl, lab.keys.VIEWER, CREATE_DATASET, { input: { name: 'v', topK: 1 } });
    expect(errorCodes(asViewer)).toEqual(['FORBIDDEN']);
  });
});
