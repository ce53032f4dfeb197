import { buildReferenceSelector, ReferenceSelectorOptions } from '../../src/modules/selectors/reference-selector';
import { toGlobalId } from '../../src/platform/ids';
import { TestApp, TestProject } from './test-app';
import { gqlUpload, GraphQLResponse, UploadFile } from './graphql-client';
import { readDemonstrations } from './shared-data';

export interface SelectorUpload {
  model?: Buffer;
  tokenizer?: Buffer;
  manifest?: Buffer;
}

const built = new Map<string, Required<SelectorUpload>>();

/** The reference selector's three files as bytes, ready to upload (built once per options). */
export function referenceSelectorUpload(options: ReferenceSelectorOptions = {}): Required<SelectorUpload> {
  const key = JSON.stringify(options);
  if (!built.has(key)) {
    const files = buildReferenceSelector(options);
    built.set(key, { model: files.model, tokenizer: Buffer.from(files.tokenizer), manifest: Buffer.from(JSON.stringify(files.manifest, null, 2)) });
  }
  return { ...built.get(key)! };
}

export const REGISTER_SELECTOR = `mutation($input: RegisterSelectorModelInput!) {
  registerSelectorModel(input: $input) {
    selectorModel { id name version active filesHash manifest signature dryRunScore modelBytes }
    userErrors { field message code }
  }
}`;

/** registerSelectorModel as a GraphQL multipart request, the way a notebook uploads files. */
export async function registerSelector(app: TestApp, key: string, name: string, upload: SelectorUpload, extra: Record<string, unknown> = {}, fileOrder: 'as-listed' | 'reversed' = 'as-listed'): Promise<GraphQLResponse> {
  const files: UploadFile[] = [];
  const input: Record<string, unknown> = { name, ...extra };
  for (const [field, fileName] of [['model', 'model.onnx'], ['tokenizer', 'tokenizer.json'], ['manifest', 'selector.json']] as const) {
    const bytes = upload[field];
    if (!bytes) continue;
    input[field] = null;
    files.push({ path: `input.${field}`, name: fileName, bytes });
  }
  return gqlUpload(app.graphqlUrl, key, REGISTER_SELECTOR, { input }, fileOrder === 'reversed' ? files.reverse() : files);
}

/** Rounds of the shared clinician demonstrations: real question/answer text for candidates. */
export function demonstrationRounds(): { question: string; answers: string[] }[][] {
  return readDemonstrations().map((record) => {
    const turns: { from: string; value: string }[] = record.conversations;
    const rounds: { question: string; answers: string[] }[] = [];
    for (let i = 0; i + 1 < turns.length; i += 2) rounds.push({ question: turns[i].value.replace('<image>\n', ''), answers: [turns[i + 1].value] });
    return rounds;
  });
}

/**
 * Candidates for the given images, `perImage` each, whose conversations are the shared clinician
 * demonstrations (cycled), inserted in one statement. Returns their ids in insertion order.
 */
export async function seedCandidates(app: TestApp, project: TestProject, imageIds: string[], perImage: number, status = 'OK'): Promise<string[]> {
  const conversations = demonstrationRounds();
  const rows: { imageId: string; sample: number; rounds: string }[] = [];
  imageIds.forEach((imageId, i) => {
    for (let s = 0; s < perImage; s++) rows.push({ imageId, sample: s, rounds: JSON.stringify(conversations[(i * perImage + s) % conversations.length]) });
  });
  const inserted: { id: string }[] = await app.ds.query(
    `INSERT INTO candidates (project_id, image_id, sample_index, status, rounds, model)
     SELECT $1, r.image_id, r.sample, $5::candidate_status, r.rounds, 'fixture' FROM unnest($2::uuid[], $3::int[], $4::jsonb[]) WITH ORDINALITY AS r(image_id, sample, rounds, n)
     ORDER BY r.n RETURNING id`,
    [project.id, rows.map((r) => r.imageId), rows.map((r) => r.sample), rows.map((r) => r.rounds), status],
  );
  return inserted.map((r) => r.id);
}

export const START_SCORING = `mutation($input: StartScoringRunInput!) {
  startScoringRun(input: $input) { run { id kind status total done failed params } userErrors { field message code } }
}`;

export const selectorGlobalId = (id: string) => toGlobalId('SelectorModel', id);
