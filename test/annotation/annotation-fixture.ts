import type { StoredRound } from '../../src/modules/candidates/conversation';
import { RequestContext } from '../../src/modules/projects/request-context';
import { Role } from '../../src/modules/projects/role';
import { toGlobalId } from '../../src/platform/ids';
import { gql, GraphQLResponse } from '../support/graphql-client';
import { TestApp, TestProject } from '../support/test-app';

/**
 * Candidates for annotation campaigns, written straight into the tables as a generation run
 * writes them: `twoAnswer` two-answer candidates of two rounds (one image each) from one SUCCEEDED
 * generation run, ranked in reverse order in a dataset; two single-answer candidates for each of
 * `singlePairs` images; and one PARSE_FAILED candidate that no campaign may take.
 */
export interface AnnotationFixture {
  runId: string;
  datasetId: string;
  /** The two-answer candidates, in creation order. */
  twoAnswerIds: string[];
  /** Single-answer candidates: [a, b] per image. */
  singlePairs: [string, string][];
  failedId: string;
  rounds(candidateId: string): StoredRound[];
}

async function insert(app: TestApp, table: string, row: Record<string, unknown>): Promise<string> {
  const columns = Object.keys(row);
  const rows: { id: string }[] = await app.ds.query(
    `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((_c, i) => `$${i + 1}`).join(', ')}) RETURNING id`,
    Object.values(row),
  );
  return rows[0].id;
}

export async function seedAnnotationFixture(app: TestApp, project: TestProject, sizes: { twoAnswer: number; singlePairs?: number }): Promise<AnnotationFixture> {
  const runId = await insert(app, 'runs', { project_id: project.id, kind: 'GENERATION', status: 'SUCCEEDED', total: sizes.twoAnswer });
  const roundsById = new Map<string, StoredRound[]>();
  const twoAnswerIds: string[] = [];
  let second = 0;
  const createdAt = () => new Date(Date.UTC(2026, 0, 1, 0, 0, second++));
  for (let i = 0; i < sizes.twoAnswer; i++) {
    const imageId = await insert(app, 'images', { project_id: project.id, source: 'IMPORT', caption: `Figure ${i}: a CT of the chest.`, mentions: [`Figure ${i} shows a nodule.`] });
    const rounds: StoredRound[] = [0, 1].map((r) => ({ question: `C${i} q${r}: what is shown?`, answers: [`C${i} r${r} answer A`, `C${i} r${r} answer B`] }));
    const id = await insert(app, 'candidates', { project_id: project.id, image_id: imageId, run_id: runId, status: 'OK', form: 'TWO_ANSWERS', rounds: JSON.stringify(rounds), sample_index: 0, created_at: createdAt() });
    roundsById.set(id, rounds);
    twoAnswerIds.push(id);
  }
  const singlePairs: [string, string][] = [];
  for (let i = 0; i < (sizes.singlePairs ?? 0); i++) {
    const imageId = await insert(app, 'images', { project_id: project.id, source: 'IMPORT', caption: `Single ${i}` });
    const pair: string[] = [];
    for (const sample of [0, 1]) {
      const rounds: StoredRound[] = [{ question: `S${i} question`, answers: [`S${i} sample ${sample} answer`] }];
      const id = await insert(app, 'candidates', { project_id: project.id, image_id: imageId, status: 'OK', form: 'SINGLE_ANSWER', rounds: JSON.stringify(rounds), sample_index: sample, created_at: createdAt() });
      roundsById.set(id, rounds);
      pair.push(id);
    }
    singlePairs.push(pair as [string, string]);
  }
  const failedImage = await insert(app, 'images', { project_id: project.id, source: 'IMPORT', caption: 'Failed' });
  const failedId = await insert(app, 'candidates', { project_id: project.id, image_id: failedImage, run_id: runId, status: 'PARSE_FAILED', form: 'TWO_ANSWERS', raw_output: 'garbled', created_at: createdAt() });
  const datasetId = await insert(app, 'datasets', { project_id: project.id, name: `annotation-${project.slug}`, version: 1, rule: JSON.stringify({}), item_count: twoAnswerIds.length });
  for (const [i, candidateId] of twoAnswerIds.entries()) {
    await insert(app, 'dataset_items', { project_id: project.id, dataset_id: datasetId, candidate_id: candidateId, rank: twoAnswerIds.length - i, score: i });
  }
  return { runId, datasetId, twoAnswerIds, singlePairs, failedId, rounds: (id) => roundsById.get(id)! };
}

export interface Clinician {
  userId: string;
  key: string;
}

/** More CLINICIAN members, each with a key of their own. */
export async function addClinicians(app: TestApp, project: TestProject, count: number, prefix = 'clin'): Promise<Clinician[]> {
  const owner = new RequestContext(project.id, project.ownerId, Role.OWNER, null);
  const clinicians: Clinician[] = [];
  for (let i = 0; i < count; i++) {
    const email = `${prefix}${i}@${project.slug}.test`;
    const membership = await app.services.projects.addMember(owner, { email, displayName: `${prefix} ${i}`, role: Role.CLINICIAN });
    clinicians.push({ userId: membership.userId, key: (await app.services.projects.createKeyForMember(project.id, email, `${prefix}${i}`)).secret });
  }
  return clinicians;
}

export const CREATE = `mutation($input: CreateAnnotationCampaignInput!) {
  createAnnotationCampaign(input: $input) {
    campaign { id name guidelines taskKind overlap blind routing leaseSeconds itemCounts { pending inProgress completed total } }
    userErrors { code field message }
  }
}`;

export const NEXT = `mutation($input: NextAnnotationTaskInput!) {
  nextAnnotationTask(input: $input) {
    task { leaseExpiresAt item { id status roundIndex ordinal } candidate { id rounds { index question answer alternativeAnswer } } otherCandidate { id } campaign { id } mySubmission { id } }
    userErrors { code field message }
  }
}`;

export const SUBMIT = `mutation($input: SubmitAnnotationInput!) {
  submitAnnotation(input: $input) {
    submission { id version comment acceptance { roundIndex answerIndex accepted } choice roundIndex ratings { roundIndex answerIndex rating } annotator { id } }
    item { id status submittedCount }
    userErrors { code field message }
  }
}`;

export const SKIP = `mutation($input: SkipAnnotationTaskInput!) {
  skipAnnotationTask(input: $input) { item { id status } userErrors { code field message } }
}`;

export const PROMOTE = `mutation($input: PromoteToDemonstrationInput!) {
  promoteToDemonstration(input: $input) {
    demonstration { id active turns { from value } sourceCandidate { id } annotationProvenance { campaign { id } item { id } submissionIds preferenceIds promotedBy { id } demonstration { id } } }
    userErrors { code field message }
  }
}`;

export class AnnotationApi {
  constructor(private readonly app: TestApp) {}

  create(key: string, input: Record<string, unknown>): Promise<GraphQLResponse> {
    return gql(this.app.graphqlUrl, key, CREATE, { input });
  }

  /** Creates a campaign that must succeed; returns its global id. */
  async campaign(key: string, input: Record<string, unknown>): Promise<string> {
    const res = await this.create(key, input);
    if (res.errors || res.data!.createAnnotationCampaign.userErrors.length) throw new Error(`campaign not created: ${JSON.stringify(res.errors ?? res.data!.createAnnotationCampaign.userErrors)}`);
    return res.data!.createAnnotationCampaign.campaign.id;
  }

  next(key: string, campaignId: string): Promise<GraphQLResponse> {
    return gql(this.app.graphqlUrl, key, NEXT, { input: { campaignId } });
  }

  submit(key: string, input: Record<string, unknown>): Promise<GraphQLResponse> {
    return gql(this.app.graphqlUrl, key, SUBMIT, { input });
  }

  skip(key: string, itemId: string): Promise<GraphQLResponse> {
    return gql(this.app.graphqlUrl, key, SKIP, { input: { itemId } });
  }

  promote(key: string, itemId: string): Promise<GraphQLResponse> {
    return gql(this.app.graphqlUrl, key, PROMOTE, { input: { itemId } });
  }
}

/** Every answer of a two-round, two-answer candidate: A accepted in round 0, B in round 1 (or all as given). */
export function acceptance(rounds = 2, accepted: (round: number, answer: number) => boolean = (r, a) => a === r % 2): { roundIndex: number; answerIndex: number; accepted: boolean }[] {
  return Array.from({ length: rounds }, (_, r) => [0, 1].map((a) => ({ roundIndex: r, answerIndex: a, accepted: accepted(r, a) }))).flat();
}

export const gid = toGlobalId;
