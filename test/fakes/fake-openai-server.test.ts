import OpenAI from 'openai';
import { conversationReply, defaultChatBehaviour, FakeOpenAIServer, realmSafeFetch } from './openai-server';

const PNG_DATA_URL = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const SYSTEM_SINGLE = 'You are a biomedical assistant. Write a multi-round conversation about the figure.';
const SYSTEM_TWO = 'You are a biomedical assistant. For each question give two answers, labelled Answer A and Answer B.';

let server: FakeOpenAIServer;

beforeAll(async () => {
  server = await FakeOpenAIServer.start();
});

afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  server.reset();
  server.latencyMs = 0;
  server.defaultChat = defaultChatBehaviour;
});

function client(options: { maxRetries?: number; timeout?: number; fetch?: typeof fetch } = {}): OpenAI {
  return new OpenAI({ baseURL: server.baseUrl, apiKey: 'test-key', maxRetries: 0, timeout: 2000, fetch: realmSafeFetch, ...options });
}

function userText(caption: string): string {
  return `Generate a conversation about this figure.\nCaption: ${caption}\nMentions: see the text.`;
}

function askAbout(caption: string, system = SYSTEM_SINGLE, openai = client()) {
  return openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [
      { role: 'system', content: system },
      {
        role: 'user',
        content: [
          { type: 'text', text: userText(caption) },
          { type: 'image_url', image_url: { url: PNG_DATA_URL } },
        ],
      },
    ],
  });
}

/** Runs the promise expecting a rejection and returns the error, so its fields can be asserted. */
async function failureOf(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the request to fail');
}

const count = (text: string, pattern: RegExp) => text.match(pattern)?.length ?? 0;

describe('FakeOpenAIServer chat completions', () => {
  it('answers with a five-round conversation about the caption, with usage numbers', async () => {
    const caption = 'Axial CT of the chest shows a spiculated nodule in the right upper lobe.';
    const completion = await askAbout(caption);

    const content = completion.choices[0].message.content!;
    expect(content).toContain(caption);
    expect(count(content, /^User: /gm)).toBe(5);
    expect(count(content, /^Assistant: /gm)).toBe(5);
    expect(completion.object).toBe('chat.completion');
    expect(completion.model).toBe('gpt-4o-mini');
    expect(completion.choices[0].finish_reason).toBe('stop');
    expect(completion.choices[0].message.refusal).toBeNull();

    const promptChars = SYSTEM_SINGLE.length + userText(caption).length;
    expect(completion.usage).toEqual({
      prompt_tokens: Math.ceil(promptChars / 4) + 85,
      completion_tokens: Math.ceil(content.length / 4),
      total_tokens: Math.ceil(promptChars / 4) + 85 + Math.ceil(content.length / 4),
    });
    expect(content).toBe(conversationReply(caption, 5, 'SINGLE_ANSWER'));
  });

  it('uses the two-answer form when the system prompt mentions Answer A', async () => {
    const completion = await askAbout('Histology of a liver biopsy, H&E stain.', SYSTEM_TWO);

    const content = completion.choices[0].message.content!;
    expect(count(content, /^User: /gm)).toBe(5);
    expect(count(content, /^Answer A: /gm)).toBe(5);
    expect(count(content, /^Answer B: /gm)).toBe(5);
    expect(content).not.toContain('Assistant:');
  });

  it('gives different replies for different captions', async () => {
    const first = await askAbout('Chest X-ray with bilateral infiltrates.');
    const second = await askAbout('MRI of the knee showing a torn meniscus.');
    expect(first.choices[0].message.content).not.toBe(second.choices[0].message.content);
  });

  it('records the request body and headers', async () => {
    await askAbout('Fundus photograph of the left eye.');

    const [recorded] = server.chatRequests();
    expect(recorded).toMatchObject({ endpoint: 'chat', method: 'POST', path: '/v1/chat/completions' });
    expect(recorded.headers.authorization).toBe('Bearer test-key');
    expect(recorded.body.model).toBe('gpt-4o-mini');
    expect(recorded.body.messages[0]).toEqual({ role: 'system', content: SYSTEM_SINGLE });
    expect(recorded.body.messages[1].content[1]).toEqual({ type: 'image_url', image_url: { url: PNG_DATA_URL } });
    expect(recorded.body.messages[1].content[1].image_url.url).toMatch(/^data:image\/png;base64,/);
    expect(server.embeddingRequests()).toHaveLength(0);
  });

  it('returns a refusal with null content', async () => {
    server.enqueueChat({ refusal: "I'm sorry, I can't help with that." });
    const completion = await askAbout('Any caption');

    expect(completion.choices[0].message.content).toBeNull();
    expect(completion.choices[0].message.refusal).toBe("I'm sorry, I can't help with that.");
  });

  it('honours explicit reply, token counts and finish reason', async () => {
    server.enqueueChat({ reply: 'short', promptTokens: 1000, completionTokens: 7, finishReason: 'length' });
    const completion = await askAbout('Any caption');

    expect(completion.choices[0].message.content).toBe('short');
    expect(completion.choices[0].finish_reason).toBe('length');
    expect(completion.usage).toEqual({ prompt_tokens: 1000, completion_tokens: 7, total_tokens: 1007 });
  });

  it('consumes queued behaviours in order, then falls back to the default', async () => {
    server.enqueueChat({ reply: 'first' }, { reply: 'second' });
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push((await askAbout('Ultrasound of the thyroid.')).choices[0].message.content);

    expect(replies.slice(0, 2)).toEqual(['first', 'second']);
    expect(replies[2]).toContain('Ultrasound of the thyroid.');
  });

  it('applies onChat overrides only to matching requests, the given number of times', async () => {
    const mentions = (word: string) => (body: any) => JSON.stringify(body.messages).includes(word);
    server.onChat(mentions('FAIL-ME'), { status: 500, message: 'boom' }, 1);
    server.onChat(mentions('ECHO'), (body) => ({ reply: `echo ${body.model}` }));
    server.enqueueChat({ reply: 'queued' });

    const failure = await failureOf(askAbout('FAIL-ME caption'));
    expect(failure).toBeInstanceOf(OpenAI.InternalServerError);
    expect(failure.message).toContain('boom');
    expect((await askAbout('FAIL-ME caption again')).choices[0].message.content).toBe('queued');
    expect((await askAbout('ECHO caption')).choices[0].message.content).toBe('echo gpt-4o-mini');
    expect((await askAbout('ECHO caption')).choices[0].message.content).toBe('echo gpt-4o-mini');
  });

  it('lets tests replace the default reply builder, which gets the request index', async () => {
    server.defaultChat = (_body, index) => ({ reply: `reply #${index}` });
    expect((await askAbout('a')).choices[0].message.content).toBe('reply #0');
    expect((await askAbout('b')).choices[0].message.content).toBe('reply #1');
  });

  it('rejects streaming requests with 400', async () => {
    const failure = await failureOf(
      client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }], stream: true }),
    );
    expect(failure).toBeInstanceOf(OpenAI.BadRequestError);
    expect(failure.param).toBe('stream');
  });

  it('rejects requests without a bearer token with 401', async () => {
    const response = await fetch(`${server.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [] }),
    });
    expect(response.status).toBe(401);
    expect(((await response.json()) as any).error).toMatchObject({ type: 'invalid_request_error', param: null });
  });

  it('answers unknown paths with a 404 OpenAI error', async () => {
    const response = await fetch(`${server.baseUrl}/models`, { headers: { authorization: 'Bearer x' } });
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({
      error: { message: expect.stringContaining('/v1/models'), type: 'invalid_request_error', param: null, code: 'unknown_url' },
    });
    expect(server.requests).toHaveLength(0);
  });
});

describe('FakeOpenAIServer faults, as the SDK sees them', () => {
  it('429 with retry-after surfaces as RateLimitError with readable headers', async () => {
    server.enqueueChat({ status: 429, retryAfterSeconds: 7, retryAfterMs: 7000 });
    const failure = await failureOf(askAbout('x'));

    expect(failure).toBeInstanceOf(OpenAI.RateLimitError);
    expect(failure.status).toBe(429);
    expect(failure.headers.get('retry-after')).toBe('7');
    expect(failure.headers.get('retry-after-ms')).toBe('7000');
    expect(failure.code).toBe('rate_limit_exceeded');
    expect(failure.error).toEqual({ message: expect.any(String), type: 'requests', param: null, code: 'rate_limit_exceeded' });
  });

  it('500 surfaces as InternalServerError', async () => {
    server.enqueueChat({ status: 500 });
    const failure = await failureOf(askAbout('x'));
    expect(failure).toBeInstanceOf(OpenAI.InternalServerError);
    expect(failure.status).toBe(500);
    expect(failure.type).toBe('server_error');
  });

  it('400, 401, 502 and 503 map to their SDK error classes', async () => {
    server.enqueueChat({ status: 400, message: 'bad' }, { status: 401 }, { status: 502 }, { status: 503 });
    expect(await failureOf(askAbout('x'))).toBeInstanceOf(OpenAI.BadRequestError);
    expect(await failureOf(askAbout('x'))).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(await failureOf(askAbout('x'))).toBeInstanceOf(OpenAI.InternalServerError);
    expect(await failureOf(askAbout('x'))).toBeInstanceOf(OpenAI.InternalServerError);
  });

  it('a delay past the client timeout surfaces as APIConnectionTimeoutError and frees the request', async () => {
    server.enqueueChat({ delayMs: 5000, then: { reply: 'too late' } });
    const started = Date.now();
    const failure = await failureOf(askAbout('x', SYSTEM_SINGLE, client({ timeout: 200 })));

    expect(failure).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    expect(Date.now() - started).toBeLessThan(2000);
    // The client aborts the socket, so the server stops waiting instead of holding a 5 s timer.
    await waitFor(() => server.inFlight === 0);
  });

  it("under jest, without realmSafeFetch, the SDK reports that timeout as a plain APIConnectionError", async () => {
    server.enqueueChat({ delayMs: 5000 });
    const failure = await failureOf(askAbout('x', SYSTEM_SINGLE, client({ timeout: 200, fetch: globalThis.fetch })));

    expect(failure).toBeInstanceOf(OpenAI.APIConnectionError);
    expect(failure).not.toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    await waitFor(() => server.inFlight === 0);
  });

  it('a delay shorter than the timeout just slows the reply down', async () => {
    server.enqueueChat({ delayMs: 150 });
    const started = Date.now();
    const completion = await askAbout('Slow caption.');
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(completion.choices[0].message.content).toContain('Slow caption.');
  });

  it('malformed JSON in a 200 makes the SDK throw a plain SyntaxError, not an OpenAI error', async () => {
    server.enqueueChat({ malformedJson: true });
    const failure = await failureOf(askAbout('x'));

    // undici's JSON.parse runs in Node's realm, not jest's sandbox, so check the name, not instanceof.
    expect(failure.name).toBe('SyntaxError');
    expect(failure.message).toMatch(/JSON/);
    expect(failure).not.toBeInstanceOf(OpenAI.APIError);
  });

  it('hangUp surfaces as APIConnectionError (not a timeout)', async () => {
    server.enqueueChat({ hangUp: true });
    const failure = await failureOf(askAbout('x'));

    expect(failure).toBeInstanceOf(OpenAI.APIConnectionError);
    expect(failure).not.toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    expect(failure.message).toBe('Connection error.');
  });

  it('with maxRetries 2 the SDK retries a 500 and then succeeds', async () => {
    server.enqueueChat({ status: 500 });
    const completion = await askAbout('Retried caption.', SYSTEM_SINGLE, client({ maxRetries: 2 }));

    expect(completion.choices[0].message.content).toContain('Retried caption.');
    const attempts = server.chatRequests();
    expect(attempts).toHaveLength(2);
    expect(attempts.map((r) => r.headers['x-stainless-retry-count'])).toEqual(['0', '1']);
  });

  it('with retries, the SDK waits for retry-after-ms on a 429', async () => {
    server.enqueueChat({ status: 429, retryAfterMs: 300 });
    const started = Date.now();
    await askAbout('x', SYSTEM_SINGLE, client({ maxRetries: 1 }));

    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(server.chatRequests()).toHaveLength(2);
  });

  it('tracks the highest number of concurrent requests', async () => {
    server.latencyMs = 100;
    await Promise.all(Array.from({ length: 5 }, (_, i) => askAbout(`Concurrent ${i}`)));
    expect(server.maxInFlight).toBe(5);

    server.reset();
    expect(server.maxInFlight).toBe(0);
  });
});

describe('FakeOpenAIServer embeddings', () => {
  const texts = ['chest x-ray pneumonia', 'chest x-ray effusion', 'knee MRI meniscus'];

  it('returns deterministic normalised vectors, identical in base64 (SDK default) and float formats', async () => {
    const openai = client();
    const viaBase64 = await openai.embeddings.create({ model: 'text-embedding-3-small', input: texts });
    const viaFloat = await openai.embeddings.create({ model: 'text-embedding-3-small', input: texts, encoding_format: 'float' });
    const again = await openai.embeddings.create({ model: 'text-embedding-3-small', input: texts });

    const [defaultCall, floatCall] = server.embeddingRequests();
    expect(defaultCall.body.encoding_format).toBe('base64');
    expect(floatCall.body.encoding_format).toBe('float');

    expect(viaBase64.object).toBe('list');
    expect(viaBase64.model).toBe('text-embedding-3-small');
    expect(viaBase64.data.map((d) => d.index)).toEqual([0, 1, 2]);
    expect(viaBase64.usage.prompt_tokens).toBe(texts.reduce((sum, t) => sum + Math.ceil(t.length / 4), 0));
    for (const item of viaBase64.data) {
      expect(item.embedding).toHaveLength(64);
      expect(Math.hypot(...item.embedding)).toBeCloseTo(1, 5);
    }
    expect(viaFloat.data.map((d) => d.embedding)).toEqual(viaBase64.data.map((d) => d.embedding));
    expect(again.data.map((d) => d.embedding)).toEqual(viaBase64.data.map((d) => d.embedding));
  });

  it('returns a base64 string when the caller asks for base64 explicitly', async () => {
    const response = await client().embeddings.create({ model: 'm', input: 'one text', encoding_format: 'base64' });
    const encoded = response.data[0].embedding as unknown as string;
    expect(typeof encoded).toBe('string');

    const floats = await client().embeddings.create({ model: 'm', input: 'one text', encoding_format: 'float' });
    const buffer = Buffer.from(encoded, 'base64');
    const decoded = Array.from({ length: buffer.length / 4 }, (_, i) => buffer.readFloatLE(i * 4));
    expect(decoded).toEqual(floats.data[0].embedding);
  });

  it('puts texts that share words closer together than unrelated ones', async () => {
    const { data } = await client().embeddings.create({ model: 'm', input: texts });
    const dot = (a: number[], b: number[]) => a.reduce((sum, v, i) => sum + v * b[i], 0);
    expect(dot(data[0].embedding, data[1].embedding)).toBeGreaterThan(dot(data[0].embedding, data[2].embedding));
  });

  it('honours the configured dimension count', async () => {
    const wide = await FakeOpenAIServer.start({ embeddingDims: 256 });
    try {
      const openai = new OpenAI({ baseURL: wide.baseUrl, apiKey: 'k', maxRetries: 0, timeout: 2000 });
      const { data } = await openai.embeddings.create({ model: 'm', input: 'text' });
      expect(data[0].embedding).toHaveLength(256);
    } finally {
      await wide.close();
    }
  });

  it('injects queued faults', async () => {
    server.enqueueEmbeddings({ status: 503 }, { delayMs: 50, then: { status: 429, retryAfterSeconds: 1 } }, { vectors: 'default' });
    expect(await failureOf(client().embeddings.create({ model: 'm', input: 'a' }))).toBeInstanceOf(OpenAI.InternalServerError);
    expect(await failureOf(client().embeddings.create({ model: 'm', input: 'a' }))).toBeInstanceOf(OpenAI.RateLimitError);
    expect((await client().embeddings.create({ model: 'm', input: 'a' })).data).toHaveLength(1);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 1000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
