/**
 * Campaign agreement through the real API (issue 12): clinicians annotate through
 * nextAnnotationTask / submitAnnotation, and annotationAgreement / AnnotationCampaign.agreement
 * give the kappas and alphas worked out by hand below, the latest submission counting after an
 * edit; the judge and the active selector are compared with the clinicians' orderings; a second
 * project's key sees nothing; VIEWER reads, a CLINICIAN only when the campaign is not blind.
 */
import type { StoredRound } from '../../src/modules/candidates/conversation';
import { RequestContext } from '../../src/modules/projects/request-context';
import { Role } from '../../src/modules/projects/role';
import { toGlobalId } from '../../src/platform/ids';
import { errorCodes, gql } from '../support/graphql-client';
import { seedPipeline } from '../support/pipeline-fixture';
import { referenceSelectorUpload, registerSelector } from '../support/scoring-fixture';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { StatementCounter } from '../../src/platform/db';

jest.setTimeout(180_000);

const CREATE = `mutation($input: CreateAnnotationCampaignInput!) {
  createAnnotationCampaign(input: $input) { campaign { id } userErrors { code field message } }
}`;
const NEXT = `mutation($input: NextAnnotationTaskInput!) {
  nextAnnotationTask(input: $input) { task { item { id } candidate { id } } userErrors { code field message } }
}`;
const SUBMIT = `mutation($input: SubmitAnnotationInput!) {
  submitAnnotation(input: $input) { submission { id version } userErrors { code field message } }
}`;
const FIGURES = `
  items sharedItems annotatorCount
  fleissKappa { value items raters }
  krippendorffAlpha { nominal { value items } ordinal { value items } interval { value items } }
  pairs { annotatorA { id } annotatorB { id } items kappa kappaLinear kappaQuadratic }
  annotators { annotator { id } items meanKappaVsOthers others kappaVsMajority majorityItems }`;
const AGREEMENT = `query($id: ID!) { annotationAgreement(campaignId: $id) { ${FIGURES} } }`;
const MODELS = `query($id: ID!) { annotationAgreement(campaignId: $id) {
  judge { judgeModel alignmentRate intervalLow intervalHigh clinicianPairs scoredPairs ties unscoredItems }
  selector { selectorModel { id } alignmentRate clinicianPairs scoredPairs ties unscoredItems }
  judgeAndSelector { judgeModel selectorModel { id } clinicianPairs pairs judge { alignmentRate ties } selector { alignmentRate ties } }
} }`;
const CAMPAIGNS = `query { annotationCampaigns(first: 10) { edges { node { id name agreement { items annotatorCount fleissKappa { value } } } } } }`;

interface Clinician {
  userId: string;
  key: string;
}

let app: TestApp;
let lab: TestProject;
let other: TestProject;
let clinicians: Clinician[];
/** Two-answer, two-round candidates on real images (with bytes, so the selector can score them). */
let candidates: string[];
let runId: string;

async function insert(table: string, row: Record<string, unknown>): Promise<string> {
  const columns = Object.keys(row);
  const rows: { id: string }[] = await app.ds.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map((_c, i) => `$${i + 1}`).join(', ')}) RETURNING id`, Object.values(row));
  return rows[0].id;
}

async function addClinicians(project: TestProject, count: number): Promise<Clinician[]> {
  const owner = new RequestContext(project.id, project.ownerId, Role.OWNER, null);
  const out: Clinician[] = [];
  for (let i = 0; i < count; i++) {
    const email = `agree${i}@${project.slug}.test`;
    const membership = await app.services.projects.addMember(owner, { email, displayName: `Clinician ${i}`, role: Role.CLINICIAN });
    out.push({ userId: membership.userId, key: (await app.services.projects.createKeyForMember(project.id, email, `agree${i}`)).secret });
  }
  return out;
}

async function campaign(name: string, taskKind: string, overlap: number, annotators: Clinician[], blind = true): Promise<string> {
  const res = await gql(app.graphqlUrl, lab.keys.CURATOR, CREATE, {
    input: { name, taskKind, overlap, blind, items: { generationRunId: toGlobalId('Run', runId) }, annotatorIds: annotators.map((c) => toGlobalId('User', c.userId)), routing: 'ORDERED' },
  });
  const payload = res.data?.createAnnotationCampaign;
  if (!payload?.campaign) throw new Error(JSON.stringify(res.errors ?? payload?.userErrors));
  return payload.campaign.id;
}

/** Each answer's judgement by candidate position, round and answer: unit u = 4·candidate + 2·round + answer. */
async function annotateAll(campaignId: string, clinician: Clinician, input: (candidate: number) => Record<string, unknown>): Promise<Map<number, string>> {
  const itemOf = new Map<number, string>();
  for (;;) {
    const next = await gql(app.graphqlUrl, clinician.key, NEXT, { input: { campaignId } });
    const task = next.data?.nextAnnotationTask?.task;
    if (!task) {
      expect(next.errors ?? next.data?.nextAnnotationTask.userErrors).toEqual([]);
      return itemOf;
    }
    const index = candidates.indexOf(fromGlobal(task.candidate.id));
    itemOf.set(index, task.item.id);
    const res = await gql(app.graphqlUrl, clinician.key, SUBMIT, { input: { itemId: task.item.id, ...input(index) } });
    expect(res.errors ?? res.data!.submitAnnotation.userErrors).toEqual([]);
  }
}

function fromGlobal(id: string): string {
  return Buffer.from(id, 'base64url').toString('utf8').split(':')[1];
}

const acceptanceOf = (units: string) => (candidate: number) => ({
  acceptance: [0, 1].flatMap((roundIndex) => [0, 1].map((answerIndex) => ({ roundIndex, answerIndex, accepted: units[4 * candidate + 2 * roundIndex + answerIndex] === 'Y' }))),
});
const ratingsOf = (values: number[]) => (candidate: number) => ({
  ratings: [0, 1].flatMap((roundIndex) => [0, 1].map((answerIndex) => ({ roundIndex, answerIndex, rating: values[4 * candidate + 2 * roundIndex + answerIndex] }))),
});

beforeAll(async () => {
  app = await startTestApp();
  lab = await createTestProject(app, 'agree-lab');
  other = await createTestProject(app, 'agree-other');
  clinicians = await addClinicians(lab, 3);
  const { imageIds } = await seedPipeline(app, lab, { demonstrations: false });
  runId = await insert('runs', { project_id: lab.id, kind: 'GENERATION', status: 'SUCCEEDED', total: 2 });
  candidates = [];
  for (let i = 0; i < 2; i++) {
    const rounds: StoredRound[] = [0, 1].map((r) => ({ question: `What does figure ${i} show (${r})?`, answers: [`Candidate ${i} round ${r}: a lesion in the left lobe.`, `Candidate ${i} round ${r}: no abnormality.`] }));
    candidates.push(await insert('candidates', { project_id: lab.id, image_id: imageIds[i], run_id: runId, status: 'OK', form: 'TWO_ANSWERS', rounds: JSON.stringify(rounds), sample_index: 0, created_at: new Date(Date.UTC(2026, 0, 1, 0, 0, i)) }));
  }
});

afterAll(async () => {
  await app?.stop();
});

describe('ACCEPTANCE campaign agreement', () => {
  let campaignId: string;
  let itemsOfThird: Map<number, string>;
  const [pairOf, annotatorOf] = [
    (res: any, a: Clinician, b: Clinician) => res.pairs.find((p: any) => new Set([p.annotatorA.id, p.annotatorB.id]).size === 2 && [p.annotatorA.id, p.annotatorB.id].every((id: string) => [a, b].some((c) => toGlobalId('User', c.userId) === id))),
    (res: any, c: Clinician) => res.annotators.find((r: any) => r.annotator.id === toGlobalId('User', c.userId)),
  ];

  beforeAll(async () => {
    campaignId = await campaign('acceptance', 'ACCEPTANCE', 3, clinicians);
    // Units (c0r0a0 c0r0a1 c0r1a0 c0r1a1 c1r0a0 c1r0a1 c1r1a0 c1r1a1):
    await annotateAll(campaignId, clinicians[0], acceptanceOf('YNYNYNYN'));
    await annotateAll(campaignId, clinicians[1], acceptanceOf('YNYNYNNY'));
    itemsOfThird = await annotateAll(campaignId, clinicians[2], acceptanceOf('YNYNNYYN'));
  });

  it('gives the hand-computed kappas and alphas', async () => {
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, AGREEMENT, { id: campaignId });
    expect(res.errors).toBeUndefined();
    const a = res.data!.annotationAgreement;
    expect(a).toMatchObject({ items: 8, sharedItems: 8, annotatorCount: 3 });
    // κ(u0,u1): po 6/8, pe ½ → ½. κ(u0,u2) likewise. κ(u1,u2): po ½, pe ½ → 0.
    const [u0, u1, u2] = clinicians;
    expect(pairOf(a, u0, u1)).toMatchObject({ items: 8, kappa: 0.5, kappaLinear: null, kappaQuadratic: null });
    expect(pairOf(a, u0, u2).kappa).toBeCloseTo(0.5, 12);
    expect(pairOf(a, u1, u2).kappa).toBeCloseTo(0, 12);
    // Fleiss: four unanimous units (P 1) and four 2:1 units (P ⅓): P̄ ⅔, p_accept ½ → ⅓.
    expect(a.fleissKappa).toMatchObject({ items: 8, raters: 3 });
    expect(a.fleissKappa.value).toBeCloseTo(1 / 3, 12);
    // Krippendorff nominal: o_acc,rej = o_rej,acc = 4, n = 24 (12 each): 1 − 23·8/(2·144).
    expect(a.krippendorffAlpha.nominal.items).toBe(8);
    expect(a.krippendorffAlpha.nominal.value).toBeCloseTo(1 - 184 / 288, 12);
    expect(a.krippendorffAlpha.interval.value).toBeCloseTo(1 - 184 / 288, 12);
    // u0 vs the majority of the others: units 5-8 tie, units 1-4 agree → κ 1 on 4 items.
    expect(annotatorOf(a, u0)).toMatchObject({ items: 8, meanKappaVsOthers: 0.5, others: 2, kappaVsMajority: 1, majorityItems: 4 });
    // u1 vs majority(u0, u2): units 1-4 agree, 5-6 tie, 7-8 disagree → po ⅔, pe ½ → ⅓.
    expect(annotatorOf(a, u1).majorityItems).toBe(6);
    expect(annotatorOf(a, u1).kappaVsMajority).toBeCloseTo(1 / 3, 12);
    expect(annotatorOf(a, u1).meanKappaVsOthers).toBeCloseTo(0.25, 12);
  });

  it('counts only the latest submission after an edit', async () => {
    // The third clinician changes candidate 1 to match the first: YN YN.
    const res = await gql(app.graphqlUrl, clinicians[2].key, SUBMIT, { input: { itemId: itemsOfThird.get(1), ...acceptanceOf('YNYNYNYN')(1) } });
    expect(res.errors ?? res.data!.submitAnnotation.userErrors).toEqual([]);
    expect(res.data!.submitAnnotation.submission.version).toBe(2);
    const a = (await gql(app.graphqlUrl, lab.keys.CURATOR, AGREEMENT, { id: campaignId })).data!.annotationAgreement;
    expect(a.items).toBe(8);
    expect(pairOf(a, clinicians[0], clinicians[2]).kappa).toBeCloseTo(1, 12);
    expect(pairOf(a, clinicians[1], clinicians[2]).kappa).toBeCloseTo(0.5, 12);
  });

  it('compares the judge and the active selector with the clinicians on the same answers', async () => {
    // The judge rates candidate 0 only: round 0 as the clinicians (A > B), round 1 the other way.
    for (const [roundIndex, answerIndex, rating] of [[0, 0, 8], [0, 1, 3], [1, 0, 2], [1, 1, 9]]) {
      await insert('preferences', { project_id: lab.id, candidate_id: candidates[0], source: 'MODEL', kind: 'RATING', judge_model: 'judge-a', round_index: roundIndex, answer_index: answerIndex, rating, rubric_version: 'rating/v1' });
    }
    const registered = await registerSelector(app, lab.keys.CURATOR, 'agree-selector', referenceSelectorUpload(), { activate: true });
    const selectorId = registered.data!.registerSelectorModel.selectorModel.id;
    const res = await gql(app.graphqlUrl, lab.keys.VIEWER, MODELS, { id: campaignId });
    expect(res.errors).toBeUndefined();
    const { judge, selector } = res.data!.annotationAgreement;
    // Each clinician accepted exactly one answer of each of the 4 rounds: 12 pairs. The judge
    // rated candidate 0's 2 rounds: 6 pairs, the round-0 three agree, the round-1 three do not.
    expect(judge).toMatchObject({ judgeModel: 'judge-a', clinicianPairs: 12, scoredPairs: 6, ties: 0, alignmentRate: 0.5, unscoredItems: 0 });
    expect(judge.intervalLow).toBeLessThanOrEqual(0.5);
    expect(judge.intervalHigh).toBeGreaterThanOrEqual(0.5);
    // The selector scores all 8 answers (real images and text): every pair has a rate.
    expect(selector).toMatchObject({ selectorModel: { id: selectorId }, clinicianPairs: 12, scoredPairs: 12, unscoredItems: 0 });
    expect(selector.alignmentRate).toBeGreaterThanOrEqual(0);
    expect(selector.alignmentRate).toBeLessThanOrEqual(1);
    // Like for like: both on the 6 pairs the judge rated.
    const same = res.data!.annotationAgreement.judgeAndSelector;
    expect(same).toMatchObject({ judgeModel: 'judge-a', selectorModel: { id: selectorId }, clinicianPairs: 12, pairs: 6, judge: { alignmentRate: 0.5, ties: 0 } });
    expect(same.selector.alignmentRate).not.toBeNull();
    // A selector that is not the project's.
    const unknown = toGlobalId('SelectorModel', '00000000-0000-4000-8000-000000000000');
    const missing = await gql(app.graphqlUrl, lab.keys.VIEWER, `query($id: ID!, $sel: ID) { annotationAgreement(campaignId: $id) { selector(selectorModelId: $sel) { alignmentRate } } }`, { id: campaignId, sel: unknown });
    expect(errorCodes(missing)).toEqual(['NOT_FOUND']);
  });

  it('lets VIEWER read, on the campaign too, but not a CLINICIAN of this blind campaign; a second project and a missing key get nothing', async () => {
    const viewed = await gql(app.graphqlUrl, lab.keys.VIEWER, AGREEMENT, { id: campaignId });
    expect(viewed.errors).toBeUndefined();
    expect(viewed.data!.annotationAgreement.annotatorCount).toBe(3);
    const listed = await gql(app.graphqlUrl, lab.keys.VIEWER, CAMPAIGNS);
    expect(listed.errors).toBeUndefined();
    const node = listed.data!.annotationCampaigns.edges.map((e: any) => e.node).find((n: any) => n.id === campaignId);
    expect(node.agreement).toMatchObject({ items: 8, annotatorCount: 3 });

    // Blind: kappas read after each submission would tell a clinician how the others judged.
    const asClinician = await gql(app.graphqlUrl, clinicians[0].key, AGREEMENT, { id: campaignId });
    expect(errorCodes(asClinician)).toEqual(['FORBIDDEN']);
    const clinicianList = await gql(app.graphqlUrl, clinicians[0].key, CAMPAIGNS);
    expect(clinicianList.errors).toBeUndefined();
    expect(clinicianList.data!.annotationCampaigns.edges.map((e: any) => e.node).find((n: any) => n.id === campaignId).agreement).toBeNull();

    const foreign = await gql(app.graphqlUrl, other.keys.OWNER, AGREEMENT, { id: campaignId });
    expect(errorCodes(foreign)).toEqual(['NOT_FOUND']);
    const theirs = await gql(app.graphqlUrl, other.keys.OWNER, CAMPAIGNS);
    expect(theirs.data!.annotationCampaigns.edges).toEqual([]);
    const anonymous = await gql(app.graphqlUrl, null, AGREEMENT, { id: campaignId });
    expect(errorCodes(anonymous)).toEqual(['UNAUTHENTICATED']);
  });
});

describe('RATING campaign agreement', () => {
  it('gives unweighted, linear and quadratic Cohen over the 0-10 scale', async () => {
    // Not blind: its clinicians may read the agreement too.
    const campaignId = await campaign('rating', 'RATING', 2, clinicians.slice(0, 2), false);
    await annotateAll(campaignId, clinicians[0], ratingsOf([1, 2, 3, 3, 2, 1, 4, 1]));
    await annotateAll(campaignId, clinicians[1], ratingsOf([1, 2, 3, 3, 2, 2, 4, 1]));
    const res = await gql(app.graphqlUrl, clinicians[0].key, AGREEMENT, { id: campaignId });
    expect(res.errors).toBeUndefined();
    const [pair] = res.data!.annotationAgreement.pairs;
    // One disagreement (1 vs 2) in 8. Unweighted: po 7/8, pe 17/64 → 39/47. Linear: Σw·E = 72/8 = 9 → 1 − 1/9.
    // Quadratic: Σw·E = 132/8 = 16.5 → 1 − 1/16.5.
    expect(pair.items).toBe(8);
    expect(pair.kappa).toBeCloseTo(39 / 47, 12);
    expect(pair.kappaLinear).toBeCloseTo(1 - 1 / 9, 12);
    expect(pair.kappaQuadratic).toBeCloseTo(1 - 1 / 16.5, 12);
    expect(res.data!.annotationAgreement.fleissKappa).toMatchObject({ items: 8, raters: 2 });
  });
});

describe('a page of campaigns with their agreement', () => {
  it('reads every campaign\'s judgements in one statement (no N+1)', async () => {
    const count = async (query: string) => {
      StatementCounter.reset();
      const res = await gql(app.graphqlUrl, lab.keys.VIEWER, query);
      expect(res.errors).toBeUndefined();
      return { statements: StatementCounter.count, nodes: res.data!.annotationCampaigns.edges.map((e: any) => e.node) };
    };
    const without = await count(`query { annotationCampaigns(first: 10) { edges { node { id name } } } }`);
    const withAgreement = await count(CAMPAIGNS);
    expect(withAgreement.nodes.length).toBeGreaterThanOrEqual(2);
    expect(withAgreement.nodes.every((n: any) => n.agreement.annotatorCount >= 2)).toBe(true);
    expect(withAgreement.statements - without.statements).toBe(1);
  });
});
