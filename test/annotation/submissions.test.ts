/**
 * Issue 12: what clinicians hand in. Submissions are checked against the task kind, written as
 * CLINICIAN preferences linked to the campaign, edited as new versions (history kept, only the
 * latest in preferences), counted in item status and per-clinician progress, hidden from other
 * clinicians when blind, pushed to subscribers, and promoted to demonstrations with provenance.
 */
import { Client } from 'graphql-ws';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { errorCodes, gql } from '../support/graphql-client';
import { WsClients } from '../support/ws-client';
import { fromGlobalId } from '../../src/platform/ids';
import { acceptance, addClinicians, AnnotationApi, AnnotationFixture, Clinician, gid, seedAnnotationFixture } from './annotation-fixture';

const uuid = (globalId: string) => fromGlobalId(globalId)!.id;

describe('annotation campaigns: submissions, progress, promotion', () => {
  let app: TestApp;
  let lab: TestProject;
  let other: TestProject;
  let fx: AnnotationFixture;
  let api: AnnotationApi;
  let clinicians: Clinician[];
  const ws = new WsClients();

  const leased = async (key: string, campaignId: string) => {
    const res = await api.next(key, campaignId);
    expect(res.data!.nextAnnotationTask.userErrors).toEqual([]);
    return res.data!.nextAnnotationTask.task as { item: { id: string }; candidate: { id: string } };
  };
  const itemQuery = `query($id: ID!) { node(id: $id) { ... on AnnotationItem { status submittedCount submissions(first: 20) { totalCount edges { node { version annotator { id } acceptance { accepted } } } } mySubmission { version } } } }`;

  beforeAll(async () => {
    app = await startTestApp();
    lab = await createTestProject(app, 'camp-submit');
    other = await createTestProject(app, 'camp-submit-other');
    fx = await seedAnnotationFixture(app, lab, { twoAnswer: 3, singlePairs: 1 });
    api = new AnnotationApi(app);
    clinicians = await addClinicians(app, lab, 2);
  });
  afterAll(async () => {
    await ws.disposeAll();
    await app?.stop();
  });

  it('writes an ACCEPTANCE submission as CLINICIAN preferences with the campaign and submission ids; an edit is a new version that replaces them', async () => {
    const campaign = await api.campaign(lab.keys.CURATOR, { name: 'accept', taskKind: 'ACCEPTANCE', routing: 'ORDERED', items: { datasetId: gid('Dataset', fx.datasetId) } });
    const [a] = clinicians;
    const task = await leased(a.key, campaign);
    const first = await api.submit(a.key, { itemId: task.item.id, comment: ' B is wrong about the side ', acceptance: acceptance() });
    expect(first.data!.submitAnnotation).toMatchObject({
      submission: { version: 1, comment: 'B is wrong about the side', annotator: { id: gid('User', a.userId) }, choice: null, ratings: null },
      item: { id: task.item.id, status: 'COMPLETED', submittedCount: 1 },
      userErrors: [],
    });
    const submissionId = uuid(first.data!.submitAnnotation.submission.id);
    const rows = await app.ds.query(
      `SELECT kind, source, round_index, answer_index, accepted, rationale, annotator_id, annotation_submission_id FROM preferences WHERE campaign_id = $1 ORDER BY round_index, answer_index`,
      [uuid(campaign)],
    );
    expect(rows).toEqual([
      { kind: 'ACCEPTANCE', source: 'CLINICIAN', round_index: 0, answer_index: 0, accepted: true, rationale: 'B is wrong about the side', annotator_id: a.userId, annotation_submission_id: submissionId },
      { kind: 'ACCEPTANCE', source: 'CLINICIAN', round_index: 0, answer_index: 1, accepted: false, rationale: 'B is wrong about the side', annotator_id: a.userId, annotation_submission_id: submissionId },
      { kind: 'ACCEPTANCE', source: 'CLINICIAN', round_index: 1, answer_index: 0, accepted: false, rationale: 'B is wrong about the side', annotator_id: a.userId, annotation_submission_id: submissionId },
      { kind: 'ACCEPTANCE', source: 'CLINICIAN', round_index: 1, answer_index: 1, accepted: true, rationale: 'B is wrong about the side', annotator_id: a.userId, annotation_submission_id: submissionId },
    ]);

    // The edit: everything accepted. History keeps version 1, preferences hold only version 2.
    const edit = await api.submit(a.key, { itemId: task.item.id, acceptance: acceptance(2, () => true) });
    expect(edit.data!.submitAnnotation).toMatchObject({ submission: { version: 2, comment: null }, item: { status: 'COMPLETED', submittedCount: 1 }, userErrors: [] });
    const latest = await app.ds.query(`SELECT accepted, annotation_submission_id FROM preferences WHERE campaign_id = $1`, [uuid(campaign)]);
    expect(latest).toHaveLength(4);
    expect(latest.every((p: { accepted: boolean; annotation_submission_id: string }) => p.accepted && p.annotation_submission_id === uuid(edit.data!.submitAnnotation.submission.id))).toBe(true);
    const history = await gql(app.graphqlUrl, lab.keys.CURATOR, itemQuery, { id: task.item.id });
    expect(history.data!.node.submissions.edges.map((e: { node: { version: number } }) => e.node.version)).toEqual([1, 2]);
    const latestOnly = await gql(app.graphqlUrl, lab.keys.CURATOR, `query($id: ID!) { node(id: $id) { ... on AnnotationItem { submissions(first: 5, latestOnly: true) { edges { node { version } } } } } }`, { id: task.item.id });
    expect(latestOnly.data!.node.submissions.edges).toEqual([{ node: { version: 2 } }]);
  });

  it.each([
    ['a missing answer', () => ({ acceptance: acceptance().slice(1) }), ['input', 'acceptance']],
    ['an answer given twice', () => ({ acceptance: [...acceptance().slice(1), acceptance()[1]] }), ['input', 'acceptance']],
    ['a round the candidate does not have', () => ({ acceptance: [...acceptance().slice(1), { roundIndex: 5, answerIndex: 0, accepted: true }] }), ['input', 'acceptance']],
    ['ratings in an ACCEPTANCE campaign', () => ({ acceptance: acceptance(), ratings: [{ roundIndex: 0, answerIndex: 0, rating: 5 }] }), ['input', 'ratings']],
    ['no judgement at all', () => ({}), ['input', 'acceptance']],
  ])('refuses %s with an INVALID userError and writes nothing', async (_name, payload, field) => {
    const campaign = await api.campaign(lab.keys.CURATOR, { name: 'checks', taskKind: 'ACCEPTANCE', items: { datasetId: gid('Dataset', fx.datasetId) } });
    const task = await leased(clinicians[1].key, campaign);
    const res = await api.submit(clinicians[1].key, { itemId: task.item.id, ...payload() });
    expect(res.data!.submitAnnotation).toEqual({ submission: null, item: null, userErrors: [expect.objectContaining({ code: 'INVALID', field })] });
    const [{ n }] = await app.ds.query(`SELECT (SELECT count(*) FROM annotation_submissions WHERE campaign_id = $1) + (SELECT count(*) FROM preferences WHERE campaign_id = $1) AS n`, [uuid(campaign)]);
    expect(Number(n)).toBe(0);
    const [{ state }] = await app.ds.query(`SELECT state FROM annotation_leases WHERE item_id = $1 AND annotator_id = $2`, [uuid(task.item.id), clinicians[1].userId]);
    expect(state).toBe('LEASED');
  });

  it('writes RATING (each answer, with its rubric) and PAIRWISE (a round, or two candidates) preferences', async () => {
    const rating = await api.campaign(lab.keys.CURATOR, { name: 'rate', taskKind: 'RATING', items: { datasetId: gid('Dataset', fx.datasetId) } });
    const t1 = await leased(clinicians[0].key, rating);
    const ratings = [0, 1].flatMap((r) => [0, 1].map((a) => ({ roundIndex: r, answerIndex: a, rating: 2 + r * 4 + a })));
    const rated = await api.submit(clinicians[0].key, { itemId: t1.item.id, ratings });
    expect(rated.data!.submitAnnotation.userErrors).toEqual([]);
    const stored = await app.ds.query(`SELECT kind, round_index, answer_index, rating, rubric_version FROM preferences WHERE campaign_id = $1 ORDER BY round_index, answer_index`, [uuid(rating)]);
    expect(stored.map((p: { rating: number }) => p.rating)).toEqual([2, 3, 6, 7]);
    expect(stored.every((p: { kind: string; rubric_version: string }) => p.kind === 'RATING' && p.rubric_version === 'annotation-campaign/0-10')).toBe(true);
    const outOfRange = await api.submit(clinicians[0].key, { itemId: t1.item.id, ratings: [{ roundIndex: 0, answerIndex: 0, rating: 11 }] });
    expect(outOfRange.data!.submitAnnotation.userErrors).toEqual([expect.objectContaining({ code: 'INVALID' })]);

    const pairwise = await api.campaign(lab.keys.CURATOR, { name: 'pairs', taskKind: 'PAIRWISE', routing: 'ORDERED', items: { candidateFilter: { statuses: ['OK'] } } });
    const round = await leased(clinicians[0].key, pairwise);
    const wrongRound = await api.submit(clinicians[0].key, { itemId: round.item.id, pairwise: { roundIndex: 1, choice: 'A' } });
    expect(wrongRound.data!.submitAnnotation.userErrors).toEqual([expect.objectContaining({ code: 'INVALID', field: ['input', 'pairwise', 'roundIndex'] })]);
    expect((await api.submit(clinicians[0].key, { itemId: round.item.id, pairwise: { choice: 'B' } })).data!.submitAnnotation.userErrors).toEqual([]);
    const [pref] = await app.ds.query(`SELECT kind, round_index, choice, other_candidate_id FROM preferences WHERE campaign_id = $1`, [uuid(pairwise)]);
    expect(pref).toEqual({ kind: 'PAIRWISE', round_index: 0, choice: 'B', other_candidate_id: null });
    // The last item compares the two single-answer candidates of one image.
    await app.ds.query(`DELETE FROM annotation_items WHERE campaign_id = $1 AND other_candidate_id IS NULL`, [uuid(pairwise)]);
    const pair = await api.next(clinicians[1].key, pairwise);
    expect(pair.data!.nextAnnotationTask.task).toMatchObject({ candidate: { id: gid('Candidate', fx.singlePairs[0][0]) }, otherCandidate: { id: gid('Candidate', fx.singlePairs[0][1]) } });
    expect((await api.submit(clinicians[1].key, { itemId: pair.data!.nextAnnotationTask.task.item.id, pairwise: { choice: 'TIE' } })).data!.submitAnnotation.userErrors).toEqual([]);
    const [pairPref] = await app.ds.query(`SELECT round_index, choice, other_candidate_id FROM preferences WHERE campaign_id = $1 AND other_candidate_id IS NOT NULL`, [uuid(pairwise)]);
    expect(pairPref).toEqual({ round_index: null, choice: 'TIE', other_candidate_id: fx.singlePairs[0][1] });
  });

  it('reports item status and per-clinician progress, hides other clinicians’ submissions when blind, and pushes every change to subscribers', async () => {
    const campaign = await api.campaign(lab.keys.CURATOR, { name: 'watched', taskKind: 'ACCEPTANCE', overlap: 2, items: { datasetId: gid('Dataset', fx.datasetId) } });
    const viewer: Client = ws.open(app, lab.keys.VIEWER);
    const seen: { itemCounts: { pending: number; inProgress: number; completed: number } }[] = [];
    let wake: (() => void) | null = null;
    const waitFor = async (predicate: (e: (typeof seen)[number]) => boolean) => {
      const deadline = Date.now() + 15_000;
      while (!seen.some(predicate)) {
        if (Date.now() > deadline) throw new Error(`no matching event; got ${JSON.stringify(seen)}`);
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 500);
        });
      }
    };
    viewer.subscribe(
      { query: `subscription($id: ID!) { annotationCampaignUpdated(campaignId: $id) { id itemCounts { pending inProgress completed } } }`, variables: { id: campaign } },
      { next: (r: any) => (seen.push(r.data.annotationCampaignUpdated), wake?.()), error: () => undefined, complete: () => undefined },
    );
    await waitFor((e) => e.itemCounts.pending === 3);

    const [a, b] = clinicians;
    const ta = await leased(a.key, campaign);
    await waitFor((e) => e.itemCounts.inProgress === 1);
    await api.submit(a.key, { itemId: ta.item.id, acceptance: acceptance() });
    const tb = await leased(b.key, campaign);
    expect(tb.item.id).toBe(ta.item.id);
    await api.submit(b.key, { itemId: tb.item.id, acceptance: acceptance(2, () => true), comment: 'both fine' });
    await waitFor((e) => e.itemCounts.completed === 1 && e.itemCounts.pending === 2);

    // Blind: a clinician sees their own submission only; curators and viewers see both.
    const asA = await gql(app.graphqlUrl, a.key, itemQuery, { id: ta.item.id });
    expect(asA.data!.node).toMatchObject({ status: 'COMPLETED', submittedCount: 2, mySubmission: { version: 1 } });
    expect(asA.data!.node.submissions.edges.map((e: { node: { annotator: { id: string } } }) => e.node.annotator.id)).toEqual([gid('User', a.userId)]);
    const asViewer = await gql(app.graphqlUrl, lab.keys.VIEWER, itemQuery, { id: ta.item.id });
    expect(asViewer.data!.node.submissions.totalCount).toBe(2);
    const bSubmission = (await app.ds.query(`SELECT id FROM annotation_submissions WHERE item_id = $1 AND annotator_id = $2`, [uuid(ta.item.id), b.userId]))[0].id;
    expect(errorCodes(await gql(app.graphqlUrl, a.key, `query($id: ID!) { node(id: $id) { id } }`, { id: gid('AnnotationSubmission', bSubmission) }))).toEqual(['NOT_FOUND']);
    // Nor through the preference API: a clinician reads only their own campaign judgements there.
    const prefsOfA = await gql(
      app.graphqlUrl,
      a.key,
      `query($c: ID!) { preferences(first: 100) { edges { node { annotator { id } } } } candidate: node(id: $c) { ... on Candidate { preferenceCount preferences(first: 20) { edges { node { annotator { id } } } } } } }`,
      { c: ta.candidate.id },
    );
    expect(prefsOfA.errors).toBeUndefined();
    const annotators = (edges: { node: { annotator: { id: string } } }[]) => [...new Set(edges.map((e) => e.node.annotator.id))];
    expect(annotators(prefsOfA.data!.preferences.edges)).toEqual([gid('User', a.userId)]);
    expect(annotators(prefsOfA.data!.candidate.preferences.edges)).toEqual([gid('User', a.userId)]);
    const [visible] = await app.ds.query(
      `SELECT count(*) FILTER (WHERE campaign_id IS NULL OR annotator_id = $2)::int AS to_a, count(*)::int AS all FROM preferences WHERE candidate_id = $1`,
      [uuid(ta.candidate.id), a.userId],
    );
    expect(visible.all).toBeGreaterThan(visible.to_a);
    expect(prefsOfA.data!.candidate.preferenceCount).toBe(visible.to_a);
    const asCurator = await gql(app.graphqlUrl, lab.keys.CURATOR, `query($c: ID!) { node(id: $c) { ... on Candidate { preferenceCount } } }`, { c: ta.candidate.id });
    expect(asCurator.data!.node.preferenceCount).toBe(visible.all);
    // Not blind: clinicians see each other.
    await app.ds.query(`UPDATE annotation_campaigns SET blind = false WHERE id = $1`, [uuid(campaign)]);
    expect((await gql(app.graphqlUrl, a.key, itemQuery, { id: ta.item.id })).data!.node.submissions.totalCount).toBe(2);

    const progress = await gql(
      app.graphqlUrl,
      lab.keys.VIEWER,
      `query($id: ID!) { node(id: $id) { ... on AnnotationCampaign { itemCounts { pending inProgress completed total } progress { annotator { id displayName } submitted skipped inProgress } myProgress { submitted } } } }`,
      { id: campaign },
    );
    expect(progress.errors).toBeUndefined();
    expect(progress.data!.node.itemCounts).toEqual({ pending: 2, inProgress: 0, completed: 1, total: 3 });
    const rows = progress.data!.node.progress;
    expect(rows).toEqual(
      expect.arrayContaining([
        { annotator: { id: gid('User', a.userId), displayName: 'clin 0' }, submitted: 1, skipped: 0, inProgress: 0 },
        { annotator: { id: gid('User', b.userId), displayName: 'clin 1' }, submitted: 1, skipped: 0, inProgress: 0 },
        { annotator: { id: gid('User', lab.userIds.CLINICIAN), displayName: 'CLINICIAN' }, submitted: 0, skipped: 0, inProgress: 0 },
      ]),
    );
    expect(progress.data!.node.myProgress).toBeNull();
    const mine = await gql(app.graphqlUrl, b.key, `query($id: ID!) { node(id: $id) { ... on AnnotationCampaign { myProgress { submitted skipped } } } }`, { id: campaign });
    expect(mine.data!.node.myProgress).toEqual({ submitted: 1, skipped: 0 });

    // Another project's key cannot subscribe to it.
    const stranger = ws.open(app, other.keys.OWNER);
    const refused = await new Promise<any>((resolve) => {
      stranger.subscribe({ query: `subscription($id: ID!) { annotationCampaignUpdated(campaignId: $id) { id } }`, variables: { id: campaign } }, { next: resolve, error: resolve, complete: () => resolve(null) });
    });
    expect(JSON.stringify(refused)).toContain('NOT_FOUND');
  });

  it('promotes an accepted candidate to an active demonstration with provenance, once; only curators may', async () => {
    const campaign = await api.campaign(lab.keys.CURATOR, { name: 'promote', taskKind: 'ACCEPTANCE', overlap: 2, routing: 'ORDERED', items: { datasetId: gid('Dataset', fx.datasetId) } });
    const [a, b] = clinicians;
    const ta = await leased(a.key, campaign);
    expect((await api.promote(lab.keys.CURATOR, ta.item.id)).data!.promoteToDemonstration.userErrors).toEqual([expect.objectContaining({ code: 'CONFLICT' })]);
    await api.submit(a.key, { itemId: ta.item.id, acceptance: acceptance() });
    await leased(b.key, campaign);
    await api.submit(b.key, { itemId: ta.item.id, acceptance: acceptance(2, (r, answer) => answer === r % 2 || r === 0) });

    expect(errorCodes(await api.promote(a.key, ta.item.id))).toEqual(['FORBIDDEN']);
    const res = await api.promote(lab.keys.CURATOR, ta.item.id);
    expect(res.errors).toBeUndefined();
    const { demonstration, userErrors } = res.data!.promoteToDemonstration;
    expect(userErrors).toEqual([]);
    const candidateId = uuid(ta.candidate.id);
    const rounds = fx.rounds(candidateId);
    // Round 0: A accepted by both (B by one) → A; round 1: B accepted by both → B.
    expect(demonstration).toMatchObject({
      active: true,
      sourceCandidate: { id: ta.candidate.id },
      turns: [
        { from: 'HUMAN', value: rounds[0].question },
        { from: 'GPT', value: rounds[0].answers[0] },
        { from: 'HUMAN', value: rounds[1].question },
        { from: 'GPT', value: rounds[1].answers[1] },
      ],
    });
    const provenance = demonstration.annotationProvenance;
    expect(provenance).toMatchObject({ campaign: { id: campaign }, item: { id: ta.item.id }, promotedBy: { id: gid('User', lab.userIds.CURATOR) }, demonstration: { id: demonstration.id } });
    expect(provenance.submissionIds).toHaveLength(2);
    const prefIds = (await app.ds.query(`SELECT id FROM preferences WHERE campaign_id = $1`, [uuid(campaign)])).map((p: { id: string }) => gid('Preference', p.id));
    expect([...provenance.preferenceIds].sort()).toEqual(prefIds.sort());
    const again = await api.promote(lab.keys.CURATOR, ta.item.id);
    expect(again.data!.promoteToDemonstration.demonstration.id).toBe(demonstration.id);
    const [{ n }] = await app.ds.query(`SELECT count(*)::int AS n FROM demonstrations WHERE source_candidate_id = $1`, [candidateId]);
    expect(n).toBe(1);
  });

  it('refuses to promote when no answer of a round has a majority', async () => {
    const campaign = await api.campaign(lab.keys.CURATOR, { name: 'rejected', taskKind: 'ACCEPTANCE', items: { datasetId: gid('Dataset', fx.datasetId) } });
    const task = await leased(clinicians[0].key, campaign);
    await api.submit(clinicians[0].key, { itemId: task.item.id, acceptance: acceptance(2, (r) => r === 0) });
    const res = await api.promote(lab.keys.OWNER, task.item.id);
    expect(res.data!.promoteToDemonstration).toEqual({ demonstration: null, userErrors: [expect.objectContaining({ code: 'CONFLICT', field: ['input', 'itemId'] })] });
    const foreign = await api.promote(other.keys.OWNER, task.item.id);
    expect(foreign.data!.promoteToDemonstration.userErrors).toEqual([expect.objectContaining({ code: 'NOT_FOUND' })]);
  });
});
