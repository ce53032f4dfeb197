/**
 * Generation runs against a fake OpenAI server that misbehaves: what the worker sends, how it
 * retries, paces and gives up, how it classifies replies, cancellation, and start-up errors.
 */
import { conversationReply, estimatePromptTokens, FakeOpenAIServer } from '../fakes/openai-server';
import { createTestProject, startTestApp, TestApp, TestProject } from '../support/test-app';
import { gql } from '../support/graphql-client';
import { FIGURE_CAPTIONS, seedPipeline, START_GENERATION, waitForRun } from '../support/pipeline-fixture';
import { readDemonstrations, SHARED_IMAGE_NAMES } from '../support/shared-data';
import { fromGlobalId, toGlobalId } from '../../src/platform/ids';

const VISION_MODEL = 'gpt-4o-faults-test';
const TIMEOUT_MS = 1200;
const MAX_ATTEMPTS = 3;

const CANCEL_RUN = `mutation($input: CancelRunInput!) { cancelRun(input: $input) { run { id status } userErrors { field message code } } }`;

const CANDIDATE = `query($id: ID!) { node(id: $id) { ... on Candidate {
  id status form sampleIndex rawOutput failureReason
  rounds { index question answer alternativeAnswer }
  provenance { attempts model promptTemplateVersion promptTokens completionTokens }
  demonstrationsUsed(first: 20) { edges { node { id } } }
} } }`;

interface CandidateRow {
  id: string;
  image_id: string;
  sample_index: number;
  status: string;
  form: string;
  raw_output: string | null;
  failure_reason: string | null;
  attempts: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number;
  demonstration_ids: string[];
  prompt_template_version: string | null;
  model: string | null;
  rounds: { question: string; answers: string[] }[];
}

interface DemoRecord {
  fig_caption: string;
  domain: Record<string, boolean>;
  conversations: { from: string; value: string }[];
}

const SHARED_DEMOS = readDemonstrations() as DemoRecord[];

function textOf(message: any): string {
  if (typeof message?.content === 'string') return message.content;
  if (!Array.isArray(message?.content)) return '';
  return message.content
    .filter((p: any) => p?.type === 'text')
    .map((p: any) => p.text)
    .join('\n');
}

const finalUserText = (body: any): string => textOf(body.messages[body.messages.length - 1]);
const mentionsCaption = (body: any, caption: string) => finalUserText(body).includes(`Caption: ${caption}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('generation runs against a faulty model server', () => {
  let fake: FakeOpenAIServer;
  let app: TestApp;
  let lab: TestProject;
  let bare: TestProject;
  /** Raw image ids in SHARED_IMAGE_NAMES order, and their captions. */
  let imageIds: string[];
  let captionOf: Record<string, string>;
  let globalIdOf: Record<string, string>;

  beforeAll(async () => {
    fake = await FakeOpenAIServer.start();
    app = await startTestApp(
      {
        OPENAI_API_KEY: 'sk-test',
        OPENAI_BASE_URL: fake.baseUrl,
        LLM_VISION_MODEL: VISION_MODEL,
        LLM_RETRY_BASE_MS: '20',
        LLM_TIMEOUT_MS: String(TIMEOUT_MS),
        LLM_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
        RATE_LIMIT_PER_MINUTE: '0',
      },
      { worker: true },
    );
    lab = await createTestProject(app, 'faults');
    const seeded = await seedPipeline(app, lab);
    imageIds = seeded.imageIds;
    captionOf = Object.fromEntries(imageIds.map((id, i) => [id, FIGURE_CAPTIONS[SHARED_IMAGE_NAMES[i]].caption]));
    globalIdOf = Object.fromEntries(imageIds.map((id, i) => [id, seeded.imageGlobalIds[i]]));
    bare = await createTestProject(app, 'faults-bare');
    await seedPipeline(app, bare, { demonstrations: false });
  });

  beforeEach(() => {
    fake.reset();
    fake.latencyMs = 0;
  });

  afterAll(async () => {
    await app?.stop();
    await fake?.close();
  });

  async function start(key: string, input: Record<string, unknown>) {
    const res = await gql(app.graphqlUrl, key, START_GENERATION, { input });
    return res;
  }

  /** Starts a run over raw image ids and returns its global and raw ids. */
  async function startRun(ids: string[], input: Record<string, unknown> = {}): Promise<{ globalId: string; id: string }> {
    const res = await start(lab.keys.CURATOR, { images: { imageIds: ids.map((id) => globalIdOf[id]) }, demonstrationsPerPrompt: 0, ...input });
    expect(res.errors).toBeUndefined();
    expect(res.data!.startGenerationRun.userErrors).toEqual([]);
    const globalId = res.data!.startGenerationRun.run.id as string;
    return { globalId, id: fromGlobalId(globalId)!.id };
  }

  async function runToEnd(ids: string[], input: Record<string, unknown> = {}) {
    const started = await startRun(ids, input);
    const run = await waitForRun(app, lab.keys.CURATOR, started.globalId);
    return { ...started, run };
  }

  async function candidates(runId: string): Promise<CandidateRow[]> {
    return app.ds.query(
      `SELECT id, image_id, sample_index, status, form, raw_output, failure_reason, attempts, prompt_tokens, completion_tokens, cost_usd::float8 AS cost_usd,
              demonstration_ids::text[] AS demonstration_ids, prompt_template_version, model, rounds
       FROM candidates WHERE run_id = $1 ORDER BY image_id, sample_index`,
      [runId],
    );
  }

  async function candidateByImage(runId: string, imageId: string): Promise<CandidateRow> {
    const rows = (await candidates(runId)).filter((c) => c.image_id === imageId);
    expect(rows).toHaveLength(1);
    return rows[0];
  }

  async function candidateNode(id: string): Promise<Record<string, any>> {
    const res = await gql(app.graphqlUrl, lab.keys.VIEWER, CANDIDATE, { id: toGlobalId('Candidate', id) });
    expect(res.errors).toBeUndefined();
    return res.data!.node;
  }

  async function runCount(projectId: string): Promise<number> {
    const rows = await app.ds.query(`SELECT count(*)::int AS n FROM runs WHERE project_id = $1`, [projectId]);
    return rows[0].n;
  }

  // ---------------------------------------------------------------------------------------------
  // 1. What is sent

  it('sends the rubric, the demonstrations in candidate order, the target image and caption, and the model parameters; the same seed draws the same demonstrations', async () => {
    const input = {
      samplesPerImage: 2,
      seed: 4242,
      minRounds: 3,
      demonstrationsPerPrompt: 5,
      demonstrationStrategy: 'PER_MODALITY',
      model: { temperature: 0.35, topP: 0.85, maxTokens: 1234 },
      limits: { concurrency: 4 },
    };
    const first = await runToEnd(imageIds, input);
    expect(first.run).toMatchObject({ status: 'SUCCEEDED', done: 10, failed: 0 });
    const rows = await candidates(first.id);
    expect(rows).toHaveLength(10);
    const requests = fake.chatRequests();
    expect(requests).toHaveLength(10);

    const demoRows: { id: string; caption: string }[] = await app.ds.query(
      `SELECT d.id, i.caption FROM demonstrations d JOIN images i ON i.id = d.image_id WHERE d.project_id = $1`,
      [lab.id],
    );
    const demoCaption = new Map(demoRows.map((d) => [d.id, d.caption]));
    const recordByCaption = new Map(SHARED_DEMOS.map((r) => [r.fig_caption.trim(), r]));

    for (const row of rows) {
      expect(row.status).toBe('OK');
      expect(row.prompt_template_version).toBe('generation/single-answer/v1');
      expect(row.demonstration_ids).toHaveLength(5);
      expect(new Set(row.demonstration_ids).size).toBe(5);

      // The request of this candidate: its image's caption, and the seed of its sample.
      const caption = captionOf[row.image_id];
      const mine = requests.filter((r) => mentionsCaption(r.body, caption) && r.body.seed === 4242 + row.sample_index);
      expect(mine).toHaveLength(1);
      const body = mine[0].body;

      // Model parameters as given, the model from LLM_VISION_MODEL.
      expect(body.model).toBe(VISION_MODEL);
      expect(body.temperature).toBeCloseTo(0.35);
      expect(body.top_p).toBeCloseTo(0.85);
      expect(body.max_tokens).toBe(1234);
      expect(body.stream).not.toBe(true);

      // System prompt: the rubric with the min rounds filled in.
      const messages: any[] = body.messages;
      expect(messages).toHaveLength(1 + 2 * 5 + 1);
      expect(messages[0].role).toBe('system');
      expect(messages[0].content).toContain('You are an AI assistant that specialises in biomedical figures');
      expect(messages[0].content).toContain('Write at least 3 rounds');
      expect(messages[0].content).not.toContain('{min_rounds}');
      expect(messages[0].content).toContain('"Assistant:"');

      // Demonstrations: text-only user/assistant pairs, in the candidate's demonstration_ids order.
      const modalities: string[] = [];
      row.demonstration_ids.forEach((demoId, k) => {
        const user = messages[1 + 2 * k];
        const assistant = messages[2 + 2 * k];
        expect(user.role).toBe('user');
        expect(assistant.role).toBe('assistant');
        expect(typeof user.content).toBe('string');
        expect(typeof assistant.content).toBe('string');
        const record = recordByCaption.get(demoCaption.get(demoId)!.trim());
        expect(record).toBeDefined();
        expect(user.content).toContain(`Caption: ${record!.fig_caption.trim()}`);
        const firstQuestion = record!.conversations[0].value.replace(/^<image>\s*/, '').trim();
        const lastAnswer = record!.conversations[record!.conversations.length - 1].value.trim();
        expect(assistant.content).toContain(`User: ${firstQuestion}`);
        expect(assistant.content).toContain(lastAnswer);
        modalities.push(Object.entries(record!.domain).find(([, on]) => on)![0]);
      });
      // PER_MODALITY: the pool has five modalities (CT, MRI, chest X-ray, gross, histology), so five distinct ones.
      expect(new Set(modalities).size).toBe(5);

      // The target: caption and mentions in the text, the image as a base64 data URL.
      const last = messages[messages.length - 1];
      expect(last.role).toBe('user');
      expect(Array.isArray(last.content)).toBe(true);
      expect(finalUserText(body)).toContain(`Caption: ${caption}`);
      const name = SHARED_IMAGE_NAMES[imageIds.indexOf(row.image_id)];
      for (const mention of FIGURE_CAPTIONS[name].mentions) expect(finalUserText(body)).toContain(mention);
      const imageParts = last.content.filter((p: any) => p.type === 'image_url');
      expect(imageParts).toHaveLength(1);
      const url: string = imageParts[0].image_url.url;
      const match = /^data:image\/(png|jpeg|webp|gif);base64,([A-Za-z0-9+/=]+)$/.exec(url);
      expect(match).not.toBeNull();
      const bytes = Buffer.from(match![2], 'base64');
      const magic = { png: '89504e47', jpeg: 'ffd8ff', webp: '52494646', gif: '47494638' }[match![1] as 'png'];
      expect(bytes.subarray(0, magic.length / 2).toString('hex')).toBe(magic);
      expect(bytes.length).toBeGreaterThan(1000);

      // What was stored: the reply as received, its parse, its usage and cost.
      expect(row.raw_output).toBe(conversationReply(caption, 5));
      expect(row.rounds).toHaveLength(5);
      expect(row.rounds[0]).toEqual({ question: 'What does this figure show?', answers: [`The figure shows ${caption.replace(/\.$/, '')}.`] });
      expect(row.model).toBe(VISION_MODEL);
      expect(row.prompt_tokens).toBe(estimatePromptTokens(messages));
      expect(row.completion_tokens).toBe(Math.ceil(row.raw_output!.length / 4));
      expect(row.cost_usd).toBeCloseTo((row.prompt_tokens * 2.5 + row.completion_tokens * 10) / 1e6, 5);
    }
    expect(first.run.promptTokens).toBe(rows.reduce((n, r) => n + r.prompt_tokens, 0));
    expect(first.run.completionTokens).toBe(rows.reduce((n, r) => n + r.completion_tokens, 0));
    expect(first.run.costUsd).toBeCloseTo(rows.reduce((n, r) => n + r.cost_usd, 0), 5);

    // The same order over GraphQL.
    const node = await candidateNode(rows[0].id);
    expect(node.demonstrationsUsed.edges.map((e: any) => fromGlobalId(e.node.id)!.id)).toEqual(rows[0].demonstration_ids);

    // Same seed, same images: the same demonstrations per image and sample, in the same order.
    fake.reset();
    const second = await runToEnd(imageIds, input);
    expect(second.run.status).toBe('SUCCEEDED');
    const again = await candidates(second.id);
    expect(again.map((c) => [c.image_id, c.sample_index, c.demonstration_ids])).toEqual(rows.map((c) => [c.image_id, c.sample_index, c.demonstration_ids]));

    // Another seed draws differently for at least one item.
    const third = await runToEnd(imageIds, { ...input, seed: 4243 });
    const other = await candidates(third.id);
    expect(other.map((c) => c.demonstration_ids)).not.toEqual(rows.map((c) => c.demonstration_ids));
  });

  // ---------------------------------------------------------------------------------------------
  // 2-5. Transient faults are retried

  it('honours retry-after on a 429 and then succeeds with attempts 2', async () => {
    fake.enqueueChat({ status: 429, retryAfterSeconds: 1 });
    const { id, run } = await runToEnd([imageIds[0]]);
    expect(run).toMatchObject({ status: 'SUCCEEDED', done: 1, failed: 0 });
    const requests = fake.chatRequests();
    expect(requests).toHaveLength(2);
    expect(requests[1].receivedAt - requests[0].receivedAt).toBeGreaterThanOrEqual(900);
    expect(requests[1].body).toEqual(requests[0].body);
    const candidate = await candidateByImage(id, imageIds[0]);
    expect(candidate).toMatchObject({ status: 'OK', attempts: 2, failure_reason: null });
    expect(candidate.rounds).toHaveLength(5);
    expect((await candidateNode(candidate.id)).provenance.attempts).toBe(2);
  });

  it('retries a 500 and stores an OK candidate with attempts 2', async () => {
    fake.enqueueChat({ status: 500 });
    const { id, run } = await runToEnd([imageIds[1]]);
    expect(run).toMatchObject({ status: 'SUCCEEDED', done: 1, failed: 0 });
    expect(fake.chatRequests()).toHaveLength(2);
    const candidate = await candidateByImage(id, imageIds[1]);
    expect(candidate).toMatchObject({ status: 'OK', attempts: 2 });
    expect(candidate.rounds).toHaveLength(5);
    expect(candidate.prompt_tokens).toBeGreaterThan(0);
  });

  it('gives up on a reply slower than LLM_TIMEOUT_MS and retries', async () => {
    fake.enqueueChat({ delayMs: TIMEOUT_MS * 4 });
    const { id, run } = await runToEnd([imageIds[2]]);
    expect(run).toMatchObject({ status: 'SUCCEEDED', done: 1, failed: 0 });
    const requests = fake.chatRequests();
    expect(requests).toHaveLength(2);
    const gap = requests[1].receivedAt - requests[0].receivedAt;
    expect(gap).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(gap).toBeLessThan(TIMEOUT_MS * 4);
    const candidate = await candidateByImage(id, imageIds[2]);
    expect(candidate).toMatchObject({ status: 'OK', attempts: 2 });
  });

  it('retries a 200 whose body is not valid JSON', async () => {
    fake.enqueueChat({ malformedJson: true });
    const { id, run } = await runToEnd([imageIds[3]]);
    expect(run).toMatchObject({ status: 'SUCCEEDED', done: 1, failed: 0 });
    expect(fake.chatRequests()).toHaveLength(2);
    const candidate = await candidateByImage(id, imageIds[3]);
    expect(candidate).toMatchObject({ status: 'OK', attempts: 2 });
    expect(candidate.raw_output).toContain(captionOf[imageIds[3]].replace(/\.$/, ''));
  });

  // ---------------------------------------------------------------------------------------------
  // 6. Bounded attempts

  it('fails one candidate after LLM_MAX_ATTEMPTS server errors and keeps the others', async () => {
    const doomed = imageIds[4];
    fake.onChat((body) => mentionsCaption(body, captionOf[doomed]), { status: 500, message: 'the model is on fire' });
    const { id, run } = await runToEnd(imageIds);
    expect(run).toMatchObject({ status: 'SUCCEEDED', done: 4, failed: 1, queued: 0 });
    expect(run.lastError).toMatch(/FAILED/);
    expect(run.lastError).toMatch(/500/);
    expect(fake.chatRequests().filter((r) => mentionsCaption(r.body, captionOf[doomed]))).toHaveLength(MAX_ATTEMPTS);
    expect(fake.chatRequests()).toHaveLength(MAX_ATTEMPTS + 4);
    const rows = await candidates(id);
    expect(rows).toHaveLength(5);
    for (const row of rows) {
      if (row.image_id === doomed) {
        expect(row).toMatchObject({ status: 'FAILED', attempts: MAX_ATTEMPTS, raw_output: null });
        expect(row.failure_reason).toMatch(/500/);
        expect(row.rounds).toEqual([]);
      } else {
        expect(row).toMatchObject({ status: 'OK', attempts: 1, failure_reason: null });
      }
    }
  });

  // ---------------------------------------------------------------------------------------------
  // 7-9. Reply classification

  it('stores refusals, structured and in text, as REFUSED with the raw output', async () => {
    const [structured, textual] = [imageIds[0], imageIds[1]];
    const refusalText = 'I cannot assist with analysing this medical image.';
    const sorry = "I'm sorry, but I can't help with that.";
    fake.onChat((body) => mentionsCaption(body, captionOf[structured]), { refusal: refusalText });
    fake.onChat((body) => mentionsCaption(body, captionOf[textual]), { reply: sorry });
    const { id, run } = await runToEnd([structured, textual]);
    expect(run).toMatchObject({ status: 'FAILED', done: 0, failed: 2 });
    expect(fake.chatRequests()).toHaveLength(2);

    const a = await candidateByImage(id, structured);
    expect(a).toMatchObject({ status: 'REFUSED', raw_output: refusalText, attempts: 1 });
    expect(a.failure_reason).toContain(refusalText);
    const b = await candidateByImage(id, textual);
    expect(b).toMatchObject({ status: 'REFUSED', raw_output: sorry, attempts: 1 });
    expect(b.failure_reason).toMatch(/refused/i);
    const node = await candidateNode(b.id);
    expect(node).toMatchObject({ status: 'REFUSED', rawOutput: sorry, rounds: [] });
  });

  it('stores too few rounds and prose as PARSE_FAILED, keeping the raw output and the reason', async () => {
    const [short, prose, fine] = [imageIds[2], imageIds[3], imageIds[4]];
    const shortReply = conversationReply(captionOf[short], 2);
    const proseReply = 'This radiograph-like figure shows tissue. Overall the findings are interesting and merit follow-up.';
    fake.onChat((body) => mentionsCaption(body, captionOf[short]), { reply: shortReply });
    fake.onChat((body) => mentionsCaption(body, captionOf[prose]), { reply: proseReply });
    const { id, run } = await runToEnd([short, prose, fine], { minRounds: 4 });
    expect(run).toMatchObject({ status: 'SUCCEEDED', done: 1, failed: 2 });
    expect(run.lastError).toMatch(/PARSE_FAILED/);

    const a = await candidateByImage(id, short);
    expect(a).toMatchObject({ status: 'PARSE_FAILED', raw_output: shortReply, attempts: 1 });
    expect(a.failure_reason).toMatch(/at least 4 rounds, got 2/);
    const b = await candidateByImage(id, prose);
    expect(b).toMatchObject({ status: 'PARSE_FAILED', raw_output: proseReply, attempts: 1 });
    expect(b.failure_reason).toMatch(/no User\/Assistant turns/);
    expect(await candidateByImage(id, fine)).toMatchObject({ status: 'OK' });
    const node = await candidateNode(a.id);
    expect(node).toMatchObject({ status: 'PARSE_FAILED', rawOutput: shortReply });
    expect(node.failureReason).toMatch(/at least 4 rounds/);
  });

  it('parses markdown-decorated turns into the right rounds', async () => {
    const reply = [
      '**User:** What does this figure show?',
      '**Assistant:** A karyotype of the **X** and Y chromosomes.',
      '',
      '1. Q: Which chromosome is larger?',
      '   A: The X chromosome is larger than the Y.',
      '2. Q: What stain is typical for such images?',
      '   A: G-banding with Giemsa.',
      '- **User**: Can sex be inferred from this figure?',
      '- **Assistant**: Yes, one X and one Y suggest a male karyotype.',
      'I hope this helps!',
    ].join('\n');
    const target = imageIds[4];
    fake.onChat((body) => mentionsCaption(body, captionOf[target]), { reply });
    const { id, run } = await runToEnd([target], { minRounds: 4 });
    expect(run).toMatchObject({ status: 'SUCCEEDED', done: 1, failed: 0 });
    const candidate = await candidateByImage(id, target);
    expect(candidate.status).toBe('OK');
    const node = await candidateNode(candidate.id);
    expect(node.rounds).toEqual([
      { index: 0, question: 'What does this figure show?', answer: 'A karyotype of the **X** and Y chromosomes.', alternativeAnswer: null },
      { index: 1, question: 'Which chromosome is larger?', answer: 'The X chromosome is larger than the Y.', alternativeAnswer: null },
      { index: 2, question: 'What stain is typical for such images?', answer: 'G-banding with Giemsa.', alternativeAnswer: null },
      { index: 3, question: 'Can sex be inferred from this figure?', answer: expect.stringMatching(/^Yes, one X and one Y suggest a male karyotype\./), alternativeAnswer: null },
    ]);
  });

  // ---------------------------------------------------------------------------------------------
  // 10. Two-answer form

  it('asks for Answer A and Answer B in the TWO_ANSWERS form and stores both answers per round', async () => {
    const target = imageIds[1];
    const { id, run } = await runToEnd([target], { form: 'TWO_ANSWERS', demonstrationsPerPrompt: 2, seed: 3 });
    expect(run).toMatchObject({ status: 'SUCCEEDED', done: 1, failed: 0 });
    const [request] = fake.chatRequests();
    const system = request.body.messages[0];
    expect(system.role).toBe('system');
    expect(system.content).toContain('"Answer A:"');
    expect(system.content).toContain('"Answer B:"');
    expect(finalUserText(request.body)).toMatch(/answers A and B/);

    const candidate = await candidateByImage(id, target);
    expect(candidate).toMatchObject({ status: 'OK', form: 'TWO_ANSWERS', prompt_template_version: 'generation/two-answers/v1' });
    expect(candidate.rounds).toHaveLength(5);
    expect(candidate.rounds.every((r) => r.answers.length === 2)).toBe(true);
    const node = await candidateNode(candidate.id);
    expect(node.form).toBe('TWO_ANSWERS');
    expect(node.rounds).toHaveLength(5);
    const full = captionOf[target].replace(/\.$/, '');
    expect(node.rounds[0]).toEqual({ index: 0, question: 'What does this figure show?', answer: `The figure shows ${full}.`, alternativeAnswer: `A briefer view: ${full} (round 1).` });
    for (const round of node.rounds) {
      expect(round.alternativeAnswer).toEqual(expect.any(String));
      expect(round.alternativeAnswer).not.toBe(round.answer);
    }
  });

  // ---------------------------------------------------------------------------------------------
  // 11. Pacing

  it('never exceeds requestsPerMinute, even with spare concurrency', async () => {
    // Warm up first (connections, resized model inputs), so that arrival times reflect the pacing.
    expect((await runToEnd(imageIds)).run.status).toBe('SUCCEEDED');
    fake.reset();

    const stepMs = 60000 / 120;
    const { id, run } = await runToEnd(imageIds, { samplesPerImage: 2, limits: { requestsPerMinute: 120, concurrency: 8 } });
    expect(run).toMatchObject({ status: 'SUCCEEDED', done: 10, failed: 0 });
    expect(await candidates(id)).toHaveLength(10);
    const starts = fake
      .chatRequests()
      .map((r) => r.receivedAt)
      .sort((a, b) => a - b);
    expect(starts).toHaveLength(10);
    // The pacer spaces the reserved slots exactly one step apart and a request never starts before
    // its slot; it may start late by the pacing query's round trip and arrive later still by its
    // upload (measured here: up to ~60 ms under load, with the fake server in this process). So single
    // gaps may be short by that much, while the average spacing stays at the step.
    const lateMs = 75;
    const gaps = starts.slice(1).map((t, i) => t - starts[i]);
    expect(Math.min(...gaps)).toBeGreaterThanOrEqual(stepMs - lateMs);
    for (let i = 0; i < starts.length; i++) {
      for (let j = i + 1; j < starts.length; j++) expect(starts[j] - starts[i]).toBeGreaterThanOrEqual((j - i) * stepMs - lateMs);
    }
    expect((starts[starts.length - 1] - starts[0]) / (starts.length - 1)).toBeGreaterThanOrEqual(stepMs - 10);
  });

  // ---------------------------------------------------------------------------------------------
  // 12. Cancellation

  it('cancels a running run, keeping what it finished and writing nothing afterwards; a finished run stays as it is', async () => {
    fake.latencyMs = 400;
    try {
      const { globalId, id } = await startRun(imageIds, { samplesPerImage: 3, limits: { concurrency: 1 } });
      const deadline = Date.now() + 15000;
      while ((await candidates(id)).length === 0) {
        if (Date.now() > deadline) throw new Error('no candidate appeared');
        await sleep(50);
      }
      const res = await gql(app.graphqlUrl, lab.keys.CURATOR, CANCEL_RUN, { input: { runId: globalId } });
      expect(res.errors).toBeUndefined();
      expect(res.data!.cancelRun.userErrors).toEqual([]);
      expect(['RUNNING', 'CANCELLED']).toContain(res.data!.cancelRun.run.status);

      const run = await waitForRun(app, lab.keys.CURATOR, globalId, 10000);
      expect(run.status).toBe('CANCELLED');
      const kept = (await candidates(id)).length;
      expect(kept).toBeGreaterThanOrEqual(1);
      expect(kept).toBeLessThan(15);
      expect(run.done + run.failed).toBe(kept);
      const sent = fake.chatRequests().length;
      await sleep(1000);
      expect((await candidates(id)).length).toBe(kept);
      expect(fake.chatRequests().length).toBe(sent);
      const after = await waitForRun(app, lab.keys.CURATOR, globalId);
      expect(after).toMatchObject({ status: 'CANCELLED', done: run.done, failed: run.failed });

      // Cancelling it again changes nothing.
      const again = await gql(app.graphqlUrl, lab.keys.CURATOR, CANCEL_RUN, { input: { runId: globalId } });
      expect(again.data!.cancelRun).toMatchObject({ run: { status: 'CANCELLED' }, userErrors: [] });
    } finally {
      fake.latencyMs = 0;
    }

    // A finished run keeps its status.
    const finished = await runToEnd([imageIds[0]]);
    expect(finished.run.status).toBe('SUCCEEDED');
    const before = await app.ds.query(`SELECT status, finished_at, cancel_requested_at FROM runs WHERE id = $1`, [finished.id]);
    const res = await gql(app.graphqlUrl, lab.keys.CURATOR, CANCEL_RUN, { input: { runId: finished.globalId } });
    expect(res.errors).toBeUndefined();
    expect(res.data!.cancelRun).toMatchObject({ run: { status: 'SUCCEEDED' }, userErrors: [] });
    expect(await app.ds.query(`SELECT status, finished_at, cancel_requested_at FROM runs WHERE id = $1`, [finished.id])).toEqual(before);
    expect((await waitForRun(app, lab.keys.CURATOR, finished.globalId)).status).toBe('SUCCEEDED');
  });

  // ---------------------------------------------------------------------------------------------
  // 13. No model configured

  it('answers LLM_UNAVAILABLE and creates no run when no API key is configured', async () => {
    const offline = await startTestApp({ RATE_LIMIT_PER_MINUTE: '0' });
    try {
      const project = await createTestProject(offline, 'faults-offline');
      const { imageGlobalIds } = await seedPipeline(offline, project, { demonstrations: false });
      const res = await gql(offline.graphqlUrl, project.keys.CURATOR, START_GENERATION, {
        input: { images: { imageIds: imageGlobalIds }, demonstrationsPerPrompt: 0 },
      });
      expect(res.errors).toHaveLength(1);
      expect(res.errors![0].extensions?.code).toBe('LLM_UNAVAILABLE');
      expect(res.data?.startGenerationRun ?? null).toBeNull();
      expect(await offline.ds.query(`SELECT count(*)::int AS n FROM runs`)).toEqual([{ n: 0 }]);
      expect(await offline.ds.query(`SELECT count(*)::int AS n FROM graphile_worker.jobs`)).toEqual([{ n: 0 }]);
    } finally {
      await offline.stop();
    }
  });

  // ---------------------------------------------------------------------------------------------
  // 14. Input errors

  it('reports bad input as userErrors and refuses roles below CURATOR, creating no run', async () => {
    const labRuns = await runCount(lab.id);
    const bareRuns = await runCount(bare.id);

    const both = await start(lab.keys.CURATOR, { images: { imageIds: [globalIdOf[imageIds[0]]], filter: { modalities: ['MRI'] } } });
    expect(both.errors).toBeUndefined();
    expect(both.data!.startGenerationRun.run).toBeNull();
    expect(both.data!.startGenerationRun.userErrors).toEqual([{ code: 'INVALID', field: ['input', 'images'], message: expect.stringMatching(/not both/) }]);

    const nothing = await start(lab.keys.CURATOR, { images: { filter: { captionSearch: 'xylophone' } } });
    expect(nothing.errors).toBeUndefined();
    expect(nothing.data!.startGenerationRun.run).toBeNull();
    expect(nothing.data!.startGenerationRun.userErrors).toEqual([{ code: 'INVALID', field: ['input', 'images'], message: expect.stringMatching(/matches no image/) }]);

    const noDemos = await gql(app.graphqlUrl, bare.keys.CURATOR, START_GENERATION, { input: { images: { filter: {} }, demonstrationsPerPrompt: 2 } });
    expect(noDemos.errors).toBeUndefined();
    expect(noDemos.data!.startGenerationRun.run).toBeNull();
    expect(noDemos.data!.startGenerationRun.userErrors).toEqual([{ code: 'NOT_FOUND', field: ['input', 'demonstrationsPerPrompt'], message: expect.any(String) }]);

    for (const role of ['VIEWER', 'CLINICIAN'] as const) {
      const denied = await start(lab.keys[role], { images: { imageIds: [globalIdOf[imageIds[0]]] }, demonstrationsPerPrompt: 0 });
      expect(denied.errors?.map((e) => e.extensions?.code)).toEqual(['FORBIDDEN']);
      expect(denied.data?.startGenerationRun ?? null).toBeNull();
    }

    expect(await runCount(lab.id)).toBe(labRuns);
    expect(await runCount(bare.id)).toBe(bareRuns);
    expect(fake.chatRequests()).toHaveLength(0);

    // The same project without demonstrations can run with demonstrationsPerPrompt 0.
    const ok = await gql(app.graphqlUrl, bare.keys.CURATOR, START_GENERATION, { input: { images: { filter: { modalities: ['MRI'] } }, demonstrationsPerPrompt: 0 } });
    expect(ok.data!.startGenerationRun.userErrors).toEqual([]);
    expect(ok.data!.startGenerationRun.run).toMatchObject({ total: 1 });
    const done = await waitForRun(app, bare.keys.CURATOR, ok.data!.startGenerationRun.run.id);
    expect(done).toMatchObject({ status: 'SUCCEEDED', done: 1 });
    expect(await runCount(bare.id)).toBe(bareRuns + 1);
  });
});
