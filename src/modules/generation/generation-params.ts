import { z } from 'zod';
import { CandidateForm } from '../candidates/candidate.entity';
import { DemonstrationStrategy } from '../llm-tasks/prompt';
import { modelParametersSchema, runLimitsSchema } from '../llm-tasks/model-call-params';

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
