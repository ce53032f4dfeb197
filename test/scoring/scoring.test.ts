/**
 * The selector registry and scoring runs, end to end: the reference selector is uploaded over
 * GraphQL multipart, validated by really running it in ONNX Runtime, and scores the shared images'
 * candidates through the job queue; every score is checked against a direct ONNX Runtime call.
 */
import sharp from 'sharp';
import * as ort from 'onnxruntime-node';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { errorCodes, gql } from '../support/graphql-client';
import { seedPipeline, waitForRun } from '../support/pipeline-fixture';
import { referenceSelectorUpload, registerSelector, seedCandidates, selectorGlobalId, START_SCORING } from '../support/scoring-fixture';
import { buildReferenceSelector } from '../../src/modules/selectors/reference-selector';
import { imagePixels, selectorText } from '../../src/modules/selectors/selector-inputs';
import { loadTokenizer } from '../../src/platform/tokenizer';
import { fromGlobalId, toGlobalId } from '../../src/platform/ids';

jest.setTimeout(60_000);

const PER_IMAGE = 6;

describe('selector registry', () => {
  let app: TestApp;
  let lab: TestProject;
  let other: TestProject;

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'registry');
    other = await createTestProject(app, 'registry-other');
  });

  afterAll(async () => {
    await app?.stop();
  });

  it('registers the reference selector with its signature and a finite dry-run score, and versions it by name', async () => {
    const upload = referenceSelectorUpload();
    const first = await registerSelector(app, lab.keys.CURATOR, 'reference', upload, { activate: true });
    expect(first.errors).toBeUndefined();
    const { selectorModel, userErrors } = first.data!.registerSelectorModel;
    expect(userErrors).toEqual([]);
    expect(selectorModel).toMatchObject({ name: 'reference', version: 1, active: true, modelBytes: upload.model.length });
    expect(Number.isFinite(selectorModel.dryRunScore)).toBe(true);
    expect(selectorModel.signature.inputs.map((i: { name: string }) => i.name).sort()).toEqual(['attention_mask', 'input_ids', 'pixel_values']);
    expect(selectorModel.manifest).toEqual(JSON.parse(upload.manifest.toString()));

    // The same files, sent manifest first: the multipart order does not matter.
    const again = await registerSelector(app, lab.keys.CURATOR, 'reference', upload, {}, 'reversed');
    expect(again.data!.registerSelectorModel.selectorModel.id).toBe(selectorModel.id);

    const retrained = await registerSelector(app, lab.keys.CURATOR, 'reference', referenceSelectorUpload({ seed: 8 }));
    expect(retrained.data!.registerSelectorModel.selectorModel).toMatchObject({ name: 'reference', version: 2, active: false });
    expect(retrained.data!.registerSelectorModel.selectorModel.filesHash).not.toBe(selectorModel.filesHash);

    // Content-addressed: what is stored is exactly the distinct files of the two versions, once each.
    const stored: { key: string }[] = await app.ds.query(`SELECT key FROM blob_objects WHERE key LIKE $1 ORDER BY key`, [`selectors/${lab.id}/%`]);
    const referenced: { key: string }[] = await app.ds.query(`SELECT DISTINCT f.value ->> 'key' AS key FROM selector_models m, jsonb_each(m.files) f WHERE m.project_id = $1 ORDER BY 1`, [lab.id]);
    expect(stored).toEqual(referenced);
    expect(stored.length).toBeGreaterThanOrEqual(4);
  });

  it.each([
    ['a truncated model.onnx', () => ({ ...referenceSelectorUpload(), model: referenceSelectorUpload().model.subarray(0, 5000) }), 'model', /does not load/],
    ['a model whose input is misnamed', () => referenceSelectorUpload({ inputNames: { input_ids: 'token_ids' } }), 'model', /missing input `input_ids`.*unexpected input `token_ids`/],
    ['a model whose pixel_values has the wrong rank', () => referenceSelectorUpload({ pixelRank: 3 }), 'model', /`pixel_values` has rank 3, expected 4/],
    ['a missing tokenizer', () => ({ ...referenceSelectorUpload(), tokenizer: undefined }), 'tokenizer', /tokenizer.json is missing/],
    ['a tokenizer that is not one', () => ({ ...referenceSelectorUpload(), tokenizer: Buffer.from('{"version":"1.0"}') }), 'tokenizer', /tokenizer.json has no model with a vocabulary/],
    ['a manifest that does not parse', () => ({ ...referenceSelectorUpload(), manifest: Buffer.from('{"contract": ') }), 'manifest', /not JSON/],
    ['a manifest that breaks the schema', () => ({ ...referenceSelectorUpload(), manifest: Buffer.from(JSON.stringify({ ...buildReferenceSelector().manifest, score: 'rank' })) }), 'manifest', /score/],
    ['a manifest whose image size the model does not take', () => ({ ...referenceSelectorUpload(), manifest: Buffer.from(JSON.stringify({ ...buildReferenceSelector().manifest, image: { ...buildReferenceSelector().manifest.image, size: 96 } })) }), 'model', /height is 64, the manifest says 96/],
  ])('rejects %s with a clear error and records nothing', async (_label, upload, field, message) => {
    const before = await app.ds.query(`SELECT count(*)::int AS n FROM selector_models WHERE project_id = $1`, [lab.id]);
    const res = await registerSelector(app, lab.keys.CURATOR, 'broken', upload());
    expect(res.errors).toBeUndefined();
    const { selectorModel, userErrors } = res.data!.registerSelectorModel;
    expect(selectorModel).toBeNull();
    expect(userErrors).toHaveLength(1);
    expect(userErrors[0]).toMatchObject({ code: 'INVALID', field: ['input', field] });
    expect(userErrors[0].message).toMatch(message);
    const after = await app.ds.query(`SELECT count(*)::int AS n FROM selector_models WHERE project_id = $1`, [lab.id]);
    expect(after[0].n).toBe(before[0].n);
  });

  it('is for curators, and scoped to the project', async () => {
    const asViewer = await registerSelector(app, lab.keys.VIEWER, 'viewer', referenceSelectorUpload());
    expect(errorCodes(asViewer)).toEqual(['FORBIDDEN']);
    const [mine] = await app.ds.query(`SELECT id FROM selector_models WHERE project_id = $1 LIMIT 1`, [lab.id]);
    const fromOther = await gql(app.graphqlUrl, other.keys.OWNER, `query($id: ID!) { node(id: $id) { id } }`, { id: selectorGlobalId(mine.id) });
    expect(errorCodes(fromOther)).toEqual(['NOT_FOUND']);
    const listed = await gql(app.graphqlUrl, other.keys.OWNER, `{ selectorModels(first: 10) { totalCount } }`);
    expect(listed.data!.selectorModels.totalCount).toBe(0);
    const activate = await gql(app.graphqlUrl, other.keys.OWNER, `mutation($id: ID!) { activateSelectorModel(input: { selectorModelId: $id }) { selectorModel { id } userErrors { code } } }`, { id: selectorGlobalId(mine.id) });
    expect(activate.data!.activateSelectorModel.userErrors).toEqual([{ code: 'NOT_FOUND' }]);
  });

  it('registers from a server folder only under an allowed import folder', async () => {
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, `mutation { registerSelectorModel(input: { name: "x", serverPath: "/etc" }) { selectorModel { id } userErrors { field code message } } }`);
    expect(res.data!.registerSelectorModel.userErrors).toEqual([expect.objectContaining({ code: 'INVALID', field: ['input', 'serverPath'] })]);
  });
});

describe('scoring runs', () => {
  let app: TestApp;
  let lab: TestProject;
  let other: TestProject;
  let imageIds: string[];
  let candidateIds: string[];
  let selectorId: string;

  beforeAll(async () => {
    app = await startTestApp({ SCORING_BATCH_SIZE: '7' }, { worker: true });
    lab = await createTestProject(app, 'scoring');
    other = await createTestProject(app, 'scoring-other');
    ({ imageIds } = await seedPipeline(app, lab));
    candidateIds = await seedCandidates(app, lab, imageIds, PER_IMAGE);
    const registered = await registerSelector(app, lab.keys.CURATOR, 'reference', referenceSelectorUpload(), { activate: true });
    selectorId = fromGlobalId(registered.data!.registerSelectorModel.selectorModel.id)!.id;
  });

  afterAll(async () => {
    await app?.stop();
  });

  it('scores every candidate once, in batches, with the scores ONNX Runtime gives for the same inputs', async () => {
    const started = await gql(app.graphqlUrl, lab.keys.CURATOR, START_SCORING, { input: {} });
    expect(started.errors).toBeUndefined();
    const { run, userErrors } = started.data!.startScoringRun;
    expect(userErrors).toEqual([]);
    expect(run).toMatchObject({ kind: 'SCORING', total: candidateIds.length });
    const finished = await waitForRun(app, lab.keys.VIEWER, run.id);
    expect(finished).toMatchObject({ status: 'SUCCEEDED', done: candidateIds.length, failed: 0 });

    const scores: { candidate_id: string; value: number }[] = await app.ds.query(`SELECT candidate_id, value FROM scores WHERE selector_model_id = $1`, [selectorId]);
    expect(scores.map((s) => s.candidate_id).sort()).toEqual([...candidateIds].sort());
    expect(new Set(scores.map((s) => s.value.toFixed(6))).size).toBeGreaterThan(candidateIds.length / 2);

    // The same rows through ONNX Runtime directly, one candidate at a time: batching and image reuse change nothing.
    const files = buildReferenceSelector();
    const session = await ort.InferenceSession.create(files.model);
    const tokenizer = loadTokenizer(files.tokenizer);
    const rows: { id: string; rounds: any; caption: string; mentions: string[]; content_hash: string }[] = await app.ds.query(
      `SELECT c.id, c.rounds, i.caption, i.mentions, i.content_hash FROM candidates c JOIN images i ON i.id = c.image_id WHERE c.project_id = $1`,
      [lab.id],
    );
    const byId = new Map(scores.map((s) => [s.candidate_id, s.value]));
    for (const row of rows.filter((_, i) => i % 5 === 0)) {
      const [blob] = await app.ds.query(`SELECT data FROM blob_objects WHERE key LIKE $1`, [`%${row.content_hash}`]);
      const pixels = await imagePixels(blob.data, files.manifest);
      const { inputIds, attentionMask } = tokenizer.encodeBatch([selectorText({ caption: row.caption, mentions: row.mentions, rounds: row.rounds }, files.manifest)], files.manifest.text.maxLength);
      const size = files.manifest.image.size;
      const L = files.manifest.text.maxLength;
      const out = await session.run({
        pixel_values: new ort.Tensor('float32', pixels, [1, 3, size, size]),
        input_ids: new ort.Tensor('int64', inputIds, [1, L]),
        attention_mask: new ort.Tensor('int64', attentionMask, [1, L]),
      });
      expect(byId.get(row.id)).toBeCloseTo((out[session.outputNames[0]].data as Float32Array)[0], 5);
    }
    await session.release();

    const metrics = await gql(app.graphqlUrl, lab.keys.VIEWER, `query($id: ID!) { node(id: $id) { ... on Run { metrics itemsPerSecond etaSeconds } } }`, { id: run.id });
    expect(Object.keys(metrics.data!.node.metrics).sort()).toEqual(['fetchMs', 'inferMs', 'preprocessMs', 'tokenizeMs', 'totalMs', 'writeMs']);
    expect(metrics.data!.node.itemsPerSecond).toBeGreaterThan(0);
    expect(metrics.data!.node.etaSeconds).toBeNull();
  });

  it('fills only what is missing when run again', async () => {
    const extra = await seedCandidates(app, lab, imageIds.slice(0, 2), 1);
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, START_SCORING, { input: { selectorModelId: selectorGlobalId(selectorId) } });
    const { run } = res.data!.startScoringRun;
    expect(run.total).toBe(extra.length);
    expect(await waitForRun(app, lab.keys.VIEWER, run.id)).toMatchObject({ status: 'SUCCEEDED', done: extra.length });
    const [{ n, distinct }] = await app.ds.query(`SELECT count(*)::int AS n, count(DISTINCT candidate_id)::int AS distinct FROM scores WHERE selector_model_id = $1`, [selectorId]);
    expect(n).toBe(candidateIds.length + extra.length);
    expect(distinct).toBe(n);
    candidateIds.push(...extra);
  });

  it('fails the candidates whose image bytes are missing, with the reason, and scores the rest', async () => {
    const grey = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#336699' } }).png().toBuffer();
    const image = await app.services.images.upload(lab.ctx(), grey, 'lost.png', { caption: 'A figure whose bytes are lost.' });
    await app.ds.query(`DELETE FROM blob_objects WHERE key LIKE $1`, [`%${image.contentHash}`]);
    const [{ id: recordOnly }] = await app.ds.query(`INSERT INTO images (project_id, caption, source) VALUES ($1, 'Record without bytes', 'IMPORT') RETURNING id`, [lab.id]);
    const lost = await seedCandidates(app, lab, [image.id, recordOnly], 2);
    const fine = await seedCandidates(app, lab, [imageIds[2]], 2);
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, START_SCORING, { input: { candidates: { candidateIds: [...lost, ...fine].map((id) => toGlobalId('Candidate', id)) } } });
    const { run } = res.data!.startScoringRun;
    const finished = await waitForRun(app, lab.keys.VIEWER, run.id);
    expect(finished).toMatchObject({ status: 'SUCCEEDED', total: 6, done: 2, failed: 4, lastError: 'The image has no stored bytes' });
    const failures = await gql(app.graphqlUrl, lab.keys.VIEWER, `query($id: ID!) { node(id: $id) { ... on Run { failures(first: 10) { totalCount edges { node { itemKey reason } } } } } }`, { id: run.id });
    const listed = failures.data!.node.failures;
    expect(listed.totalCount).toBe(4);
    expect(listed.edges.map((e: any) => e.node.itemKey).sort()).toEqual(lost.map((id) => `candidate:${id}`).sort());
    const [{ n }] = await app.ds.query(`SELECT count(*)::int AS n FROM scores WHERE candidate_id = ANY($1::uuid[])`, [lost]);
    expect(n).toBe(0);
  });

  it('records NaN scores as failures, not values', async () => {
    // A selector that scores NaN for dark images; registered before the project has candidates, so its dry run uses a neutral grey sample.
    const faulty = await createTestProject(app, 'scoring-nan');
    const registered = await registerSelector(app, faulty.keys.CURATOR, 'nan-on-dark', referenceSelectorUpload({ nanBelowMeanPixel: 0 }), { activate: true });
    expect(registered.data!.registerSelectorModel.userErrors).toEqual([]);
    const { imageIds: faultyImages } = await seedPipeline(app, faulty, { demonstrations: false });
    const ids = await seedCandidates(app, faulty, faultyImages, 2);
    const res = await gql(app.graphqlUrl, faulty.keys.CURATOR, START_SCORING, { input: {} });
    const finished = await waitForRun(app, faulty.keys.VIEWER, res.data!.startScoringRun.run.id);
    // Of the five shared figures only the CT (synpic42202.jpg) has a mean normalised pixel below zero.
    expect(finished).toMatchObject({ status: 'SUCCEEDED', total: ids.length, done: ids.length - 2, failed: 2, lastError: 'The selector gave a non-finite score (NaN)' });
    const stored: { value: number }[] = await app.ds.query(`SELECT value FROM scores WHERE project_id = $1`, [faulty.id]);
    expect(stored).toHaveLength(ids.length - 2);
    stored.forEach((s) => expect(Number.isFinite(s.value)).toBe(true));
  });

  it('answers input errors and other projects with codes, and is for curators', async () => {
    const asClinician = await gql(app.graphqlUrl, lab.keys.CLINICIAN, START_SCORING, { input: {} });
    expect(errorCodes(asClinician)).toEqual(['FORBIDDEN']);
    const otherSelector = await gql(app.graphqlUrl, other.keys.CURATOR, START_SCORING, { input: { selectorModelId: selectorGlobalId(selectorId) } });
    expect(otherSelector.data!.startScoringRun.userErrors).toEqual([expect.objectContaining({ code: 'NOT_FOUND', field: ['input', 'selectorModelId'] })]);
    const noActive = await gql(app.graphqlUrl, other.keys.CURATOR, START_SCORING, { input: {} });
    expect(noActive.data!.startScoringRun.userErrors).toEqual([expect.objectContaining({ code: 'NOT_FOUND' })]);
    const otherCandidates = await gql(app.graphqlUrl, other.keys.CURATOR, START_SCORING, { input: { candidates: { candidateIds: [toGlobalId('Candidate', candidateIds[0])] } } });
    expect(otherCandidates.data!.startScoringRun.userErrors[0]?.code).toBe('NOT_FOUND');
    const [scoringRun] = await app.ds.query(`SELECT id FROM runs WHERE project_id = $1 AND kind = 'SCORING' LIMIT 1`, [lab.id]);
    const peek = await gql(app.graphqlUrl, other.keys.OWNER, `query($id: ID!) { node(id: $id) { id } }`, { id: toGlobalId('Run', scoringRun.id) });
    expect(errorCodes(peek)).toEqual(['NOT_FOUND']);
    const badBatch = await gql(app.graphqlUrl, lab.keys.CURATOR, START_SCORING, { input: { batchSize: 0 } });
    expect(badBatch.errors).toBeUndefined();
    expect(badBatch.data!.startScoringRun.userErrors).toEqual([expect.objectContaining({ code: 'INVALID', field: ['input', 'batchSize'] })]);
  });
});
