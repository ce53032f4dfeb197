/**
 * A real local HTTP server speaking the OpenAI chat-completions and embeddings protocol, for tests
 * and benchmarks. Point the official SDK at it with `new OpenAI({ baseURL: server.baseUrl, apiKey })`.
 * Faults (rate limits, 5xx, slow replies, broken JSON, dropped sockets) are injected per request.
 */
import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface RecordedRequest {
  endpoint: 'chat' | 'embeddings';
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body, or the raw text when it was not valid JSON. */
  body: any;
  receivedAt: number;
}

/** Faults shared by both endpoints. */
export type FaultBehaviour =
  | { status: 429; retryAfterSeconds?: number; retryAfterMs?: number }
  | { status: 400 | 401 | 500 | 502 | 503; message?: string }
  | { malformedJson: true }
  | { hangUp: true };

export type ChatBehaviour =
  | { reply: string; promptTokens?: number; completionTokens?: number; finishReason?: 'stop' | 'length' }
  | { refusal: string }
  | FaultBehaviour
  /** Without `then`, answers as if nothing had been queued (the default behaviour). */
  | { delayMs: number; then?: ChatBehaviour };

export type EmbeddingBehaviour = { vectors: 'default' } | FaultBehaviour | { delayMs: number; then?: EmbeddingBehaviour };

export interface FakeOpenAIOptions {
  latencyMs?: number;
  embeddingDims?: number;
  /** Keep request bodies (default); a benchmark turns it off so the log stays small. */
  recordBodies?: boolean;
  /** `rejected`: answer 400 to any `response_format`, as a server without structured output does. */
  responseFormat?: 'supported' | 'rejected';
}

export type ConversationForm = 'SINGLE_ANSWER' | 'TWO_ANSWERS';

interface ChatOverride {
  match: (body: any) => boolean;
  behaviour: ChatBehaviour | ((body: any) => ChatBehaviour);
  remaining: number;
}

/** One request being answered: `signal` aborts when the client goes away (or the server closes). */
interface Exchange {
  res: http.ServerResponse;
  body: any;
  signal: AbortSignal;
}

const IMAGE_TOKENS = 85;

export class FakeOpenAIServer {
  readonly baseUrl: string;
  readonly requests: RecordedRequest[] = [];
  defaultChat: (body: any, index: number) => ChatBehaviour = defaultChatBehaviour;
  latencyMs: number;
  responseFormat: 'supported' | 'rejected';

  private readonly embeddingDims: number;
  private readonly recordBodies: boolean;
  private readonly sockets = new Set<Socket>();
  private chatQueue: ChatBehaviour[] = [];
  private embeddingQueue: EmbeddingBehaviour[] = [];
  private chatOverrides: ChatOverride[] = [];
  private inFlightCount = 0;
  private maxInFlightSeen = 0;
  private responseCounter = 0;
  private requestCounts = { chat: 0, embeddings: 0 };

  private constructor(
    private readonly server: http.Server,
    options: FakeOpenAIOptions,
  ) {
    const { port } = server.address() as AddressInfo;
    this.baseUrl = `http://127.0.0.1:${port}/v1`;
    this.latencyMs = options.latencyMs ?? 0;
    this.embeddingDims = options.embeddingDims ?? 64;
    this.recordBodies = options.recordBodies ?? true;
    this.responseFormat = options.responseFormat ?? 'supported';
    server.on('connection', (socket) => this.trackSocket(socket));
    server.on('request', (req, res) => void this.handle(req, res));
  }

  static async start(options: FakeOpenAIOptions = {}): Promise<FakeOpenAIServer> {
    const server = http.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return new FakeOpenAIServer(server, options);
  }

  /** Highest number of requests seen in flight at once since start or the last reset(). */
  get maxInFlight(): number {
    return this.maxInFlightSeen;
  }

  /** Requests being answered right now. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  chatRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.endpoint === 'chat');
  }

  embeddingRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.endpoint === 'embeddings');
  }

  enqueueChat(...behaviours: ChatBehaviour[]): void {
    this.chatQueue.push(...behaviours);
  }

  enqueueEmbeddings(...behaviours: EmbeddingBehaviour[]): void {
    this.embeddingQueue.push(...behaviours);
  }

  /** Overrides are checked in the order they were added; `times` defaults to unlimited. */
  onChat(match: (body: any) => boolean, behaviour: ChatBehaviour | ((body: any) => ChatBehaviour), times = Infinity): void {
    this.chatOverrides.push({ match, behaviour, remaining: times });
  }

  /** Clears requests, queues, overrides and counters; `latencyMs` and `defaultChat` are kept. */
  reset(): void {
    this.requests.length = 0;
    this.chatQueue = [];
    this.embeddingQueue = [];
    this.chatOverrides = [];
    this.maxInFlightSeen = this.inFlightCount;
    this.responseCounter = 0;
    this.requestCounts = { chat: 0, embeddings: 0 };
  }

  /** Stops listening and destroys open (keep-alive) connections, which also cancels pending delays. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private trackSocket(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.inFlightCount++;
    this.maxInFlightSeen = Math.max(this.maxInFlightSeen, this.inFlightCount);
    const aborter = new AbortController();
    res.on('close', () => {
      this.inFlightCount--;
      aborter.abort();
    });
    try {
      await this.route(req, res, aborter.signal);
    } catch (err) {
      if (!res.headersSent && !res.destroyed) sendError(res, 500, `Fake server failure: ${(err as Error).message}`);
    }
  }

  /** For a server in another process: when requests arrived, and the most in flight at once. */
  private sendStats(res: http.ServerResponse): void {
    const requests = this.requests.map((r) => ({ endpoint: r.endpoint, receivedAt: r.receivedAt }));
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ maxInFlight: this.maxInFlightSeen, requests }));
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse, signal: AbortSignal): Promise<void> {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/_fake/stats') return this.sendStats(res);
    const endpoint = endpointFor(req.method, path);
    if (!endpoint) return sendError(res, 404, `Unknown request URL: ${req.method} ${path}`, 'unknown_url');

    const rawBody = await readBody(req);
    const body = parseJson(rawBody);
    const recorded = this.recordBodies ? body ?? rawBody : null;
    this.requests.push({ endpoint, method: req.method ?? 'POST', path, headers: { ...req.headers }, body: recorded, receivedAt: Date.now() });
    const index = this.requestCounts[endpoint]++;

    if (!(await sleep(this.latencyMs, signal))) return;
    if (!hasBearerToken(req.headers.authorization)) {
      return sendError(res, 401, "You didn't provide an API key. Provide it as a Bearer token in the Authorization header.");
    }
    if (body === undefined) return sendError(res, 400, 'We could not parse the JSON body of your request.');

    const exchange: Exchange = { res, body, signal };
    if (endpoint === 'chat') return this.handleChat(exchange, index);
    return this.handleEmbeddings(exchange);
  }

  private async handleChat(exchange: Exchange, index: number): Promise<void> {
    const { body, res } = exchange;
    if (body.stream === true) return sendError(res, 400, 'Streaming is not supported by the fake OpenAI server.', null, 'stream');
    if (typeof body.model !== 'string') return sendError(res, 400, "Missing required parameter: 'model'.", null, 'model');
    if (!Array.isArray(body.messages)) return sendError(res, 400, "Missing required parameter: 'messages'.", null, 'messages');
    if (body.response_format !== undefined) {
      const refused = this.responseFormat === 'rejected' ? "Unrecognized request argument supplied: response_format" : responseFormatError(body.response_format);
      if (refused) return sendError(res, 400, refused, null, 'response_format');
    }
    const fallback = () => this.defaultChat(body, index);
    await this.performChat(exchange, this.nextChatBehaviour(body) ?? fallback(), fallback);
  }

  private nextChatBehaviour(body: any): ChatBehaviour | undefined {
    const override = this.chatOverrides.find((o) => o.remaining > 0 && o.match(body));
    if (override) {
      override.remaining--;
      return typeof override.behaviour === 'function' ? override.behaviour(body) : override.behaviour;
    }
    return this.chatQueue.shift();
  }

  private async performChat(exchange: Exchange, behaviour: ChatBehaviour, fallback: () => ChatBehaviour): Promise<void> {
    if ('delayMs' in behaviour) {
      if (!(await sleep(behaviour.delayMs, exchange.signal))) return;
      return this.performChat(exchange, behaviour.then ?? fallback(), fallback);
    }
    if ('reply' in behaviour || 'refusal' in behaviour) {
      return sendJson(exchange.res, 200, this.chatCompletion(exchange.body, behaviour));
    }
    sendFault(exchange.res, behaviour);
  }

  private chatCompletion(body: any, behaviour: Extract<ChatBehaviour, { reply: string } | { refusal: string }>): object {
    const isRefusal = 'refusal' in behaviour;
    const text = isRefusal ? behaviour.refusal : behaviour.reply;
    const promptTokens = (!isRefusal && behaviour.promptTokens) || estimatePromptTokens(body.messages);
    const completionTokens = (!isRefusal && behaviour.completionTokens) || estimateTokens(text);
    return {
      id: `chatcmpl-fake-${++this.responseCounter}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: body.model,
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: isRefusal ? null : text, refusal: isRefusal ? text : null },
          finish_reason: (!isRefusal && behaviour.finishReason) || 'stop',
          logprobs: null,
        },
      ],
      usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
    };
  }

  private async handleEmbeddings(exchange: Exchange): Promise<void> {
    const { body, res } = exchange;
    const inputs = normaliseEmbeddingInput(body.input);
    if (!inputs) return sendError(res, 400, "'input' must be a non-empty string or array.", null, 'input');
    const format = body.encoding_format ?? 'float';
    if (format !== 'float' && format !== 'base64') {
      return sendError(res, 400, `Invalid encoding_format: ${String(format)}`, null, 'encoding_format');
    }
    await this.performEmbeddings(exchange, inputs, this.embeddingQueue.shift() ?? { vectors: 'default' });
  }

  private async performEmbeddings(exchange: Exchange, inputs: string[], behaviour: EmbeddingBehaviour): Promise<void> {
    if ('delayMs' in behaviour) {
      if (!(await sleep(behaviour.delayMs, exchange.signal))) return;
      return this.performEmbeddings(exchange, inputs, behaviour.then ?? { vectors: 'default' });
    }
    if ('vectors' in behaviour) return sendJson(exchange.res, 200, this.embeddingList(exchange.body, inputs));
    sendFault(exchange.res, behaviour);
  }

  private embeddingList(body: any, inputs: string[]): object {
    const asBase64 = body.encoding_format === 'base64';
    const data = inputs.map((text, index) => {
      const vector = embedText(text, this.embeddingDims);
      return { object: 'embedding', index, embedding: asBase64 ? float32Base64(vector) : vector };
    });
    const tokens = inputs.reduce((sum, text) => sum + estimateTokens(text), 0);
    return { object: 'list', data, model: body.model, usage: { prompt_tokens: tokens, total_tokens: tokens } };
  }
}

/**
 * Under jest, fetch rejects with errors from Node's own realm. The SDK's `instanceof Error` check
 * fails on the abort DOMException, drops its 'AbortError' name, and so reports a client timeout as
 * a plain APIConnectionError. Pass this as the SDK's `fetch` option to get APIConnectionTimeoutError
 * as outside jest.
 */
export const realmSafeFetch: typeof fetch = async (input, init) => {
  try {
    return await fetch(input, init);
  } catch (err) {
    throw toLocalError(err);
  }
};

function toLocalError(err: unknown): unknown {
  if (err instanceof Error || typeof err !== 'object' || err === null) return err;
  const { name, message, cause } = err as { name?: string; message?: string; cause?: unknown };
  return Object.assign(new Error(message ?? 'fetch failed', { cause }), { name: name ?? 'Error' });
}

/** OpenAI's checks of `response_format`: a known type and, for json_schema, a name and a schema object. */
function responseFormatError(format: any): string | null {
  if (!['text', 'json_object', 'json_schema'].includes(format?.type)) return `Invalid value for 'response_format.type': ${JSON.stringify(format?.type)}.`;
  if (format.type !== 'json_schema') return null;
  const spec = format.json_schema;
  if (typeof spec?.name !== 'string' || !/^[a-zA-Z0-9_-]{1,64}$/.test(spec.name)) return "Invalid 'response_format.json_schema.name'.";
  if (typeof spec.schema !== 'object' || spec.schema === null || spec.schema.type !== 'object') return "Invalid schema for response_format: the root must be an object schema.";
  if (spec.strict === true && spec.schema.additionalProperties !== false) return "Invalid schema for response_format: 'additionalProperties' is required to be supplied and to be false.";
  return null;
}

/** The JSON schema a request asked for with `response_format: json_schema`, if any (for fake judges that honour it). */
export function requestedJsonSchema(body: any): { name: string; schema: any } | null {
  return body?.response_format?.type === 'json_schema' ? body.response_format.json_schema : null;
}

// ---------------------------------------------------------------------------------------------
// Default chat behaviour and conversation text

/** The built-in `defaultChat`; assign it back to restore the default after replacing it. */
export function defaultChatBehaviour(body: any): ChatBehaviour {
  const messages: any[] = Array.isArray(body?.messages) ? body.messages : [];
  const lastUser = [...messages].reverse().find((m) => m?.role === 'user');
  const systemText = messages
    .filter((m) => m?.role === 'system' || m?.role === 'developer')
    .map((m) => messageText(m))
    .join('\n');
  const form: ConversationForm = systemText.includes('Answer A') ? 'TWO_ANSWERS' : 'SINGLE_ANSWER';
  return { reply: conversationReply(extractCaption(lastUser ? messageText(lastUser) : ''), 5, form) };
}

/**
 * Finds the figure caption in a prompt. Recognised, in order: `<caption>…</caption>`, a `Caption:`
 * line (continuing until a blank line or the next `Label:` line), or `caption "…"`. Otherwise the
 * whole text, with whitespace collapsed.
 */
export function extractCaption(text: string): string {
  const tagged = /<caption>([\s\S]*?)<\/caption>/i.exec(text)?.[1];
  const found = tagged ?? labelledCaption(text) ?? /caption[^"\n]*"([^"]+)"/i.exec(text)?.[1] ?? text;
  return collapseWhitespace(found);
}

function labelledCaption(text: string): string | undefined {
  const lines = text.split(/\r?\n/);
  const start = lines.findIndex((line) => /^\s*(?:figure\s+)?caption\s*:/i.test(line));
  if (start < 0) return undefined;
  const captionLines = [lines[start].replace(/^\s*(?:figure\s+)?caption\s*:\s*/i, '')];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '' || /^\s*[A-Z][\w -]{0,40}:/.test(line)) break;
    captionLines.push(line);
  }
  return captionLines.join(' ').trim().replace(/^"(.*)"$/s, '$1');
}

const QUESTIONS = [
  'What does this figure show?',
  'Which findings should a reader focus on first?',
  'What imaging technique or method does the figure rely on?',
  'How would a clinician interpret these findings?',
  'What are the limitations of drawing conclusions from this figure alone?',
];

/**
 * A well-formed conversation reply with `rounds` rounds, one turn per line: `User:` / `Assistant:`,
 * or `User:` / `Answer A:` / `Answer B:`. The first answer quotes the whole caption; later ones a
 * short excerpt of it, so replies for different images differ.
 */
export function conversationReply(caption: string, rounds = 5, form: ConversationForm = 'SINGLE_ANSWER'): string {
  const full = collapseWhitespace(caption).replace(/[.\s]+$/, '') || 'an unlabelled biomedical figure';
  const excerpt = full.split(' ').slice(0, 8).join(' ');
  const lines: string[] = [];
  for (let round = 0; round < rounds; round++) {
    const question = QUESTIONS[round % QUESTIONS.length] + (round >= QUESTIONS.length ? ` (follow-up ${round + 1})` : '');
    const answer = round === 0 ? `The figure shows ${full}.` : `Based on the caption ("${excerpt}"), ${answerDetail(round)}`;
    lines.push(`User: ${question}`);
    if (form === 'TWO_ANSWERS') {
      lines.push(`Answer A: ${answer}`, `Answer B: A briefer view: ${round === 0 ? full : excerpt} (round ${round + 1}).`);
    } else {
      lines.push(`Assistant: ${answer}`);
    }
  }
  return lines.join('\n');
}

function collapseWhitespace(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function answerDetail(round: number): string {
  const details = [
    'the key finding is the abnormality described there.',
    'the modality is the one the caption names.',
    'a clinician would correlate it with the clinical history.',
    'a single figure cannot establish a diagnosis without further context.',
  ];
  return details[(round - 1) % details.length];
}

// ---------------------------------------------------------------------------------------------
// Tokens and embeddings

function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** ceil(chars of all text parts / 4) + 85 per image_url part. */
export function estimatePromptTokens(messages: any[]): number {
  let chars = 0;
  let images = 0;
  for (const message of messages) {
    const content = message?.content;
    if (typeof content === 'string') chars += content.length;
    if (!Array.isArray(content)) continue;
    for (const part of content) {
      if (part?.type === 'text' && typeof part.text === 'string') chars += part.text.length;
      if (part?.type === 'image_url') images++;
    }
  }
  return Math.ceil(chars / 4) + IMAGE_TOKENS * images;
}

function messageText(message: any): string {
  const content = message?.content;
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .filter((p: any) => p?.type === 'text' && typeof p.text === 'string')
    .map((p: any) => p.text)
    .join('\n');
}

/** Strings stay as they are; token arrays are stringified so they still seed a deterministic vector. */
function normaliseEmbeddingInput(input: unknown): string[] | undefined {
  if (typeof input === 'string') return [input];
  if (!Array.isArray(input) || input.length === 0) return undefined;
  if (input.every((item) => typeof item === 'number')) return [JSON.stringify(input)];
  return input.map((item) => (typeof item === 'string' ? item : JSON.stringify(item)));
}

/**
 * Deterministic, L2-normalised vector: a sum of per-word pseudo-random vectors (so texts sharing
 * words are closer) plus a smaller whole-text one (so different texts never coincide). Values are
 * rounded to float32 so the float and base64 encodings carry identical numbers.
 */
export function embedText(text: string, dims = 64): number[] {
  const sum = seededVector(`text:${text}`, dims).map((v) => v * 0.5);
  for (const word of text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? []) {
    seededVector(`word:${word}`, dims).forEach((v, i) => (sum[i] += v));
  }
  const norm = Math.sqrt(sum.reduce((acc, v) => acc + v * v, 0)) || 1;
  return sum.map((v) => Math.fround(v / norm));
}

/** Values in [-1, 1) from a mulberry32 generator seeded by the sha256 of `seed`. */
function seededVector(seed: string, dims: number): number[] {
  let state = createHash('sha256').update(seed).digest().readUInt32LE(0);
  const next = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Array.from({ length: dims }, () => next() * 2 - 1);
}

/** Base64 of float32 little-endian values, as OpenAI sends for `encoding_format: 'base64'`. */
function float32Base64(vector: number[]): string {
  const buffer = Buffer.alloc(vector.length * 4);
  vector.forEach((v, i) => buffer.writeFloatLE(v, i * 4));
  return buffer.toString('base64');
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

function endpointFor(method: string | undefined, path: string): RecordedRequest['endpoint'] | undefined {
  if (method !== 'POST') return undefined;
  if (path === '/v1/chat/completions') return 'chat';
  if (path === '/v1/embeddings') return 'embeddings';
  return undefined;
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function parseJson(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function hasBearerToken(authorization: string | undefined): boolean {
  return /^Bearer\s+\S+/i.test(authorization ?? '');
}

/** Resolves true after `ms`, or false as soon as `signal` aborts (clearing the timer). */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function sendFault(res: http.ServerResponse, fault: FaultBehaviour): void {
  if ('hangUp' in fault) {
    res.socket?.destroy();
    return;
  }
  if ('malformedJson' in fault) {
    const truncated = '{"id":"chatcmpl-broken","object":"chat.completion","choices":[{"index":0,"message":{"role":"assis';
    return sendRaw(res, 200, truncated);
  }
  if (fault.status === 429) return sendRateLimit(res, fault);
  sendError(res, fault.status, fault.message);
}

function sendRateLimit(res: http.ServerResponse, fault: Extract<FaultBehaviour, { status: 429 }>): void {
  if (fault.retryAfterSeconds !== undefined) res.setHeader('retry-after', String(fault.retryAfterSeconds));
  if (fault.retryAfterMs !== undefined) res.setHeader('retry-after-ms', String(fault.retryAfterMs));
  sendError(res, 429, undefined, 'rate_limit_exceeded');
}

const ERROR_DEFAULTS: Record<number, { type: string; message: string; code: string | null }> = {
  400: { type: 'invalid_request_error', message: 'Invalid request.', code: null },
  401: { type: 'invalid_request_error', message: 'Incorrect API key provided.', code: 'invalid_api_key' },
  404: { type: 'invalid_request_error', message: 'Not found.', code: 'unknown_url' },
  429: { type: 'requests', message: 'Rate limit reached for requests. Please try again later.', code: 'rate_limit_exceeded' },
  500: { type: 'server_error', message: 'The server had an error while processing your request.', code: null },
  502: { type: 'server_error', message: 'Bad gateway.', code: null },
  503: { type: 'server_error', message: 'The engine is currently overloaded, please try again later.', code: null },
};

/** OpenAI's error shape: `{ error: { message, type, param, code } }`. */
function sendError(res: http.ServerResponse, status: number, message?: string, code?: string | null, param: string | null = null): void {
  const defaults = ERROR_DEFAULTS[status] ?? ERROR_DEFAULTS[500];
  const error = { message: message ?? defaults.message, type: defaults.type, param, code: code === undefined ? defaults.code : code };
  sendJson(res, status, { error });
}

function sendJson(res: http.ServerResponse, status: number, payload: unknown): void {
  sendRaw(res, status, JSON.stringify(payload));
}

function sendRaw(res: http.ServerResponse, status: number, text: string): void {
  if (res.destroyed) return;
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-request-id': `req_fake_${randomUUID()}`,
  });
  res.end(text);
}
