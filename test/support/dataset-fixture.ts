import crypto from 'node:crypto';
import { DataSource } from 'typeorm';
import type { StoredRound } from '../../src/modules/candidates/conversation';
import { SHARED_IMAGE_NAMES, readSharedImage } from './shared-data';
import { seedPipeline } from './pipeline-fixture';
import { TestApp, TestProject } from './test-app';

/**
 * Datasets written straight into the tables, as the selection will write them, so that exports are
 * tested on known rows: a small hand-made one covering every preference rule, and a bulk one made
 * with set-based SQL for volume (tests of disconnects, and bench:export).
 */

export interface FixtureImage {
  id: string;
  contentHash: string | null;
  mimeType: string | null;
  /** The bytes uploaded, for images that have some in storage. */
  bytes: Buffer | null;
}

export interface FixtureCandidate {
  id: string;
  imageId: string;
  rounds: StoredRound[];
  /** Rank in the dataset; null for the candidate kept out of it. */
  rank: number | null;
}

export interface DatasetFixture {
  datasetId: string;
  emptyDatasetId: string;
  name: string;
  version: number;
  /** I0..I4 the five shared images; I5 a record without a file; I6 a hash whose bytes are not in storage. */
  images: FixtureImage[];
  /** C0..C13: candidates 2k and 2k+1 are about image k. */
  candidates: FixtureCandidate[];
  /** X: about image I4 like C8 and C9, not in the dataset. */
  outside: FixtureCandidate;
}

export const FIXTURE_DATASET_NAME = 'BioMed VITAL top 80%';
export const FIXTURE_DATASET_VERSION = 3;
/** Rank of C0..C13 in the dataset. */
export const FIXTURE_RANKS = [5, 12, 1, 9, 3, 14, 7, 2, 11, 6, 13, 4, 10, 8];
/** C13 has one answer per question. */
const SINGLE_ANSWER = 13;

type Row = Record<string, unknown>;

async function insert(ds: DataSource, table: string, row: Row): Promise<string> {
  const columns = Object.keys(row);
  const rows: { id: string }[] = await ds.query(
    `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((_c, i) => `$${i + 1}`).join(', ')}) RETURNING id`,
    Object.values(row),
  );
  return rows[0].id;
}

function roundsOf(i: number): StoredRound[] {
  const count = 3 + (i % 2);
  return Array.from({ length: count }, (_, r) => ({
    // C6 and C7 open with the same question (and answer it differently).
    question: i === 6 || i === 7 ? 'What imaging modality is shown?' : `C${i} question ${r}: what does the highlighted region show?`,
    answers: i === SINGLE_ANSWER ? [`C${i} r${r} the only answer.`] : [`C${i} r${r} answer A: a finding "quoted" and described.`, `C${i} r${r} answer B: another reading.`],
  }));
}

/**
 * The hand-made dataset. Preferences (clinicians are the project's CLINICIAN, OWNER and CURATOR
 * users; models are judge names), per candidate and round:
 * - C0 r0 clinician PAIRWISE B → B. r1 clinician TIE, model rates A higher → no pair. r2 model rates B higher → B.
 * - C1 r0 clinician ACCEPTANCE A yes, B no; model rates B higher → A (clinician). r1 model equal ratings → none.
 * - C2 r0 clinician RATING A 9 > B 4 and PAIRWISE A → A, 2 votes. r1 two clinicians A and B, model A → none.
 * - C3 r0 one clinician PAIRWISE A, later B → B (latest counts).
 * - C4 r0 clinician accepts A only (compares nothing); model rates B higher → B (model).
 * - C5 r1 three judge models, two for A, one for B → A, votes 2:1.
 * - C13 r0 model rates its only answer → none. X r0 model ratings → none (X is not in the dataset).
 * - C6 vs C7 clinician prefers C7 (stored on C6's side) → one pair, written with C7 (better rank).
 * - X vs C8 model prefers X (stored on X's side) → a pair at C8, X chosen.
 * - C9 vs C10 (different images) → none. C10 vs C11 clinician TIE → none.
 */
export async function seedDatasetFixture(app: TestApp, project: TestProject): Promise<DatasetFixture> {
  const ds = app.ds;
  const { imageIds } = await seedPipeline(app, project, { demonstrations: false });
  const uploaded: { id: string; content_hash: string; mime_type: string }[] = await ds.query(
    `SELECT id, content_hash, mime_type FROM images WHERE id = ANY($1::uuid[])`,
    [imageIds],
  );
  const images: FixtureImage[] = imageIds.map((id, k) => {
    const row = uploaded.find((u) => u.id === id)!;
    return { id, contentHash: row.content_hash, mimeType: row.mime_type, bytes: readSharedImage(SHARED_IMAGE_NAMES[k]) };
  });
  const recordOnly = await insert(ds, 'images', { project_id: project.id, source: 'IMPORT', pair_id: 'fixture_record_only', caption: 'A figure known by its record only', modalities: ['CT'] });
  images.push({ id: recordOnly, contentHash: null, mimeType: null, bytes: null });
  const lostHash = crypto.createHash('sha256').update('bytes that were never stored').digest('hex');
  const lost = await insert(ds, 'images', { project_id: project.id, source: 'UPLOAD', caption: 'A figure whose bytes are gone', content_hash: lostHash, mime_type: 'image/jpeg', modalities: ['MRI'] });
  images.push({ id: lost, contentHash: lostHash, mimeType: 'image/jpeg', bytes: null });

  const candidates: FixtureCandidate[] = [];
  for (let i = 0; i < 14; i++) {
    const rounds = roundsOf(i);
    const imageId = images[Math.floor(i / 2)].id;
    const id = await insert(ds, 'candidates', {
      project_id: project.id,
      image_id: imageId,
      status: 'OK',
      form: i === SINGLE_ANSWER ? 'SINGLE_ANSWER' : 'TWO_ANSWERS',
      rounds: JSON.stringify(rounds),
      sample_index: i % 2,
      model: 'gpt-4o',
      prompt_template_version: 'generation/v1',
    });
    candidates.push({ id, imageId, rounds, rank: FIXTURE_RANKS[i] });
  }
  const outsideRounds: StoredRound[] = [
    { question: 'X question 0: which lesion is visible?', answers: ['X r0 answer A.', 'X r0 answer B.'] },
    { question: 'X question 1: where is it?', answers: ['X r1 answer A.', 'X r1 answer B.'] },
  ];
  const outsideId = await insert(ds, 'candidates', { project_id: project.id, image_id: images[4].id, status: 'OK', form: 'TWO_ANSWERS', rounds: JSON.stringify(outsideRounds), sample_index: 2 });
  const outside: FixtureCandidate = { id: outsideId, imageId: images[4].id, rounds: outsideRounds, rank: null };

  const name = FIXTURE_DATASET_NAME;
  const version = FIXTURE_DATASET_VERSION;
  const datasetId = await insert(ds, 'datasets', { project_id: project.id, name, version, rule: JSON.stringify({ topFraction: 0.8 }), item_count: candidates.length });
  for (const [i, c] of candidates.entries()) {
    await insert(ds, 'dataset_items', { project_id: project.id, dataset_id: datasetId, candidate_id: c.id, rank: c.rank, score: 1 - FIXTURE_RANKS[i] / 100 });
  }
  const emptyDatasetId = await insert(ds, 'datasets', { project_id: project.id, name: 'empty', version: 1, rule: JSON.stringify({}) });

  // Preferences, created one second apart in the order written (the latest judgement of an author counts).
  let second = 0;
  const C = candidates.map((c) => c.id);
  const clinician = project.userIds.CLINICIAN;
  const owner = project.userIds.OWNER;
  const curator = project.userIds.CURATOR;
  const pref = (row: Row) =>
    insert(ds, 'preferences', { project_id: project.id, created_at: new Date(Date.UTC(2025, 0, 1, 0, 0, second++)), ...row });
  const clin = (candidateId: string, annotatorId: string, row: Row) => pref({ candidate_id: candidateId, source: 'CLINICIAN', annotator_id: annotatorId, ...row });
  const model = (candidateId: string, judge: string, row: Row) => pref({ candidate_id: candidateId, source: 'MODEL', judge_model: judge, ...row });
  const pairwise = (roundIndex: number, choice: string) => ({ kind: 'PAIRWISE', round_index: roundIndex, choice });
  const rating = (roundIndex: number, answerIndex: number, value: number) => ({ kind: 'RATING', round_index: roundIndex, answer_index: answerIndex, rating: value, rubric_version: 'rating/v1' });
  const acceptance = (roundIndex: number, answerIndex: number, accepted: boolean) => ({ kind: 'ACCEPTANCE', round_index: roundIndex, answer_index: answerIndex, accepted });

  await clin(C[0], clinician, pairwise(0, 'B'));
  await clin(C[0], clinician, pairwise(1, 'TIE'));
  await model(C[0], 'judge-1', rating(1, 0, 8));
  await model(C[0], 'judge-1', rating(1, 1, 3));
  await model(C[0], 'judge-1', rating(2, 0, 7));
  await model(C[0], 'judge-1', rating(2, 1, 9));

  await clin(C[1], clinician, acceptance(0, 0, true));
  await clin(C[1], clinician, acceptance(0, 1, false));
  await model(C[1], 'judge-1', rating(0, 0, 2));
  await model(C[1], 'judge-1', rating(0, 1, 9));
  await model(C[1], 'judge-1', rating(1, 0, 6));
  await model(C[1], 'judge-1', rating(1, 1, 6));

  await clin(C[2], clinician, rating(0, 0, 9));
  await clin(C[2], clinician, rating(0, 1, 4));
  await clin(C[2], clinician, pairwise(0, 'A'));
  await clin(C[2], clinician, pairwise(1, 'A'));
  await clin(C[2], owner, pairwise(1, 'B'));
  await model(C[2], 'judge-1', rating(1, 0, 9));
  await model(C[2], 'judge-1', rating(1, 1, 1));

  await clin(C[3], clinician, pairwise(0, 'A'));
  await clin(C[3], clinician, pairwise(0, 'B'));

  await clin(C[4], curator, acceptance(0, 0, true));
  await model(C[4], 'judge-1', rating(0, 0, 3));
  await model(C[4], 'judge-1', rating(0, 1, 8));

  for (const [judge, a, b] of [['judge-1', 8, 5], ['judge-2', 4, 6], ['judge-3', 9, 2]] as const) {
    await model(C[5], judge, rating(1, 0, a));
    await model(C[5], judge, rating(1, 1, b));
  }

  await model(C[13], 'judge-1', rating(0, 0, 8));
  await model(outside.id, 'judge-1', rating(0, 0, 1));
  await model(outside.id, 'judge-1', rating(0, 1, 9));

  await clin(C[6], clinician, { kind: 'PAIRWISE', other_candidate_id: C[7], choice: 'B' });
  await model(outside.id, 'judge-1', { kind: 'PAIRWISE', other_candidate_id: C[8], choice: 'A' });
  await clin(C[9], clinician, { kind: 'PAIRWISE', other_candidate_id: C[10], choice: 'A' });
  await clin(C[10], clinician, { kind: 'PAIRWISE', other_candidate_id: C[11], choice: 'TIE' });

  return { datasetId, emptyDatasetId, name, version, images, candidates, outside };
}

export interface BulkDatasetOptions {
  /** Items in the dataset (one candidate each). */
  items: number;
  /** Distinct images the candidates are about (several candidates per image). */
  images: number;
  /** Prefix of pair ids and dataset name; one project may hold several bulk datasets. */
  tag: string;
  /** Model ratings of both answers of every round, and a clinician pairwise choice on one round in 20. */
  preferences?: boolean;
}

const FILLER =
  'The figure demonstrates a well-circumscribed lesion with heterogeneous enhancement and surrounding oedema; ' +
  'the margins are smooth, there is no evidence of calcification, and the adjacent structures are displaced rather than infiltrated. ';

/**
 * A dataset of `items` candidates about `images` record-only images with fake content hashes (the
 * text exports never read bytes), 4 or 5 rounds each with two answers of realistic length, all in
 * a handful of set-based statements. Returns the dataset id.
 */
export async function seedBulkDataset(ds: DataSource, projectId: string, options: BulkDatasetOptions): Promise<string> {
  const { items, images, tag } = options;
  await ds.query(
    `INSERT INTO images (project_id, source, pair_id, pmid, caption, mentions, modalities, content_hash, mime_type, width, height, byte_size)
     SELECT $1, 'IMPORT', $2 || '_' || g, (30000000 + g)::text,
            'Figure ' || g || '. ' || $4, ARRAY['As shown in Figure ' || g || ', the lesion is well circumscribed.'],
            ARRAY[(ARRAY['CT','MRI','CHEST_XRAY','HISTOLOGY','GROSS','OTHER'])[1 + g % 6]]::modality[],
            encode(sha256(convert_to($2 || ':' || g, 'UTF8')), 'hex'), 'image/png', 512, 512, 120000
       FROM generate_series(0, $3 - 1) g`,
    [projectId, tag, images, FILLER],
  );
  const [{ id: datasetId }]: { id: string }[] = await ds.query(
    `INSERT INTO datasets (project_id, name, version, rule, item_count) VALUES ($1, $2, 1, '{"bulk": true}', $3) RETURNING id`,
    [projectId, tag, items],
  );
  await ds.query(
    `WITH imgs AS (
       SELECT id, (row_number() OVER (ORDER BY pair_id) - 1)::int AS n FROM images WHERE project_id = $1 AND pair_id LIKE $2 || '\\_%'
     ),
     made AS (
       INSERT INTO candidates (project_id, image_id, status, form, rounds, model, prompt_template_version, sample_index, prompt_tokens, completion_tokens)
       SELECT $1, imgs.id, 'OK', 'TWO_ANSWERS',
              (SELECT jsonb_agg(jsonb_build_object(
                        'question', format('Question %s about figure %s: what does the region marked by the arrow show, and how does it relate to the caption?', r, g),
                        'answers', jsonb_build_array(
                          format('Answer A to question %s of candidate %s. ', r, g) || repeat($5, 2),
                          format('Answer B to question %s of candidate %s. ', r, g) || $5))
                      ORDER BY r)
                 FROM generate_series(0, 3 + g % 2) r),
              'gpt-4o', 'generation/v1', g / $4, 1800, 900
         FROM generate_series(0, $3 - 1) g JOIN imgs ON imgs.n = g % $4
       RETURNING id
     )
     INSERT INTO dataset_items (project_id, dataset_id, candidate_id, rank, score)
     SELECT $1, $6, id, rank, 1 - rank::float8 / $3
       FROM (SELECT id, row_number() OVER (ORDER BY id) AS rank FROM made) ranked`,
    [projectId, tag, items, images, FILLER, datasetId],
  );
  if (options.preferences) {
    await ds.query(
      `INSERT INTO preferences (project_id, candidate_id, source, kind, judge_model, round_index, answer_index, rating, rubric_version)
       SELECT $1, c.id, 'MODEL', 'RATING', 'judge-1', r, a, ((hashtext(c.id::text || r || a) & 1023) % 11), 'rating/v1'
         FROM dataset_items di JOIN candidates c ON c.id = di.candidate_id
        CROSS JOIN LATERAL generate_series(0, jsonb_array_length(c.rounds) - 1) r
        CROSS JOIN generate_series(0, 1) a
        WHERE di.dataset_id = $2`,
      [projectId, datasetId],
    );
    const [{ user_id: annotator }]: { user_id: string }[] = await ds.query(`SELECT user_id FROM memberships WHERE project_id = $1 LIMIT 1`, [projectId]);
    await ds.query(
      `INSERT INTO preferences (project_id, candidate_id, source, kind, annotator_id, round_index, choice)
       SELECT $1, di.candidate_id, 'CLINICIAN', 'PAIRWISE', $3, 0, (CASE WHEN di.rank % 2 = 0 THEN 'A' ELSE 'B' END)::pairwise_choice
         FROM dataset_items di WHERE di.dataset_id = $2 AND di.rank % 20 = 0`,
      [projectId, datasetId, annotator],
    );
  }
  return datasetId;
}
