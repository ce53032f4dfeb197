/**
 * Issue 9, item 10: judge replies in the forms real models send are read, and rating requests ask
 * for structured output (OpenAI `response_format: json_schema`) unless LLM_STRUCTURED_OUTPUT=off,
 * with a fallback for servers that refuse it. Real runs through the worker, the real SDK against
 * the fake server.
 */
import crypto from 'node:crypto';
import { ChatBehaviour, defaultChatBehaviour, FakeOpenAIServer, requestedJsonSchema } from '../fakes/openai-server';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { seedPipeline, START_GENERATION, waitForRun } from '../support/pipeline-fixture';
import { fromGlobalId } from '../../src/platform/ids';
import { loadConfig } from '../../src/platform/config';
import { LlmClient } from '../../src/platform/llm';
import { buildRatingRequest, RATING_RESPONSE_FORMAT } from '../../src/modules/rating/rating-request';
import { parseRatingReply } from '../../src/modules/rating/rating-parser';

const START_RATING = `mutation($input: StartRatingRunInput!) {
  startRatingRun(input: $input) { run { id status total } userErrors { field message code } }
}`;

const isJudge = (body: any) => (body?.messages ?? []).some((m: any) => m.role === 'system' && String(m.content).includes('You judge'));
const judgeText = (body: any): string =>
  (body.messages.at(-1).content as any[])
    .filter((p) => p.type === 'text')
    .map((p) => p.text)
    .join('\n');
const answerOf = (body: any) => /\n\nAnswer: ([\s\S]*?)\n\nReply with JSON only/.exec(judgeText(body))![1];

/** The fake judge's integer score for an answer. */
const scoreFor = (answer: string) => crypto.createHash('sha256').update(answer).digest()[0] % 11;

/** Text forms real judges reply with when they ignore response_format, one picked per answer. */
const TEXT_FORMS: Array<(score: number) => string> = [
  (s) => `${s}\nThe answer is relevant to the figure and accurately describes what is visible.`,
  (s) => `${s}`,
  (s) => `${s}/10\nThe answer is relevant to the figure and accurately describes what is visible.`,
  (s) => `Rating: ${s}/10\nThe answer is relevant to the figure and accurately describes what is visible.`,
  (s) => `Rating - ${s}\nThe answer is relevant to the figure and accurately describes what is visible.`,
  (s) => `I would rate this ${s} out of 10 because the answer is relevant to the figure.`,
  (s) => `\`\`\`json\n{"score": ${s}, "rationale": "Relevant and accurate."}\n\`\`\``,
];

/** A judge that ignores response_format and writes text, as many servers and models do. */
function textJudge(body: any): ChatBehaviour {
  if (!isJudge(body)) return defaultChatBehaviour(body);
  const answer = answerOf(body);
  const form = TEXT_FORMS[crypto.createHash('sha256').update(`form:${answer}`).digest()[0] % TEXT_FORMS.length];
  return { reply: form(scoreFor(answer)) };
}

/** A judge that honours the schema it was asked for, and otherwise writes a conversation (no score at all). */
function structuredJudge(body: any): ChatBehaviour {
  if (!isJudge(body) || !requestedJsonSchema(body)) return defaultChatBehaviour(body);
  return { reply: JSON.stringify({ score: scoreFor(answerOf(body)), rationale: 'Relevant and accurate.' }) };
}

describe('judge replies and structured output', () => {
  let fake: FakeOpenAIServer;
  let app: TestApp;
  let lab: TestProject;
  let generationRunId: string;

  beforeAll(async () => {
    fake = await FakeOpenAIServer.start();
    app = await startTestApp(
      { OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.baseUrl, LLM_RETRY_BASE_MS: '20', LLM_TIMEOUT_MS: '5000', LLM_TOKENS_PER_MINUTE: '1000000000' },
      { worker: true },
    );
    lab = await createTestProject(app, 'judge-lab');
    const images = await seedPipeline(app, lab, { demonstrations: false });
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, START_GENERATION, { input: { images: { imageIds: images.imageGlobalIds }, demonstrationsPerPrompt: 0, seed: 3 } });
    generationRunId = res.data!.startGenerationRun.run.id;
    expect(await waitForRun(app, lab.keys.CURATOR, generationRunId)).toMatchObject({ status: 'SUCCEEDED', done: 5 });
  });

  afterAll(async () => {
    await app?.stop();
    await fake?.close();
  });

  async function rateAll(): Promise<{ run: Record<string, any>; ratings: { rating: number; answer: string }[]; requests: any[] }> {
    const mark = fake.requests.length;
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, START_RATING, { input: { generationRunId } });
    expect(res.data!.startRatingRun.userErrors).toEqual([]);
    const runId = res.data!.startRatingRun.run.id;
    const run = await waitForRun(app, lab.keys.CURATOR, runId);
    const ratings = await app.ds.query(
      `SELECT p.rating, c.rounds -> p.round_index -> 'answers' ->> p.answer_index AS answer FROM preferences p JOIN candidates c ON c.id = p.candidate_id WHERE p.run_id = $1`,
      [fromGlobalId(runId)!.id],
    );
    return { run, ratings, requests: fake.requests.slice(mark).filter((r) => r.endpoint === 'chat' && isJudge(r.body)) };
  }

  it('turns text replies (bare score line, 7/10, Rating - 7, a sentence, a fence) into ratings: none is lost', async () => {
    fake.defaultChat = textJudge;
    const { run, ratings, requests } = await rateAll();
    expect(run).toMatchObject({ status: 'SUCCEEDED', total: 25, done: 25, failed: 0 });
    expect(requests).toHaveLength(25);
    expect(ratings).toHaveLength(25);
    for (const r of ratings) expect(r.rating).toBe(scoreFor(r.answer.trim()));
  });

  it('asks for the rating as JSON through response_format (strict json_schema) and reads what a structured-output server sends', async () => {
    fake.defaultChat = structuredJudge;
    const { run, ratings, requests } = await rateAll();
    expect(run).toMatchObject({ status: 'SUCCEEDED', done: 25, failed: 0 });
    for (const r of requests) {
      expect(r.body.response_format).toEqual({
        type: 'json_schema',
        json_schema: {
          name: 'answer_rating',
          strict: true,
          schema: {
            type: 'object',
            properties: { score: expect.objectContaining({ type: 'integer', enum: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }), rationale: expect.objectContaining({ type: 'string' }) },
            required: ['score', 'rationale'],
            additionalProperties: false,
          },
        },
      });
    }
    for (const r of ratings) expect(r.rating).toBe(scoreFor(r.answer.trim()));
    // Generation requests do not ask for JSON.
    expect(fake.requests.filter((r) => r.endpoint === 'chat' && !isJudge(r.body)).every((r) => r.body.response_format === undefined)).toBe(true);
  });
});

describe('LLM_STRUCTURED_OUTPUT and servers without structured output (LlmClient, real SDK)', () => {
  let fake: FakeOpenAIServer;
  const request = () => buildRatingRequest({ caption: 'Axial MRI of the brain.', mentions: [] }, 'What is shown?', 'A lesion in the left frontal lobe.', 'data:image/png;base64,AAAA', {
    temperature: 0,
    topP: null,
    maxTokens: 400,
  });
  const client = (env: Record<string, string> = {}) => LlmClient.fromConfig(loadConfig({ OPENAI_API_KEY: 'sk-test', OPENAI_BASE_URL: fake.baseUrl, LLM_TIMEOUT_MS: '5000', ...env }))!;

  beforeAll(async () => {
    fake = await FakeOpenAIServer.start();
    fake.defaultChat = (body) => ({ reply: requestedJsonSchema(body) ? '{"score": 6, "rationale": "Fine."}' : '6\nFine.' });
  });
  afterEach(() => {
    fake.reset();
    fake.responseFormat = 'supported';
  });
  afterAll(async () => fake?.close());

  it('is json_schema by default and refuses other values at start-up', () => {
    expect(loadConfig({}).LLM_STRUCTURED_OUTPUT).toBe('json_schema');
    expect(loadConfig({ LLM_STRUCTURED_OUTPUT: 'off' }).LLM_STRUCTURED_OUTPUT).toBe('off');
    expect(() => loadConfig({ LLM_STRUCTURED_OUTPUT: 'json' })).toThrow(/LLM_STRUCTURED_OUTPUT/);
  });

  it('sends response_format when on', async () => {
    const reply = await client().chat(request());
    expect(fake.chatRequests().map((r) => r.body.response_format)).toEqual([RATING_RESPONSE_FORMAT]);
    expect(parseRatingReply(reply.content!)).toEqual({ kind: 'ok', score: 6, rationale: 'Fine.' });
  });

  it('sends no response_format with LLM_STRUCTURED_OUTPUT=off, and the text reply still parses', async () => {
    const reply = await client({ LLM_STRUCTURED_OUTPUT: 'off' }).chat(request());
    expect(fake.chatRequests()).toHaveLength(1);
    expect(fake.chatRequests()[0].body).not.toHaveProperty('response_format');
    expect(parseRatingReply(reply.content!)).toEqual({ kind: 'ok', score: 6, rationale: 'Fine.' });
  });

  it('falls back once to a request without response_format when the server answers 400 to it, and remembers', async () => {
    fake.responseFormat = 'rejected';
    const llm = client();
    const first = await llm.chat(request());
    expect(parseRatingReply(first.content!)).toEqual({ kind: 'ok', score: 6, rationale: 'Fine.' });
    expect(fake.chatRequests().map((r) => 'response_format' in r.body)).toEqual([true, false]);
    await llm.chat(request());
    expect(fake.chatRequests().map((r) => 'response_format' in r.body)).toEqual([true, false, false]);
  });

  it('does not hide other 400s behind the fallback', async () => {
    fake.enqueueChat({ status: 400, message: 'Invalid image data.' });
    await expect(client().chat(request())).rejects.toMatchObject({ status: 400 });
    expect(fake.chatRequests()).toHaveLength(1);
  });
});
