import { z } from 'zod';
import type { RunLimits } from '../../platform/llm-gateway';

/** Model-call parameters every LLM run kind stores and reads back: limits, pacing and sampling. */

export const runLimitsSchema = z.object({
  concurrency: z.number().int().min(1).default(8),
  requestsPerMinute: z.number().int().positive().nullable().default(null),
  tokensPerMinute: z.number().int().positive().nullable().default(null),
});

export const modelParametersSchema = z.object({
  temperature: z.number().default(0.7),
  topP: z.number().nullable().default(null),
  maxTokens: z.number().int().default(2000),
});

export type RunLimitParams = z.infer<typeof runLimitsSchema>;
export type ModelParameters = z.infer<typeof modelParametersSchema>;

/** A run's limits as stored, from its optional input; each kind of run has its own default concurrency. */
export function runLimitsFrom(input: Partial<RunLimitParams> | null | undefined, defaultConcurrency: number): RunLimitParams {
  return { concurrency: input?.concurrency ?? defaultConcurrency, requestsPerMinute: input?.requestsPerMinute ?? null, tokensPerMinute: input?.tokensPerMinute ?? null };
}

export function modelParametersFrom(input: Partial<ModelParameters> | null | undefined, defaults: { temperature: number; maxTokens: number }): ModelParameters {
  return { temperature: input?.temperature ?? defaults.temperature, topP: input?.topP ?? null, maxTokens: input?.maxTokens ?? defaults.maxTokens };
}

/** The pacing a worker applies to a run's calls. */
export function paceOf(runId: string, limits: RunLimitParams): RunLimits {
  return { runId, requestsPerMinute: limits.requestsPerMinute, tokensPerMinute: limits.tokensPerMinute };
}

/** Stored model parameters as chat-completions request fields. */
export function samplingFields(p: ModelParameters) {
  return { temperature: p.temperature, ...(p.topP !== null ? { top_p: p.topP } : {}), max_tokens: p.maxTokens };
}

