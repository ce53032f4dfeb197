import crypto from 'node:crypto';
import { ChatBehaviour, defaultChatBehaviour, FakeOpenAIServer, RecordedRequest } from '../fakes/openai-server';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql, GraphQLResponse } from '../support/graphql-client';
import { FIGURE_CAPTIONS, seedPipeline, START_GENERATION, waitForRun } from '../support/pipeline-fixture';
import { SHARED_IMAGE_NAMES } from '../support/shared-data';
import { fromGlobalId, toGlobalId } from '../../src/platform/ids';
import { RatingRun } from '../../src/modules/rating/rating.run';
import { RunControl } from '../../src/modules/runs/run-executor';

const START_RATING = `mutation($input: StartRatingRunInput!) {
  startRatingRun(input: $input) { run { id kind status total done failed } userErrors { field message code } }
}`;
const START_CLUSTERING = `mutation($input: StartClusteringRunInput!) {
  startClusteringRun(input: $input) { run { id kind status total done failed params } userErrors { field message code } }
}`;
const RUN_WITH_FAILURES = `query($id: ID!) { node(id: $id) { ... on Run { id status total done failed queued params
  failures(first: 50) { totalCount edges { node { id itemKey reason rawOutput attempts } } } } } }`;
const MODEL_RATINGS = `query($after: String) { preferences(first: 100, after: $after, filter: { sources: [MODEL], kinds: [RATING] }) {
  totalCount pageInfo { hasNextPage endCursor }
  edges { node { id source kind rating rationale rubricVersion judgeModel roundIndex answerIndex
    candidate { id form image { caption } rounds { index question answer alternativeAnswer } } } } } }`;
const IMAGES = `{ images(first: 50) { edges { node { id caption clusterId } } } }`;
const CLUSTERS = `{ imageClusters { clusterId size } }`;

const UNPARSEABLE = 'This answer is thorough and well grounded in the figure, but I will not put a number on it.';

const isJudge = (body: any) => (body?.messages ?? []).some((m: any) => m.role === 'system' && String(m.content).includes('You judge'));
const userText = (body: any): string => {
  const user = (body?.messages ?? []).filter((m: any) => m.role === 'user').pop();
  if (typeof user?.content === 'string') return user.content;
  return (user?.content ?? []).filter((p: any) => p.type === 'text').map((p: any) => p.text).join('\n');
};
const imageUrls = (body: any): string[] =>
  (body?.messages ?? []).flatMap((m: any) => (Array.isArray(m.content) ? m.content.filter((p: any) => p.type === 'image_url').map((p: any) => p.image_url.url) : []));

/** What the judge prompt quotes: the question without `<image>`, and the answer, both trimmed. */
const norm = (question: string) => question.replace(/^<image>\s*/, '').trim();
function parseJudgePrompt(text: string): { caption: string; question: string; answer: string } {
  const caption = /^Caption: (.*)$/m.exec(text)?.[1] ?? '';
  const m = /\n\nQuestion: ([\s\S]*?)\n\nAnswer: ([\s\S]*?)\n\nReply with JSON only/.exec(text);
  return { caption, question: m?.[1] ?? '', answer: m?.[2] ?? '' };
}

/** The fake judge's score for one question and answer: 0 to 10 in halves, varying from answer to answer. */
function judgeScore(question: string, answer: string): number {
  return (crypto.createHash('sha256').update(`${question}\u0000${answer}`).digest()[0] % 21) / 2;
}

function judgeChat(body: any): ChatBehaviour {
  if (!isJudge(body)) return defaultChatBehaviour(body);
  const { question, answer } = parseJudgePrompt(userText(body));
  const score = judgeScore(question, answer);
  return { reply: JSON.stringify({ score, rationale: `Scored ${score} for: ${answer.slice(0, 40)}` }) };
}

describe('model rating and clustering runs', () => {
  let fake: FakeOpenAIServer;
  let app: TestApp;

  const judgeRequests = (from: number): RecordedRequest[] => fake.requests.slice(from).filter((r) => r.endpoint === 'chat' && isJudge(r.body));

  async function start(key: string, mutation: string, input: Record<string, unknown>): Promise<{ id: string; total: number }> {
    const res = await gql(app.graphqlUrl, key, mutation, { input });
    expect(res.errors).toBeUndefined();
    const payload = Object.values(res.data!)[0] as { run: { id: string; total: number }; userErrors: unknown[] };
    expect(payload.userErrors).toEqual([]);
    return payload.run;
  }

  async function modelRatings(key: string): Promise<any[]> {
    const all: any[] = [];
    let after: string | null = null;
    for (;;) {
      const res: GraphQLResponse = await gql(app.graphqlUrl, key, MODEL_RATINGS, { after });
      expect(res.errors).toBeUndefined();
      const page: any = res.data!.preferences;
      all.push(...page.edges.map((e: any) => e.node));
      if (!page.pageInfo.hasNextPage) return all;
      after = page.pageInfo.endCursor;
    }
  }

  beforeAll(async () => {
    fake = await FakeOpenAIServer.start();
    fake.defaultChat = judgeChat;
    app = await startTestApp(
      { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.baseUrl, LLM_RETRY_BASE_MS: '20', LLM_TIMEOUT_MS: '5000', LLM_TOKENS_PER_MINUTE: '1000000000' },
      { worker: true },
    );
  });

  afterAll(async () => {
    await app?.stop();
    await fake?.close();
  });

  describe('rating', () => {
    let lab: TestProject;
    let images: { imageIds: string[]; imageGlobalIds: string[] };
    let generationRunId: string;
    let ratingRunId: string;

    beforeAll(async () => {
      lab = await createTestProject(app, 'rate-lab');
      images = await seedPipeline(app, lab, { demonstrations: false });
      const gen = await start(lab.keys.CURATOR, START_GENERATION, { images: { imageIds: images.imageGlobalIds }, demonstrationsPerPrompt: 0, seed: 1, limits: { concurrency: 5 } });
      expect(await waitForRun(app, lab.keys.CURATOR, gen.id)).toMatchObject({ status: 'SUCCEEDED', done: 5 });
      generationRunId = gen.id;
    });

    it('rates every answer of a generation run as MODEL RATING preferences with the score the judge replied', async () => {
      const mark = fake.requests.length;
      // One judge reply, for one round-4 answer, has no score at all.
      fake.onChat((body) => isJudge(body) && userText(body).includes('Question: What are the limitations'), { reply: UNPARSEABLE }, 1);
      const run = await start(lab.keys.CURATOR, START_RATING, { generationRunId, limits: { concurrency: 4 } });
      expect(run).toMatchObject({ kind: 'RATING', status: 'QUEUED', total: 25 });
      expect(await waitForRun(app, lab.keys.CURATOR, run.id)).toMatchObject({ status: 'SUCCEEDED', total: 25, done: 24, failed: 1, queued: 0 });
      ratingRunId = run.id;

      // The requests: one per answer, each with the figure's caption, the question, the answer and the image.
      const requests = judgeRequests(mark);
      expect(requests).toHaveLength(25);
      for (const r of requests) {
        const urls = imageUrls(r.body);
        expect(urls).toHaveLength(1);
        expect(urls[0]).toMatch(/^data:image\/(png|jpeg|webp);base64,[A-Za-z0-9+/]{100,}/);
      }
      const prompts = requests.map((r) => parseJudgePrompt(userText(r.body)));

      const ratings = await modelRatings(lab.keys.VIEWER);
      expect(ratings).toHaveLength(24);
      const expectedPrompts: string[] = [];
      for (const p of ratings) {
        expect(p).toMatchObject({ source: 'MODEL', kind: 'RATING', rubricVersion: 'rating/v1', judgeModel: 'gpt-4o', answerIndex: 0 });
        const round = p.candidate.rounds[p.roundIndex];
        expect(round.index).toBe(p.roundIndex);
        expect(p.rating).toBe(judgeScore(norm(round.question), round.answer.trim()));
        expect(p.rationale).toContain(`Scored ${p.rating}`);
        expectedPrompts.push(JSON.stringify({ caption: p.candidate.image.caption, question: norm(round.question), answer: round.answer.trim() }));
      }
      // Every rated answer was sent as such, with its own figure's caption.
      const sent = prompts.map((p) => JSON.stringify(p));
      for (const e of expectedPrompts) expect(sent).toContain(e);
      expect(new Set(ratings.map((p) => p.rating)).size).toBeGreaterThan(3);
      // Every (candidate, round) pair of the 5 candidates × 5 rounds is accounted for, once.
      const keys = ratings.map((p) => `${p.candidate.id}:${p.roundIndex}`);
      expect(new Set(keys).size).toBe(24);
      expect(new Set(ratings.map((p) => p.candidate.id)).size).toBe(5);
      expect(new Set(ratings.map((p) => p.roundIndex))).toEqual(new Set([0, 1, 2, 3, 4]));
    });

    it('keeps an unparseable judge reply as a run failure with the raw reply, never as a preference', async () => {
      const res = await gql(app.graphqlUrl, lab.keys.VIEWER, RUN_WITH_FAILURES, { id: ratingRunId });
      expect(res.errors).toBeUndefined();
      const run = res.data!.node;
      expect(run).toMatchObject({ status: 'SUCCEEDED', failed: 1, done: 24 });
      expect(run.failures.totalCount).toBe(1);
      const failure = run.failures.edges[0].node;
      expect(failure.itemKey).toMatch(/^candidate:[0-9a-f-]{36}:round:4:answer:0$/);
      expect(failure.reason).toMatch(/unparseable/i);
      expect(failure.rawOutput).toBe(UNPARSEABLE);
      expect(failure.attempts).toBeGreaterThanOrEqual(1);
      const failedCandidate = failure.itemKey.split(':')[1];
      const rows = await app.ds.query(`SELECT count(*)::int AS n FROM preferences WHERE run_id = $1 AND candidate_id = $2 AND round_index = 4 AND answer_index = 0`, [
        fromGlobalId(ratingRunId)!.id,
        failedCandidate,
      ]);
      expect(rows[0].n).toBe(0);
      // The failure is a node of its own.
      const node = await gql(app.graphqlUrl, lab.keys.VIEWER, `query($id: ID!) { node(id: $id) { ... on RunFailure { itemKey rawOutput } } }`, { id: failure.id });
      expect(node.data!.node).toEqual({ itemKey: failure.itemKey, rawOutput: UNPARSEABLE });
    });

    it('stores one preference per item of a run, and a resumed run fills only what is missing', async () => {
      const runId = fromGlobalId(ratingRunId)!.id;
      const counts = async () =>
        (
          await app.ds.query(
            `SELECT (SELECT count(*)::int FROM preferences WHERE run_id = $1) AS prefs,
                    (SELECT count(DISTINCT (candidate_id, round_index, answer_index))::int FROM preferences WHERE run_id = $1) AS items,
                    (SELECT count(*)::int FROM run_failures WHERE run_id = $1) AS failures,
                    r.done, r.failed FROM runs r WHERE r.id = $1`,
            [runId],
          )
        )[0];
      expect(await counts()).toEqual({ prefs: 24, items: 24, failures: 1, done: 24, failed: 1 });

      // Simulate a crash that lost three ratings, then run the handler again, as a resumed attempt does.
      await app.ds.query(
        `WITH gone AS (DELETE FROM preferences WHERE id IN (SELECT id FROM preferences WHERE run_id = $1 ORDER BY id LIMIT 3) RETURNING 1)
         UPDATE runs SET done = done - (SELECT count(*) FROM gone) WHERE id = $1`,
        [runId],
      );
      const mark = fake.requests.length;
      const job = new RatingRun(app.services.candidates, app.services.preferences, app.services.llm, app.services.images, app.services.runs, app.services.config.LLM_IMAGE_MAX_SIDE);
      const run = (await app.services.runs.findForWorker(runId))!;
      await job.execute(run, new RunControl(runId, app.services.runs));
      expect(judgeRequests(mark)).toHaveLength(3);
      expect(await counts()).toEqual({ prefs: 24, items: 24, failures: 1, done: 24, failed: 1 });

      // Nothing left: another pass asks the judge nothing and writes nothing.
      const again = fake.requests.length;
      await job.execute(run, new RunControl(runId, app.services.runs));
      expect(judgeRequests(again)).toHaveLength(0);
      expect(await counts()).toEqual({ prefs: 24, items: 24, failures: 1, done: 24, failed: 1 });
    });

    it('rates both answers of TWO_ANSWERS candidates (answerIndex 0 and 1)', async () => {
      const gen = await start(lab.keys.CURATOR, START_GENERATION, {
        images: { imageIds: images.imageGlobalIds.slice(0, 2) },
        form: 'TWO_ANSWERS',
        demonstrationsPerPrompt: 0,
        seed: 2,
      });
      expect(await waitForRun(app, lab.keys.CURATOR, gen.id)).toMatchObject({ status: 'SUCCEEDED', done: 2 });
      const candidates = await app.ds.query(`SELECT id, form FROM candidates WHERE run_id = $1`, [fromGlobalId(gen.id)!.id]);
      expect(candidates.map((c: any) => c.form)).toEqual(['TWO_ANSWERS', 'TWO_ANSWERS']);

      const mark = fake.requests.length;
      const run = await start(lab.keys.CURATOR, START_RATING, { candidateIds: candidates.map((c: any) => toGlobalId('Candidate', c.id)) });
      expect(run.total).toBe(20);
      expect(await waitForRun(app, lab.keys.CURATOR, run.id)).toMatchObject({ status: 'SUCCEEDED', done: 20, failed: 0 });
      expect(judgeRequests(mark)).toHaveLength(20);

      const ids = new Set(candidates.map((c: any) => toGlobalId('Candidate', c.id)));
      const ratings = (await modelRatings(lab.keys.VIEWER)).filter((p) => ids.has(p.candidate.id));
      expect(ratings).toHaveLength(20);
      const sent = judgeRequests(mark).map((r) => JSON.stringify(parseJudgePrompt(userText(r.body))));
      for (const p of ratings) {
        const round = p.candidate.rounds[p.roundIndex];
        const answer = p.answerIndex === 0 ? round.answer : round.alternativeAnswer;
        expect(round.alternativeAnswer).toBeTruthy();
        expect(p.rating).toBe(judgeScore(norm(round.question), answer.trim()));
        expect(sent).toContain(JSON.stringify({ caption: p.candidate.image.caption, question: norm(round.question), answer: answer.trim() }));
      }
      const keys = ratings.map((p) => `${p.candidate.id}:${p.roundIndex}:${p.answerIndex}`);
      expect(new Set(keys).size).toBe(20);
      expect(ratings.filter((p) => p.answerIndex === 0)).toHaveLength(10);
      expect(ratings.filter((p) => p.answerIndex === 1)).toHaveLength(10);
    });
  });

  describe('clustering', () => {
    let lab: TestProject;
    let firstAssignments: Record<string, number>;

    const expectedTexts = SHARED_IMAGE_NAMES.map((name) => [FIGURE_CAPTIONS[name].caption, ...FIGURE_CAPTIONS[name].mentions].join('\n'));
    const embeddingInputs = (from: number): string[] =>
      fake.requests.slice(from).filter((r) => r.endpoint === 'embeddings').flatMap((r) => (Array.isArray(r.body.input) ? r.body.input : [r.body.input]));

    async function assignments(): Promise<Record<string, number | null>> {
      const res = await gql(app.graphqlUrl, lab.keys.VIEWER, IMAGES);
      expect(res.errors).toBeUndefined();
      return Object.fromEntries(res.data!.images.edges.map((e: any) => [e.node.id, e.node.clusterId]));
    }

    async function clusterSizes(key = lab.keys.VIEWER): Promise<{ clusterId: number; size: number }[]> {
      const res = await gql(app.graphqlUrl, key, CLUSTERS);
      expect(res.errors).toBeUndefined();
      return res.data!.imageClusters;
    }

    beforeAll(async () => {
      lab = await createTestProject(app, 'cluster-lab');
      await seedPipeline(app, lab, { demonstrations: false });
    });

    it('assigns every image to one of k clusters from caption + mentions embeddings', async () => {
      expect(Object.values(await assignments()).every((c) => c === null)).toBe(true);
      const mark = fake.requests.length;
      const run = await start(lab.keys.CURATOR, START_CLUSTERING, { k: 2, seed: 1 });
      expect(run).toMatchObject({ kind: 'CLUSTERING', total: 5 });
      expect(await waitForRun(app, lab.keys.CURATOR, run.id)).toMatchObject({ status: 'SUCCEEDED', total: 5, done: 5, failed: 0 });

      const inputs = embeddingInputs(mark);
      expect([...inputs].sort()).toEqual([...expectedTexts].sort());
      expect(inputs.some((t) => t.includes('Figure 4 demonstrates the mass.') && t.includes('It measured 4 cm.') && t.includes('hypodense liver mass'))).toBe(true);
      expect(fake.requests.slice(mark).filter((r) => r.endpoint === 'embeddings').every((r) => r.body.model === 'text-embedding-3-small')).toBe(true);

      const byImage = await assignments();
      const ids = Object.values(byImage);
      expect(ids).toHaveLength(5);
      expect(ids.every((c) => c === 0 || c === 1)).toBe(true);
      expect(new Set(ids).size).toBe(2);
      const sizes = await clusterSizes();
      expect(sizes).toHaveLength(2);
      expect(sizes.reduce((sum, s) => sum + s.size, 0)).toBe(5);
      for (const s of sizes) expect(s.size).toBe(ids.filter((c) => c === s.clusterId).length);
      const params = (await gql(app.graphqlUrl, lab.keys.VIEWER, RUN_WITH_FAILURES, { id: run.id })).data!.node.params;
      expect(params).toMatchObject({ k: 2, seed: 1, clusters: 2 });
      firstAssignments = byImage as Record<string, number>;
    });

    it('reuses cached embeddings on a second run and, with the same seed, assigns the same clusters', async () => {
      expect(firstAssignments).toBeDefined();
      const cached = await app.ds.query(`SELECT count(*)::int AS n FROM image_embeddings WHERE project_id = $1`, [lab.id]);
      expect(cached[0].n).toBe(5);
      const mark = fake.requests.length;
      const run = await start(lab.keys.CURATOR, START_CLUSTERING, { k: 2, seed: 1 });
      expect(await waitForRun(app, lab.keys.CURATOR, run.id)).toMatchObject({ status: 'SUCCEEDED', done: 5 });
      expect(fake.requests.slice(mark).filter((r) => r.endpoint === 'embeddings')).toHaveLength(0);
      expect(await assignments()).toEqual(firstAssignments);
    });

    it('caps k at the number of images', async () => {
      const mark = fake.requests.length;
      const run = await start(lab.keys.CURATOR, START_CLUSTERING, { k: 50, seed: 1 });
      expect(await waitForRun(app, lab.keys.CURATOR, run.id)).toMatchObject({ status: 'SUCCEEDED', done: 5, failed: 0 });
      expect(fake.requests.slice(mark).filter((r) => r.endpoint === 'embeddings')).toHaveLength(0);
      const params = (await gql(app.graphqlUrl, lab.keys.VIEWER, RUN_WITH_FAILURES, { id: run.id })).data!.node.params;
      expect(params).toMatchObject({ k: 50, clusters: 5 });
      const ids = Object.values(await assignments());
      expect([...ids].sort()).toEqual([0, 1, 2, 3, 4]);
      expect(await clusterSizes()).toEqual([0, 1, 2, 3, 4].map((clusterId) => ({ clusterId, size: 1 })));
    });
  });
});
