import type { DataSource } from 'typeorm';
import { startTestApp, createTestProject, TestApp, TestProject } from '../support/test-app';
import { DatasetFixture, seedBulkDataset, seedDatasetFixture } from '../support/dataset-fixture';
import { datasetExportPath } from '../../src/modules/datasets/dataset-exports.routes';
import { itemsQuery, streamRows, trlQuery } from '../../src/modules/datasets/dataset-exports.service';
import { buildPreferencePairs, ExportItemRow, toJsonlRecord, toLlavaSample, toTrlRecord, TrlSourceRow } from '../../src/modules/datasets/dataset-export.format';
import type { StoredRound } from '../../src/modules/candidates/conversation';

/**
 * The LLaVA JSON and JSONL exports are written by Postgres (dataset-export.lines.ts, issue 14), the
 * TRL pairs by `trlLines` without record objects. Their bytes must be those the JavaScript builders
 * give (`JSON.stringify(toLlavaSample(row))`, `JSON.stringify(toTrlRecord(pair))`: the paths they
 * replaced, kept as the formats' definition): compared here byte for byte on the
 * hand-made fixture, a bulk dataset, and rows made to find where the two could part: every JSON
 * escape, non-ASCII text, empty and missing answers, null fields, image types outside the table,
 * and scores that Postgres and JavaScript format differently.
 */
type Format = 'llava.json' | 'jsonl' | 'trl.jsonl';

describe('dataset exports written by Postgres equal the JavaScript builder byte for byte', () => {
  let app: TestApp;
  let lab: TestProject;
  let fx: DatasetFixture;
  let bulkId: string;
  let trickyId: string;

  /** The replaced path: item rows read as before, each record built and serialised in JavaScript. */
  async function builtInJavaScript(ds: DataSource, datasetId: string, format: Format): Promise<Buffer> {
    const parts: string[] = [];
    if (format === 'trl.jsonl') {
      for await (const row of streamRows<TrlSourceRow>(ds, trlQuery(datasetId, lab.id), new AbortController().signal, 7)) {
        for (const pair of buildPreferencePairs(row)) parts.push(JSON.stringify(toTrlRecord(pair)) + '\n');
      }
      return Buffer.from(parts.join(''), 'utf8');
    }
    let first = true;
    if (format === 'llava.json') parts.push('[');
    for await (const row of streamRows<ExportItemRow>(ds, itemsQuery(datasetId, lab.id), new AbortController().signal, 7)) {
      if (format === 'llava.json') parts.push((first ? '\n' : ',\n') + JSON.stringify(toLlavaSample(row)));
      else parts.push(JSON.stringify(toJsonlRecord(row)) + '\n');
      first = false;
    }
    if (format === 'llava.json') parts.push(first ? ']\n' : '\n]\n');
    return Buffer.from(parts.join(''), 'utf8');
  }

  const download = async (datasetId: string, format: Format) => {
    const res = await fetch(`${app.url}${datasetExportPath(datasetId, format)}`, { headers: { authorization: `Bearer ${lab.keys.VIEWER}` } });
    expect(res.status).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  };

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'export-lines');
    fx = await seedDatasetFixture(app, lab);
    bulkId = await seedBulkDataset(app.ds, lab.id, { items: 450, images: 30, tag: 'lines', preferences: true });
    trickyId = await seedTrickyDataset(app.ds, lab.id);
  });
  afterAll(async () => {
    await app?.stop();
  });

  for (const format of ['llava.json', 'jsonl', 'trl.jsonl'] as const) {
    it(`${format}: the hand-made fixture, a bulk dataset, and an empty one`, async () => {
      for (const datasetId of [fx.datasetId, bulkId, fx.emptyDatasetId]) {
        const expected = await builtInJavaScript(app.ds, datasetId, format);
        const actual = await download(datasetId, format);
        expect(actual.length).toBe(expected.length);
        expect(actual.equals(expected)).toBe(true);
      }
    });

    it(`${format}: escapes, non-ASCII text, missing answers, nulls, odd image types and scores`, async () => {
      const expected = await builtInJavaScript(app.ds, trickyId, format);
      const actual = await download(trickyId, format);
      // Line by line first, so that a failure shows the record that differs.
      expect(actual.toString('utf8').split('\n')).toEqual(expected.toString('utf8').split('\n'));
      expect(actual.equals(expected)).toBe(true);
    });
  }

  it('the tricky dataset holds what it is meant to (so the comparison above is not vacuous)', async () => {
    const text = (await download(trickyId, 'jsonl')).toString('utf8');
    const records = text.trim().split('\n').map((line) => JSON.parse(line));
    expect(records).toHaveLength(TRICKY_SCORES.length);
    expect(text).toContain('\\u0001\\u001f\\b\\f\\n\\r\\t\\"\\\\/');
    expect(text).toContain('😀');
    expect(text).toContain('0.00001');
    expect(text).toContain('1e+21');
    expect(records.map((r) => r.image)).toEqual(expect.arrayContaining([null, expect.stringMatching(/\.tif$/), expect.stringMatching(/\.bin$/)]));
    expect(records.some((r) => r.generation_run_id !== null)).toBe(true);
    expect(records.some((r) => r.conversations.length === 0)).toBe(true);
    const pairs = (await download(trickyId, 'trl.jsonl')).toString('utf8').trim().split('\n').map((line) => JSON.parse(line));
    expect(pairs.filter((p) => p.round !== null).length).toBeGreaterThan(2);
    expect(pairs.filter((p) => p.other_candidate_id !== null).length).toBe(1);
    expect(JSON.stringify(pairs)).toContain('😀');
  });
});

/** Scores Postgres would print differently (exponents, digits), and null. */
const TRICKY_SCORES = [0.1 + 0.2, 1e-5, 1.5e-7, 1e21, 123456789.123, -0.5, 0, null, 2 / 3, 5e-324];
const ESCAPES = '\u0001\u001f\b\f\n\r\t"\\/';
const UNICODE = 'é 漢字 😀 \u2028\u2029 \u007f ﬁ';

function trickyRounds(k: number): StoredRound[] {
  const variants: StoredRound[][] = [
    [{ question: `q ${ESCAPES}`, answers: [`a ${UNICODE}`, `b ${ESCAPES}${UNICODE}`] }],
    [
      { question: UNICODE, answers: ['only one'] },
      { question: '', answers: [] },
      { question: 'third', answers: ['', ''] },
    ],
    [],
    [{ question: '<image>\nalready tagged', answers: ['x', 'y'] }, { question: 'second', answers: ['p', 'q'] }],
  ];
  return variants[Math.floor(k / 2) % variants.length];
}

async function seedTrickyDataset(ds: DataSource, projectId: string): Promise<string> {
  // A finished generation run, for candidates' generation_run_id (a finished run has nothing to do; no worker runs here).
  const [run]: { id: string }[] = await ds.query(
    `INSERT INTO runs (project_id, kind, status, started_at, finished_at) VALUES ($1, 'GENERATION', 'SUCCEEDED', now(), now()) RETURNING id`,
    [projectId],
  );
  const imageRows: [string | null, string | null, string | null, string | null, number | null][] = [
    // content_hash, mime_type, pmid, fig_label, cluster_id
    ['a'.repeat(64), 'image/tiff', null, null, 3],
    ['b'.repeat(64), 'image/x-portable-anymap', '42', `Fig. ${ESCAPES}`, null],
    [null, null, null, 'Figure 2', 0],
    ['c'.repeat(64), null, '7', UNICODE, 12],
  ];
  const imageIds: string[] = [];
  for (const [k, [hash, mime, pmid, figLabel, cluster]] of imageRows.entries()) {
    const [{ id }]: { id: string }[] = await ds.query(
      `INSERT INTO images (project_id, source, pair_id, pmid, fig_label, caption, mentions, modalities, content_hash, mime_type, cluster_id)
       VALUES ($1, 'IMPORT', $2, $3, $4, $5, $6, $7::modality[], $8, $9, $10) RETURNING id`,
      [projectId, k === 2 ? null : `tricky_${k}`, pmid, figLabel, `Caption ${k} ${k % 2 ? UNICODE : ESCAPES}`, k === 1 ? [] : [`mention ${ESCAPES}`, UNICODE], k === 3 ? [] : ['CT', 'MRI'], hash, mime, cluster],
    );
    imageIds.push(id);
  }
  const candidateIds: string[] = [];
  const [{ id: datasetId }]: { id: string }[] = await ds.query(
    `INSERT INTO datasets (project_id, name, version, rule, item_count) VALUES ($1, 'tricky', 1, '{}', $2) RETURNING id`,
    [projectId, TRICKY_SCORES.length],
  );
  for (const [k, score] of TRICKY_SCORES.entries()) {
    const [{ id }]: { id: string }[] = await ds.query(
      `INSERT INTO candidates (project_id, image_id, run_id, status, form, rounds, model, prompt_template_version, sample_index)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id`,
      [
        projectId,
        imageIds[k % imageIds.length],
        k % 2 ? run.id : null,
        'OK',
        k % 3 ? 'TWO_ANSWERS' : 'SINGLE_ANSWER',
        JSON.stringify(trickyRounds(k)),
        k % 4 ? `model ${UNICODE}` : null,
        k % 5 ? null : 'generation/v1',
        k,
      ],
    );
    await ds.query(`INSERT INTO dataset_items (project_id, dataset_id, candidate_id, rank, score) VALUES ($1, $2, $3, $4, $5)`, [projectId, datasetId, id, k + 1, score]);
    candidateIds.push(id);
  }
  // Model ratings of every answer (pairs where they differ), and one comparison of two whole conversations about one figure.
  await ds.query(
    `INSERT INTO preferences (project_id, candidate_id, source, kind, judge_model, round_index, answer_index, rating, rubric_version)
     SELECT $1, c.id, 'MODEL', 'RATING', 'judge-1', r, a, (di.rank + r * 3 + a * 5) % 11, 'rating/v1'
       FROM dataset_items di JOIN candidates c ON c.id = di.candidate_id
      CROSS JOIN LATERAL generate_series(0, jsonb_array_length(c.rounds) - 1) r
      CROSS JOIN generate_series(0, 1) a
      WHERE di.dataset_id = $2`,
    [projectId, datasetId],
  );
  await ds.query(
    `INSERT INTO preferences (project_id, candidate_id, other_candidate_id, source, kind, judge_model, choice) VALUES ($1, $2, $3, 'MODEL', 'PAIRWISE', 'judge-1', 'B')`,
    [projectId, candidateIds[3], candidateIds[7]],
  );
  return datasetId;
}
