import { DataSource } from 'typeorm';
import { AppConfig } from './config';
import { ChatReply, ChatRequest, EmbeddingsReply, LlmClient, llmUnavailable } from './llm';
import { Pacer, PaceLimit } from './pacer';
import { RetryPolicy, sleep, withRetries } from './retry';
import { Semaphore } from './semaphore';
import type { ServiceMetrics } from './metrics';

/** Limits a run asked for, on top of the service-wide ones. */
export interface RunLimits {
  runId: string;
  requestsPerMinute?: number | null;
  tokensPerMinute?: number | null;
}

export interface Called<T> {
  reply: T;
  attempts: number;
  latencyMs: number;
}

const IMAGE_TOKENS_ESTIMATE = 800;

/** Tokens a chat request may spend, reserved before the call and corrected after it. */
export function estimateChatTokens(request: ChatRequest): number {
  const completion = request.max_completion_tokens ?? request.max_tokens ?? 1000;
  return estimatePromptTokens(request) + completion;
}

/** The prompt tokens a chat request will be billed for, estimated from its text and images before it is sent. */
export function estimatePromptTokens(request: ChatRequest): number {
  let chars = 0;
  let images = 0;
  for (const message of request.messages) {
    const content = (message as { content?: unknown }).content;
    if (typeof content === 'string') chars += content.length;
    else if (Array.isArray(content)) {
      for (const part of content) {
        if (part?.type === 'text') chars += String(part.text ?? '').length;
        else if (part?.type === 'image_url') images++;
      }
    }
  }
  return Math.ceil(chars / 4) + images * IMAGE_TOKENS_ESTIMATE;
}

/**
 * Every LLM call of the workers goes through here: a per-process concurrency cap, service-wide and
 * per-run request and token pacing shared through Postgres, and retries with backoff.
 */
export class LlmGateway {
  private readonly slots: Semaphore;
  private readonly pacer: Pacer;
  readonly policy: RetryPolicy;

  constructor(
    ds: DataSource,
    readonly client: LlmClient | null,
    private readonly config: AppConfig,
    private readonly metrics?: Pick<ServiceMetrics, 'modelCall'>,
  ) {
    this.slots = new Semaphore(config.LLM_MAX_CONCURRENCY);
    this.pacer = new Pacer(ds);
    this.policy = { maxAttempts: config.LLM_MAX_ATTEMPTS, baseDelayMs: config.LLM_RETRY_BASE_MS, maxDelayMs: config.LLM_RETRY_MAX_MS };
  }

  requireClient(): LlmClient {
    if (!this.client) throw llmUnavailable();
    return this.client;
  }

  /** `beforeFirstSend` runs once, just before the request first leaves (after slots and pacing): a caller records the call as in flight there. */
  chat(request: ChatRequest, limits: RunLimits, signal?: AbortSignal, beforeFirstSend?: () => Promise<void>): Promise<Called<ChatReply>> {
    const client = this.requireClient();
    return this.call(limits, estimateChatTokens(request), (r) => r.promptTokens + r.completionTokens, () => this.observed('chat', () => client.chat(request, signal)), signal, beforeFirstSend);
  }

  embed(texts: string[], limits: RunLimits, signal?: AbortSignal): Promise<Called<EmbeddingsReply>> {
    const client = this.requireClient();
    const estimate = Math.ceil(texts.reduce((n, t) => n + t.length, 0) / 4);
    return this.call(limits, estimate, (r) => r.promptTokens, () => this.observed('embedding', () => client.embed(texts, signal)), signal);
  }

  /** One model request, counted for /metrics with its tokens and cost at the configured prices. */
  private async observed<T extends { promptTokens: number; completionTokens?: number }>(kind: 'chat' | 'embedding', send: () => Promise<T>): Promise<T> {
    if (!this.metrics) return send();
    try {
      const reply = await send();
      const pricing = this.client!.pricing;
      const completionTokens = reply.completionTokens ?? 0;
      const costUsd = kind === 'chat' ? (reply.promptTokens * pricing.promptPerMTok + completionTokens * pricing.completionPerMTok) / 1e6 : (reply.promptTokens * pricing.embeddingPerMTok) / 1e6;
      this.metrics.modelCall(kind, { promptTokens: reply.promptTokens, completionTokens, costUsd });
      return reply;
    } catch (error) {
      this.metrics.modelCall(kind, { error });
      throw error;
    }
  }

  /** What a chat request is estimated to cost before it is sent (its prompt only: no reply is read yet). */
  estimatedPromptCostUsd(request: ChatRequest): number {
    return this.client?.costUsd({ promptTokens: estimatePromptTokens(request), completionTokens: 0 }) ?? 0;
  }

  /** Drops a finished run's pacing rows. */
  forgetRun(runId: string): Promise<void> {
    return this.pacer.forget(`run:${runId}:`);
  }

  private async call<T>(limits: RunLimits, estimatedTokens: number, tokensOf: (reply: T) => number, send: () => Promise<T>, signal?: AbortSignal, beforeFirstSend?: () => Promise<void>): Promise<Called<T>> {
    const started = Date.now();
    let announce = beforeFirstSend;
    const { value, attempts } = await withRetries(
      this.policy,
      () =>
        this.slots.use(async () => {
          const paced = this.limitsFor(limits, estimatedTokens);
          await sleep(await this.pacer.reserve(paced), signal);
          signal?.throwIfAborted();
          if (announce) {
            const once = announce;
            announce = undefined;
            await once();
          }
          try {
            const reply = await send();
            await this.settleTokens(paced, tokensOf(reply));
            return reply;
          } catch (error) {
            await this.settleTokens(paced, 0);
            throw error;
          }
        }),
      signal,
    );
    return { reply: value, attempts, latencyMs: Date.now() - started };
  }

  private limitsFor(limits: RunLimits, tokens: number): PaceLimit[] {
    return [
      { key: 'global:requests', perMinute: this.config.LLM_REQUESTS_PER_MINUTE, weight: 1 },
      { key: 'global:tokens', perMinute: this.config.LLM_TOKENS_PER_MINUTE, weight: tokens },
      { key: `run:${limits.runId}:requests`, perMinute: limits.requestsPerMinute ?? 0, weight: 1 },
      { key: `run:${limits.runId}:tokens`, perMinute: limits.tokensPerMinute ?? 0, weight: tokens },
    ];
  }

  private async settleTokens(paced: PaceLimit[], actualTokens: number): Promise<void> {
    for (const limit of paced) if (limit.key.endsWith(':tokens')) await this.pacer.adjust(limit, actualTokens);
  }
}
