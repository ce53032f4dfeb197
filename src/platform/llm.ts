import OpenAI, { APIError, AzureOpenAI } from 'openai';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import { AppConfig } from './config';
import { DomainError, ErrorCode } from './errors';
import { logger } from './logging';

export const llmUnavailable = () =>
  new DomainError(ErrorCode.LLM_UNAVAILABLE, 'No LLM is configured: set OPENAI_API_KEY (optionally OPENAI_BASE_URL) or the AZURE_OPENAI_* variables');

export interface ChatReply {
  content: string | null;
  refusal: string | null;
  finishReason: string | null;
  model: string;
  promptTokens: number;
  completionTokens: number;
}

export interface EmbeddingsReply {
  vectors: number[][];
  promptTokens: number;
}

export interface Pricing {
  promptPerMTok: number;
  completionPerMTok: number;
  embeddingPerMTok: number;
}

export type ChatRequest = Omit<ChatCompletionCreateParamsNonStreaming, 'model'>;

/**
 * One attempt at a chat completion or an embeddings call, through the official SDK. The SDK's own
 * retries are off: retries go through our policy so that each attempt is paced and counted.
 */
export class LlmClient {
  /**
   * Whether `response_format` is sent. Off by configuration, or once the server has refused it
   * (remembered for the life of the process, so each later request goes out once, without it).
   */
  private structuredOutput: boolean;

  constructor(
    private readonly sdk: OpenAI,
    readonly provider: 'openai' | 'azure',
    readonly visionModel: string,
    readonly embeddingModel: string,
    readonly pricing: Pricing,
    private readonly timeoutMs: number,
    structuredOutput: 'json_schema' | 'off' = 'json_schema',
  ) {
    this.structuredOutput = structuredOutput === 'json_schema';
  }

  static fromConfig(config: AppConfig): LlmClient | null {
    const pricing = { promptPerMTok: config.LLM_PRICE_PROMPT_PER_MTOK, completionPerMTok: config.LLM_PRICE_COMPLETION_PER_MTOK, embeddingPerMTok: config.LLM_PRICE_EMBEDDING_PER_MTOK };
    // Our own deadline covers the whole reply; the SDK's (headers only) is a backstop.
    const common = { maxRetries: 0, timeout: config.LLM_TIMEOUT_MS + 1000 };
    if (config.AZURE_OPENAI_ENDPOINT) {
      // Without a fixed deployment the SDK puts the request's `model` in the deployment path.
      const sdk = new AzureOpenAI({ ...common, endpoint: config.AZURE_OPENAI_ENDPOINT, apiKey: config.AZURE_OPENAI_API_KEY, apiVersion: config.AZURE_OPENAI_API_VERSION });
      const embeddings = config.AZURE_OPENAI_EMBEDDING_DEPLOYMENT ?? config.LLM_EMBEDDING_MODEL;
      return new LlmClient(sdk, 'azure', config.AZURE_OPENAI_DEPLOYMENT!, embeddings, pricing, config.LLM_TIMEOUT_MS, config.LLM_STRUCTURED_OUTPUT);
    }
    if (!config.OPENAI_API_KEY) return null;
    const sdk = new OpenAI({ ...common, apiKey: config.OPENAI_API_KEY, baseURL: config.OPENAI_BASE_URL });
    return new LlmClient(sdk, 'openai', config.LLM_VISION_MODEL, config.LLM_EMBEDDING_MODEL, pricing, config.LLM_TIMEOUT_MS, config.LLM_STRUCTURED_OUTPUT);
  }

  /**
   * A request's `response_format` is a wish: it is dropped when structured output is off, and a
   * server that answers 400 to it (an older vLLM or Ollama) gets the request again without it,
   * once (a refused request spends no tokens); callers parse text replies as well as JSON.
   */
  async chat(request: ChatRequest, signal?: AbortSignal): Promise<ChatReply> {
    if (!request.response_format) return this.send(request, signal);
    if (!this.structuredOutput) return this.send(withoutResponseFormat(request), signal);
    try {
      return await this.send(request, signal);
    } catch (error) {
      if (!refusesResponseFormat(error)) throw error;
      this.structuredOutput = false;
      logger.warn('the LLM server refused response_format; sending requests without it from now on (set LLM_STRUCTURED_OUTPUT=off to skip the try)', { error: String(error) });
      return this.send(withoutResponseFormat(request), signal);
    }
  }

  private async send(request: ChatRequest, signal?: AbortSignal): Promise<ChatReply> {
    const completion = await this.withDeadline(signal, (s) => this.sdk.chat.completions.create({ ...request, model: this.visionModel, stream: false }, { signal: s }));
    const choice = completion.choices?.[0];
    if (!choice?.message) throw new MalformedReplyError('the reply has no choices');
    return {
      content: choice.message.content ?? null,
      refusal: choice.message.refusal ?? null,
      finishReason: choice.finish_reason ?? null,
      model: completion.model ?? this.visionModel,
      promptTokens: completion.usage?.prompt_tokens ?? 0,
      completionTokens: completion.usage?.completion_tokens ?? 0,
    };
  }

  async embed(texts: string[], signal?: AbortSignal): Promise<EmbeddingsReply> {
    const reply = await this.withDeadline(signal, (s) => this.sdk.embeddings.create({ model: this.embeddingModel, input: texts }, { signal: s }));
    const vectors = [...(reply.data ?? [])].sort((a, b) => a.index - b.index).map((d) => d.embedding);
    if (vectors.length !== texts.length) throw new MalformedReplyError(`expected ${texts.length} embeddings, got ${vectors.length}`);
    return { vectors, promptTokens: reply.usage?.prompt_tokens ?? 0 };
  }

  private async withDeadline<T>(signal: AbortSignal | undefined, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const deadline = AbortSignal.timeout(this.timeoutMs);
    try {
      return await call(signal ? AbortSignal.any([signal, deadline]) : deadline);
    } catch (error) {
      if (deadline.aborted && !signal?.aborted) throw new LlmTimeoutError(this.timeoutMs);
      throw error;
    }
  }

  costUsd(usage: { promptTokens: number; completionTokens: number; embedding?: boolean }): number {
    const promptRate = usage.embedding ? this.pricing.embeddingPerMTok : this.pricing.promptPerMTok;
    return (usage.promptTokens * promptRate + usage.completionTokens * this.pricing.completionPerMTok) / 1e6;
  }
}

function withoutResponseFormat(request: ChatRequest): ChatRequest {
  const { response_format: _dropped, ...rest } = request;
  return rest;
}

/** A 400 that names response_format (OpenAI's `param`) or structured output in its message. */
function refusesResponseFormat(error: unknown): boolean {
  if (!(error instanceof APIError) || error.status !== 400) return false;
  const param = (error as { param?: unknown }).param;
  return param === 'response_format' || /response_format|json_schema|structured output|guided_json/i.test(error.message);
}

/** A 2xx reply that does not have the shape of the protocol; retried like a server error. */
export class MalformedReplyError extends Error {
  constructor(message: string) {
    super(`malformed reply: ${message}`);
    this.name = 'MalformedReplyError';
  }
}

export class LlmTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`LLM request timed out after ${timeoutMs} ms`);
    this.name = 'LlmTimeoutError';
  }
}
