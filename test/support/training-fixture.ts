import { buildReferenceEncoder, ReferenceEncoderOptions } from '../../src/modules/encoders/reference-encoder';
import { toGlobalId } from '../../src/platform/ids';
import sharp from 'sharp';
import { TestApp, TestProject } from './test-app';
import { gqlUpload, GraphQLResponse, UploadFile } from './graphql-client';

export interface EncoderUpload {
  model?: Buffer;
  tokenizer?: Buffer;
  manifest?: Buffer;
}

const built = new Map<string, Required<EncoderUpload>>();

/** The reference encoder's three files as bytes, ready to upload (built once per options). */
export function referenceEncoderUpload(options: ReferenceEncoderOptions = {}): Required<EncoderUpload> {
  const key = JSON.stringify(options);
  if (!built.has(key)) {
    const files = buildReferenceEncoder(options);
    built.set(key, { model: files.model, tokenizer: Buffer.from(files.tokenizer), manifest: Buffer.from(JSON.stringify(files.manifest, null, 2)) });
  }
  return { ...built.get(key)! };
}

export const REGISTER_ENCODER = `mutation($input: RegisterEncoderModelInput!) {
  registerEncoderModel(input: $input) {
    encoderModel { id name version imageDim textDim filesHash manifest signature storedEmbeddings { images texts } }
    userErrors { field message code }
  }
}`;

/** registerEncoderModel as a GraphQL multipart request, the way a notebook uploads files. */
export async function registerEncoder(app: TestApp, key: string, name: string, upload: EncoderUpload): Promise<GraphQLResponse> {
  const files: UploadFile[] = [];
  const input: Record<string, unknown> = { name };
  for (const [field, fileName] of [['model', 'model.onnx'], ['tokenizer', 'tokenizer.json'], ['manifest', 'encoder.json']] as const) {
    const bytes = upload[field];
    if (!bytes) continue;
    input[field] = null;
    files.push({ path: `input.${field}`, name: fileName, bytes });
  }
  return gqlUpload(app.graphqlUrl, key, REGISTER_ENCODER, { input }, files);
}

export const encoderGlobalId = (id: string) => toGlobalId('EncoderModel', id);


/** A distinct small PNG per seed: a gradient and a seed-placed block. */
export function syntheticFigure(seed: number): Promise<Buffer> {
  const width = 96;
  const height = 72;
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i += 3) {
      const inBlock = Math.abs(x - ((seed * 37) % width)) < 12 && Math.abs(y - ((seed * 53) % height)) < 9;
      raw[i] = inBlock ? 240 : (x * 255) / width;
      raw[i + 1] = inBlock ? 30 : (y * 255) / height;
      raw[i + 2] = (seed * 41) % 256;
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

const FINDINGS = ['a hyperintense lesion', 'a consolidation', 'a hypodense mass', 'glandular tissue', 'an enlarged lymph node', 'a pleural effusion'];
const REGIONS = ['left frontal lobe', 'right lower lobe', 'liver', 'upper mediastinum', 'posterior fossa', 'renal cortex'];
const POOR = ['Not sure.', 'It is an image.', 'Cannot tell from this.', 'Maybe something, hard to say.', 'No idea, sorry.', 'Looks normal I guess.'];

export interface PreferenceWorld {
  imageIds: string[];
  candidateIds: string[];
  /** Model rating pairs and clinician pairwise choices written. */
  modelJudgements: number;
  clinicianChoices: number;
}

/**
 * A small world where answer quality is known: each round of each two-answer candidate has one
 * specific, image-grounded answer and one vague one (which is A alternates). The judge rates the
 * good answer 8 and the vague 3 (one model pair per round); the clinician prefers the good answer
 * in a pairwise choice on the first `clinicianRounds` rounds of each candidate. Inserted with SQL
 * (test data, not the API), so hundreds of judgements take one statement.
 */
export async function seedPreferenceWorld(app: TestApp, project: TestProject, options: { images: number; candidatesPerImage: number; rounds: number; clinicianRounds: number; seedOffset?: number }): Promise<PreferenceWorld> {
  const ctx = project.ctx();
  const imageIds: string[] = [];
  for (let i = 0; i < options.images; i++) {
    const seed = i + 1 + (options.seedOffset ?? 0);
    const image = await app.services.images.upload(ctx, await syntheticFigure(seed), `figure-${seed}.png`, { caption: `Synthetic figure ${seed}: ${FINDINGS[seed % FINDINGS.length]} in the ${REGIONS[seed % REGIONS.length]}.` });
    imageIds.push(image.id);
  }
  const rows: { imageId: string; sample: number; rounds: string }[] = [];
  const good: number[][] = [];
  imageIds.forEach((imageId, i) => {
    for (let s = 0; s < options.candidatesPerImage; s++) {
      const rounds = [];
      const goodIndex: number[] = [];
      for (let r = 0; r < options.rounds; r++) {
        const k = i * 7 + s * 3 + r;
        const specific = `The image shows ${FINDINGS[k % FINDINGS.length]} in the ${REGIONS[(k + 2) % REGIONS.length]}, with well-defined margins and surrounding edema.`;
        const vague = POOR[k % POOR.length];
        const g = (i + s + r) % 2;
        goodIndex.push(g);
        rounds.push({ question: `What does region ${r + 1} show?`, answers: g === 0 ? [specific, vague] : [vague, specific] });
      }
      good.push(goodIndex);
      rows.push({ imageId, sample: s, rounds: JSON.stringify(rounds) });
    }
  });
  const inserted: { id: string }[] = await app.ds.query(
    `INSERT INTO candidates (project_id, image_id, sample_index, status, form, rounds, model)
     SELECT $1, r.image_id, r.sample, 'OK', 'TWO_ANSWERS', r.rounds, 'fixture' FROM unnest($2::uuid[], $3::int[], $4::jsonb[]) WITH ORDINALITY AS r(image_id, sample, rounds, n)
     ORDER BY r.n RETURNING id`,
    [project.id, rows.map((r) => r.imageId), rows.map((r) => r.sample), rows.map((r) => r.rounds)],
  );
  const candidateIds = inserted.map((r) => r.id);
  const ratings: [string, number, number, number][] = [];
  const choices: [string, number, string][] = [];
  candidateIds.forEach((id, c) => {
    for (let r = 0; r < options.rounds; r++) {
      const g = good[c][r];
      ratings.push([id, r, g, 8], [id, r, 1 - g, 3]);
      if (r < options.clinicianRounds) choices.push([id, r, g === 0 ? 'A' : 'B']);
    }
  });
  await app.ds.query(
    `INSERT INTO preferences (project_id, candidate_id, source, kind, judge_model, round_index, answer_index, rating, rubric_version)
     SELECT $1, r.c, 'MODEL', 'RATING', 'fixture-judge', r.round, r.answer, r.rating, 'v1' FROM unnest($2::uuid[], $3::int[], $4::int[], $5::float8[]) AS r(c, round, answer, rating)`,
    [project.id, ratings.map((r) => r[0]), ratings.map((r) => r[1]), ratings.map((r) => r[2]), ratings.map((r) => r[3])],
  );
  await app.ds.query(
    `INSERT INTO preferences (project_id, candidate_id, source, kind, annotator_id, round_index, choice)
     SELECT $1, r.c, 'CLINICIAN', 'PAIRWISE', $2, r.round, r.choice::pairwise_choice FROM unnest($3::uuid[], $4::int[], $5::text[]) AS r(c, round, choice)`,
    [project.id, project.userIds.CLINICIAN, choices.map((r) => r[0]), choices.map((r) => r[1]), choices.map((r) => r[2])],
  );
  return { imageIds, candidateIds, modelJudgements: ratings.length / 2, clinicianChoices: choices.length };
}

export const START_TRAINING = `mutation($input: StartTrainingRunInput!) {
  startTrainingRun(input: $input) { run { id kind status total done failed params } userErrors { field message code } }
}`;

/** A run read with TRAINING_DETAILS, its selectors connection flattened to a list. */
export function flattenTrainingDetails(run: Record<string, any>): Record<string, any> {
  if (run?.training?.selectors?.edges) run.training.selectors = run.training.selectors.edges.map((e: { node: unknown }) => e.node);
  return run;
}

export const TRAINING_DETAILS = `query($id: ID!) { node(id: $id) { ... on Run { id status total done failed lastError metrics
  training { clinicianWeights selectorName seed dataHash validationImageIds
    pairCounts { model clinician validation droppedModelPairs droppedClinicianPairs withoutEmbeddings }
    epochs { clinicianWeight epoch trainingLoss trainingAlignment validationAlignment steps }
    encoder { id name }
    selectors(first: 20) { totalCount edges { node { id name version active clinicianWeight filesHash metrics training trainingRun { id } } } } } } } }`;
