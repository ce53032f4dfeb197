import { z } from 'zod';
import type { RunLimits } from '../../platform/llm-gateway';
import { CandidateForm } from '../candidates/candidate.entity';
import { DemonstrationStrategy } from './prompt';

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

/** What a generation run stores in `params` and its worker reads back. */
export const generationParamsSchema = z.object({
  samplesPerImage: z.number().int().min(1),
  form: z.enum(CandidateForm),
  minRounds: z.number().int().min(1),
  demonstrationsPerPrompt: z.number().int().min(0),
  demonstrationStrategy: z.enum(DemonstrationStrategy),
  seed: z.number().int(),
  model: z.string(),
  promptTemplateVersion: z.string(),
  modelParameters: modelParametersSchema,
  limits: runLimitsSchema,
  selection: z.record(z.string(), z.unknown()),
  /** The active demonstrations when the run was created; a resumed run draws from the same pool. */
  demonstrationPool: z.array(z.string()),
});
export type GenerationParams = z.infer<typeof generationParamsSchema>;
