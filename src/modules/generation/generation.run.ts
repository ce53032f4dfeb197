import { LlmGateway, RunLimits } from '../../platform/llm-gateway';
import { AttemptsExhaustedError } from '../../platform/retry';
import { ChatReply } from '../../platform/llm';
import { CountdownCache } from '../../platform/countdown-cache';
import { ImagesService, ModelFigure } from '../images/images.service';
import { DemonstrationsService, PoolDemonstration } from '../demonstrations/demonstrations.service';
import { CandidateStatus } from '../candidates/candidate.entity';
import { CandidatesService } from '../candidates/candidates.service';
import { RequestContext } from '../projects/request-context';
import { StoredRound } from '../candidates/conversation';
import { Run, RunKind } from '../runs/run.entity';
import { InFlightCall, RunsService } from '../runs/runs.service';
import { ParsedRunKind, RunAttempt, RunControl } from '../runs/run-executor';
import { forEachModelCall } from '../llm-tasks/model-call-loop';
import { PermanentRunError } from '../runs/run-errors';
import { buildGenerationMessages, drawDemonstrations } from '../llm-tasks/prompt';
import { GENERATION_SINGLE, GENERATION_TWO_ANSWERS, TemplateText } from '../llm-tasks/prompt-templates';
import { GenerationParams, generationParamsSchema } from './generation-params';
import { paceOf, samplingFields } from '../llm-tasks/model-call-params';
import { parseConversationReply } from './reply-parser';

interface GenerationItem {
  imageId: string;
  sampleIndex: number;
}

interface Outcome {
  status: CandidateStatus;
  rounds: StoredRound[];
  rawOutput: string | null;
  failureReason: string | null;
  attempts: number;
  reply?: ChatReply;
  latencyMs?: number;
  /** The model call that produced it, settled when the candidate is stored. */
  call?: InFlightCall;
}

const TEMPLATES: Record<string, TemplateText> = { [GENERATION_SINGLE.version]: GENERATION_SINGLE, [GENERATION_TWO_ANSWERS.version]: GENERATION_TWO_ANSWERS };

/**
 * Writes the candidates of a generation run: one per (image, sample) that does not have one yet,
 * so a resumed or retried run fills exactly what is missing. Each candidate and its share of the
 * run's counters commit together.
 */
export class GenerationRun extends ParsedRunKind<GenerationParams> {
  readonly kind = RunKind.GENERATION;
  protected readonly paramsSchema = generationParamsSchema;

  constructor(
    private readonly candidates: CandidatesService,
    private readonly llm: LlmGateway,
    private readonly images: ImagesService,
    private readonly demonstrations: DemonstrationsService,
    private readonly runs: RunsService,
    private readonly imageMaxSide: number,
  ) {
    super();
  }

  protected async attempt({ run, params, ctx }: RunAttempt<GenerationParams>, control: RunControl): Promise<void> {
    const template = TEMPLATES[params.promptTemplateVersion];
    if (!template) throw new PermanentRunError(`Unknown prompt template ${params.promptTemplateVersion}`);
    const pool = params.demonstrationsPerPrompt > 0 ? await this.demonstrations.activePool(run.projectId, params.demonstrationPool) : [];
    const pending = await this.pendingItems(ctx, run.id, params.samplesPerImage);
    const figures = new CountdownCache((id: string) => this.images.modelFigure(run.projectId, id, this.imageMaxSide), pending.map((i) => i.imageId));
    const limits = paceOf(run.id, params.limits);
    await forEachModelCall(this.llm, run.id, pending, params.limits.concurrency, control, async (item) => {
      const figure = await figures.take(item.imageId);
      const demos = drawDemonstrations(pool, params.demonstrationStrategy, params.demonstrationsPerPrompt, `${params.seed}:${item.imageId}:${item.sampleIndex}`, item.imageId);
      const outcome = await this.generate(params, template, figure, demos, limits, item, control);
      if (!outcome || control.signal.aborted) return;
      await this.store(ctx, run, params, template, item, demos, outcome);
    });
  }

  /** Every (target image, sample) without a candidate from this run yet, grouped by image. */
  private async pendingItems(ctx: RequestContext, runId: string, samples: number): Promise<GenerationItem[]> {
    const stored = new Set((await this.candidates.samplesOfRun(ctx, runId)).map((s) => `${s.imageId}:${s.sampleIndex}`));
    return (await this.runs.targetIds(runId)).flatMap((imageId) =>
      Array.from({ length: samples }, (_, sampleIndex) => ({ imageId, sampleIndex })).filter((item) => !stored.has(`${item.imageId}:${item.sampleIndex}`)),
    );
  }

  /** Null when the run was stopped mid-call: nothing is stored and the item stays pending. */
  private async generate(params: GenerationParams, template: TemplateText, figure: ModelFigure | null, demos: PoolDemonstration[], limits: RunLimits, item: GenerationItem, control: RunControl): Promise<Outcome | null> {
    if (!figure?.dataUrl) return failed('The image has no stored bytes', 0);
    const messages = buildGenerationMessages(template, params.minRounds, demos, figure, figure.dataUrl);
    const request = { messages, ...samplingFields(params.modelParameters), seed: (params.seed + item.sampleIndex) % 2 ** 31 };
    const { signal } = control;
    const { call, announce } = control.modelCall(this.llm.estimatedPromptCostUsd(request));
    try {
      const { reply, attempts, latencyMs } = await this.llm.chat(request, limits, signal, announce);
      return { ...interpret(reply, params), attempts, reply, latencyMs, call };
    } catch (error) {
      if (signal.aborted) return null;
      if (error instanceof AttemptsExhaustedError) return { ...failed(error.message, error.attempts), call };
      throw error;
    }
  }

  private async store(ctx: RequestContext, run: Run, params: GenerationParams, template: TemplateText, item: GenerationItem, demos: PoolDemonstration[], outcome: Outcome): Promise<void> {
    const promptTokens = outcome.reply?.promptTokens ?? 0;
    const completionTokens = outcome.reply?.completionTokens ?? 0;
    const costUsd = this.llm.client ? this.llm.client.costUsd({ promptTokens, completionTokens }) : 0;
    const ok = outcome.status === CandidateStatus.OK;
    await this.runs.recordItem(
      this.candidates.insertFromRun(ctx, {
        imageId: item.imageId,
        runId: run.id,
        sampleIndex: item.sampleIndex,
        status: outcome.status,
        form: params.form,
        rawOutput: outcome.rawOutput,
        rounds: outcome.rounds,
        failureReason: outcome.failureReason,
        model: outcome.reply?.model ?? params.model,
        promptTemplateVersion: template.version,
        demonstrationIds: demos.map((d) => d.id),
        promptTokens,
        completionTokens,
        latencyMs: outcome.latencyMs ?? null,
        attempts: outcome.attempts,
        costUsd,
      }),
      run.id,
      {
        done: ok ? 1 : 0,
        failed: ok ? 0 : 1,
        outcome: outcome.status,
        promptTokens,
        completionTokens,
        costUsd,
        lastError: ok ? null : `${outcome.status}: ${outcome.failureReason}`,
        settledCall: outcome.call,
      },
    );
  }
}

function failed(reason: string, attempts: number): Outcome {
  return { status: CandidateStatus.FAILED, rounds: [], rawOutput: null, failureReason: reason, attempts };
}

function interpret(reply: ChatReply, params: GenerationParams): Omit<Outcome, 'attempts'> {
  if (reply.refusal) return { status: CandidateStatus.REFUSED, rounds: [], rawOutput: reply.refusal, failureReason: `The model refused: ${reply.refusal}` };
  const text = reply.content ?? '';
  if (!text.trim()) return { status: CandidateStatus.PARSE_FAILED, rounds: [], rawOutput: text, failureReason: 'The reply was empty' };
  const parsed = parseConversationReply(text, { form: params.form, minRounds: params.minRounds });
  if (parsed.kind === 'ok') return { status: CandidateStatus.OK, rounds: parsed.rounds, rawOutput: text, failureReason: null };
  if (parsed.kind === 'refused') return { status: CandidateStatus.REFUSED, rounds: [], rawOutput: text, failureReason: `The model refused: ${parsed.reason}` };
  const truncated = reply.finishReason === 'length' ? ' (the reply hit the max token limit)' : '';
  return { status: CandidateStatus.PARSE_FAILED, rounds: parsed.rounds, rawOutput: text, failureReason: `${parsed.reason}${truncated}` };
}
