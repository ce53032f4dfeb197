import OpenAI from 'openai';
import { LlmTimeoutError, MalformedReplyError } from './llm';

export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

/** The call failed for good: not retryable, or out of attempts. */
export class AttemptsExhaustedError extends Error {
  constructor(
    readonly attempts: number,
    readonly lastError: unknown,
  ) {
    super(`${describeLlmError(lastError)} (after ${attempts} attempt${attempts === 1 ? '' : 's'})`);
    this.name = 'AttemptsExhaustedError';
  }
}

export function isRetryable(error: unknown): boolean {
  if (error instanceof OpenAI.APIUserAbortError) return false;
  if (error instanceof OpenAI.APIConnectionError) return true; // includes timeouts
  if (error instanceof OpenAI.APIError) return error.status === 408 || error.status === 409 || error.status === 429 || (error.status ?? 0) >= 500;
  if (error instanceof MalformedReplyError || error instanceof LlmTimeoutError) return true;
  // A 2xx with a body that is not JSON; checked by name since the error may come from another realm.
  if ((error as Error | null)?.name === 'SyntaxError') return true;
  return false;
}

/** Milliseconds the server asked us to wait, from `retry-after-ms` or `retry-after` (seconds or an HTTP date). */
export function serverRequestedDelayMs(error: unknown, now = Date.now()): number | null {
  if (!(error instanceof OpenAI.APIError) || !error.headers) return null;
  const ms = Number(error.headers.get('retry-after-ms'));
  if (Number.isFinite(ms) && ms >= 0 && error.headers.get('retry-after-ms') !== null) return ms;
  const header = error.headers.get('retry-after');
  if (header === null) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isFinite(date) ? Math.max(0, date - now) : null;
}

/** Exponential backoff with full jitter, unless the server named a delay; never above the policy's cap. */
export function retryDelayMs(error: unknown, attempt: number, policy: RetryPolicy, random = Math.random): number {
  const requested = serverRequestedDelayMs(error);
  if (requested !== null) return Math.min(requested, policy.maxDelayMs);
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export function describeLlmError(error: unknown): string {
  if (error instanceof OpenAI.APIConnectionTimeoutError) return 'LLM request timed out';
  if ((error as Error | null)?.name === 'SyntaxError') return `LLM reply was not valid JSON: ${(error as Error).message}`;
  if (error instanceof OpenAI.APIConnectionError) return `LLM connection failed: ${error.message}`;
  if (error instanceof OpenAI.APIError) return `LLM returned ${error.status ?? 'an error'}: ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
}

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (ms <= 0 || signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/**
 * Runs `attempt` until it succeeds, fails with a non-retryable error, or runs out of attempts.
 * Returns the value and how many attempts it took.
 */
export async function withRetries<T>(policy: RetryPolicy, attempt: (n: number) => Promise<T>, signal?: AbortSignal): Promise<{ value: T; attempts: number }> {
  for (let n = 1; ; n++) {
    try {
      return { value: await attempt(n), attempts: n };
    } catch (error) {
      if (!isRetryable(error) || n >= policy.maxAttempts || signal?.aborted) throw new AttemptsExhaustedError(n, error);
      await sleep(retryDelayMs(error, n, policy), signal);
    }
  }
}
