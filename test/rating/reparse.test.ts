/**
 * Issue 9, item 11: `reparseRun` applies the current parsers to the replies an ended run stored
 * for its failed items, turns those that now parse into results exactly once, and calls no model.
 *
 * The runs are real (worker, queue, real SDK against the fake server). What a run stored under an
 * earlier parser is set up by rewriting the kept reply of some failed items to a form the earlier
 * parser could not read and the current one reads (a bare score line, bold turn labels): the same
 * rows an earlier deploy left behind.
 */
import { ChatBehaviour, defaultChatBehaviour, FakeOpenAIServer } from '../fakes/openai-server';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql, GraphQLResponse } from '../support/graphql-client';
import { seedPipeline, START_GENERATION, waitForRun } from '../support/pipeline-fixture';
import { fromGlobalId, toGlobalId } from '../../src/platform/ids';
import { RatingRun } from '../../src/modules/rating/rating.run';
import { RunControl } from '../../src/modules/runs/run-executor';
import { Role } from '../../src/modules/projects/role';

const REPARSE = `mutation($input: ReparseRunInput!) {
  reparseRun(input: $input) { run { id status total done failed queued } examined parsed stillFailing userErrors { code field message } }
}`;
const START_RATING = `mutation($input: StartRatingRunInput!) {
  startRatingRun(input: $input) { run { id status total } userErrors { field message code } }
}`;
const CANCEL = `mutation($input: CancelRunInput!) { cancelRun(input: $input) { run { id status } userErrors { code } } }`;

const PROSE = 'This figure shows tissue. Overall the findings are interesting and merit follow-up.';
const UNSCORED = 'This answer is thorough and well grounded in the figure, but I will not put a number on it.';

const isJudge = (body: any) => (body?.messages ?? []).some((m: any) => m.role === 'system' && String(m.content).includes('You judge'));

/** A conversation with bold turn labels, five rounds: read by the current conversation parser. */
const boldConversation = (topic: string) =>
  Array.from({ length: 5 }, (_, k) => `**User:** Question ${k + 1} about ${topic}?\n**Assistant:** Answer ${k + 1} about ${topic}.`).join('\n');

describe('reparseRun', () => {
  let fake: FakeOpenAIServer;
  let app: TestApp;
  let lab: TestProject;
  let other: TestProject;
  let imageGlobalIds: string[];

  const reparse = async (runId: string, key = lab.keys.CURATOR): Promise<GraphQLResponse> => gql(app.graphqlUrl, key, REPARSE, { input: { runId } });
  const payload = async (runId: string) => {
    const res = await reparse(runId);
    expect(res.errors).toBeUndefined();
    return res.data!.reparseRun;
  };
  const chatCount = () => fake.chatRequests().length;

  beforeAll(async () => {
    fake = await FakeOpenAIServer.start();
    app = await startTestApp(
      { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.baseUrl, LLM_RETRY_BASE_MS: '20', LLM_TIMEOUT_MS: '5000', LLM_TOKENS_PER_MINUTE: '1000000000' },
      { worker: true },
    );
    lab = await createTestProject(app, 'reparse-lab');
    other = await createTestProject(app, 'reparse-other');
    ({ imageGlobalIds } = await seedPipeline(app, lab, { demonstrations: false }));
  });

  afterAll(async () => {
    await app?.stop();
    await fake?.close();
  });

  async function generate(): Promise<{ id: string; run: Record<string, any> }> {
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, START_GENERATION, { input: { images: { imageIds: imageGlobalIds }, demonstrationsPerPrompt: 0, seed: 7 } });
    expect(res.data!.startGenerationRun.userErrors).toEqual([]);
    const id = res.data!.startGenerationRun.run.id;
    return { id, run: await waitForRun(app, lab.keys.CURATOR, id) };
  }

  describe('a generation run', () => {
    let runId: string;
    let failedIds: string[];

    beforeAll(async () => {
      fake.defaultChat = () => ({ reply: PROSE });
      const { id, run } = await generate();
      fake.defaultChat = defaultChatBehaviour;
      expect(run).toMatchObject({ status: 'FAILED', total: 5, done: 0, failed: 5 });
      runId = id;
      failedIds = (await app.ds.query(`SELECT id FROM candidates WHERE run_id = $1 AND status = 'PARSE_FAILED' ORDER BY id`, [fromGlobalId(id)!.id])).map((r: any) => r.id);
      expect(failedIds).toHaveLength(5);
    });

    it('turns PARSE_FAILED candidates whose reply now parses into OK in place, moves the counters, makes the FAILED run SUCCEEDED, and calls no model', async () => {
      const readable = failedIds.slice(0, 3);
      for (const [k, id] of readable.entries()) await app.ds.query(`UPDATE candidates SET raw_output = $2 WHERE id = $1`, [id, boldConversation(`finding ${k}`)]);
      const mark = chatCount();

      const result = await payload(runId);
      expect(result).toMatchObject({ examined: 5, parsed: 3, stillFailing: 2, userErrors: [] });
      expect(result.run).toMatchObject({ status: 'SUCCEEDED', total: 5, done: 3, failed: 2, queued: 0 });
      expect(chatCount()).toBe(mark);

      const rows = await app.ds.query(`SELECT id, status, failure_reason, rounds, raw_output FROM candidates WHERE run_id = $1 ORDER BY id`, [fromGlobalId(runId)!.id]);
      expect(rows).toHaveLength(5); // updated in place, nothing added
      for (const [k, id] of readable.entries()) {
        const row = rows.find((r: any) => r.id === id);
        expect(row).toMatchObject({ status: 'OK', failure_reason: null, raw_output: boldConversation(`finding ${k}`) });
        expect(row.rounds).toHaveLength(5);
        expect(row.rounds[0]).toEqual({ question: `Question 1 about finding ${k}?`, answers: [`Answer 1 about finding ${k}.`] });
      }
      expect(rows.filter((r: any) => r.status === 'PARSE_FAILED').map((r: any) => r.id)).toEqual(failedIds.slice(3));

      // Again: nothing more parses, nothing moves.
      expect(await payload(runId)).toMatchObject({ examined: 2, parsed: 0, stillFailing: 2, run: { status: 'SUCCEEDED', done: 3, failed: 2 } });
    });

    it('moves each item once when re-parses run at the same time', async () => {
      await app.ds.query(`UPDATE candidates SET raw_output = $2 WHERE id = $1`, [failedIds[3], boldConversation('the lesion')]);
      const results = await Promise.all([payload(runId), payload(runId), payload(runId)]);
      expect(results.reduce((sum, r) => sum + r.parsed, 0)).toBe(1);
      const [run] = await app.ds.query(`SELECT status, done, failed FROM runs WHERE id = $1`, [fromGlobalId(runId)!.id]);
      expect(run).toEqual({ status: 'SUCCEEDED', done: 4, failed: 1 });
      const [{ ok }] = await app.ds.query(`SELECT count(*)::int AS ok FROM candidates WHERE run_id = $1 AND status = 'OK'`, [fromGlobalId(runId)!.id]);
      expect(ok).toBe(4);
    });
  });

  describe('a rating run', () => {
    let runId: string;

    beforeAll(async () => {
      const gen = await generate();
      expect(gen.run).toMatchObject({ status: 'SUCCEEDED', done: 5 });
      fake.defaultChat = (body): ChatBehaviour => (isJudge(body) ? { reply: UNSCORED } : defaultChatBehaviour(body));
      const res = await gql(app.graphqlUrl, lab.keys.CURATOR, START_RATING, { input: { generationRunId: gen.id } });
      runId = res.data!.startRatingRun.run.id;
      expect(await waitForRun(app, lab.keys.CURATOR, runId)).toMatchObject({ status: 'FAILED', total: 25, done: 0, failed: 25 });
      fake.defaultChat = defaultChatBehaviour;
    });

    it('turns stored unparseable replies that now parse into MODEL ratings with the job’s keys, exactly once, with no model call', async () => {
      const id = fromGlobalId(runId)!.id;
      const failures: { id: string; item_key: string }[] = await app.ds.query(`SELECT id, item_key FROM run_failures WHERE run_id = $1 ORDER BY item_key`, [id]);
      expect(failures).toHaveLength(25);
      // 20 of them as the judges of the incident replied: the score alone on the first line.
      const scoreOf = (k: number) => k % 11;
      const readable = failures.slice(0, 20);
      for (const [k, f] of readable.entries()) {
        await app.ds.query(`UPDATE run_failures SET raw_output = $2 WHERE id = $1`, [f.id, `${scoreOf(k)}\nThe answer is relevant and accurate for item ${k}.`]);
      }
      const mark = chatCount();

      const result = await payload(runId);
      expect(result).toMatchObject({ examined: 25, parsed: 20, stillFailing: 5, userErrors: [] });
      expect(result.run).toMatchObject({ status: 'SUCCEEDED', total: 25, done: 20, failed: 5, queued: 0 });
      expect(chatCount()).toBe(mark);

      const prefs = await app.ds.query(
        `SELECT 'candidate:' || candidate_id || ':round:' || round_index || ':answer:' || answer_index AS item_key, source, kind, rating, rationale, judge_model, rubric_version
         FROM preferences WHERE run_id = $1 ORDER BY 1`,
        [id],
      );
      expect(prefs).toEqual(
        readable.map((f, k) => ({
          item_key: f.item_key,
          source: 'MODEL',
          kind: 'RATING',
          rating: scoreOf(k),
          rationale: `The answer is relevant and accurate for item ${k}.`,
          judge_model: 'gpt-4o',
          rubric_version: 'rating/v1',
        })),
      );
      const left = await app.ds.query(`SELECT item_key FROM run_failures WHERE run_id = $1 ORDER BY item_key`, [id]);
      expect(left.map((f: any) => f.item_key)).toEqual(failures.slice(20).map((f) => f.item_key));

      // The keys are the job's: a resumed rating job finds nothing pending and asks the judge nothing.
      const job = new RatingRun(app.services.candidates, app.services.preferences, app.services.llm, app.services.images, app.services.runs, app.services.config.LLM_IMAGE_MAX_SIDE);
      await job.execute((await app.services.runs.findForWorker(id))!, new RunControl(id, app.services.runs));
      expect(chatCount()).toBe(mark);

      // Twice, or at once: nothing more moves.
      const again = await Promise.all([payload(runId), payload(runId)]);
      for (const r of again) expect(r).toMatchObject({ examined: 5, parsed: 0, stillFailing: 5, run: { done: 20, failed: 5 } });
      const [{ n }] = await app.ds.query(`SELECT count(*)::int AS n FROM preferences WHERE run_id = $1`, [id]);
      expect(n).toBe(20);

      // A refusal keeps its text too, but it is no rating, even when the text would read as one.
      await app.ds.query(`UPDATE run_failures SET reason = 'The judge refused: 7', raw_output = '7' WHERE id = $1`, [failures[24].id]);
      expect(await payload(runId)).toMatchObject({ examined: 4, parsed: 0, stillFailing: 4, run: { done: 20, failed: 5 } });
    });
  });

  describe('guards', () => {
    let endedRunId: string;

    beforeAll(async () => {
      endedRunId = (await app.ds.query(`SELECT id FROM runs WHERE project_id = $1 AND kind = 'GENERATION' ORDER BY created_at LIMIT 1`, [lab.id]))[0].id;
    });

    it('refuses a run that is still queued (CONFLICT) and writes nothing', async () => {
      await app.stopWorker();
      try {
        const res = await gql(app.graphqlUrl, lab.keys.CURATOR, START_GENERATION, { input: { images: { imageIds: imageGlobalIds.slice(0, 1) }, demonstrationsPerPrompt: 0 } });
        const queued = res.data!.startGenerationRun.run;
        expect(queued.status).toBe('QUEUED');
        const result = await payload(queued.id);
        expect(result).toEqual({ run: null, examined: null, parsed: null, stillFailing: null, userErrors: [expect.objectContaining({ code: 'CONFLICT', field: ['input', 'runId'] })] });
        await gql(app.graphqlUrl, lab.keys.CURATOR, CANCEL, { input: { runId: queued.id } });
      } finally {
        await app.startWorker();
      }
    });

    it("answers NOT_FOUND for another project's run", async () => {
      const res = await reparse(toGlobalId('Run', endedRunId), other.keys.OWNER);
      expect(res.errors).toBeUndefined();
      expect(res.data!.reparseRun).toMatchObject({ run: null, userErrors: [expect.objectContaining({ code: 'NOT_FOUND' })] });
    });

    it.each([Role.VIEWER, Role.CLINICIAN])('refuses a %s with FORBIDDEN', async (role) => {
      const res = await reparse(toGlobalId('Run', endedRunId), lab.keys[role]);
      expect(res.errors?.map((e: any) => e.extensions?.code)).toEqual(['FORBIDDEN']);
    });
  });
});
