import { LlmGateway, RunLimits } from '../../platform/llm-gateway';
import { AttemptsExhaustedError } from '../../platform/retry';
import { CountdownCache } from '../../platform/countdown-cache';
import { ImagesService, ModelFigure } from '../images/images.service';
import { CandidatesService } from '../candidates/candidates.service';
import { RequestContext } from '../projects/request-context';
import { PreferencesService } from '../preferences/preferences.service';
import { Run, RunKind } from '../runs/run.entity';
import { InFlightCall, RunsService } from '../runs/runs.service';
import { ParsedRunKind, RunAttempt, RunControl } from '../runs/run-executor';
import { forEachModelCall } from '../llm-tasks/model-call-loop';
import { paceOf } from '../llm-tasks/model-call-params';
import { RatingParams, ratingParamsSchema } from './rating.service';
import { parseRatingReply } from './rating-parser';
import { buildRatingRequest } from './rating-request';
import { RatingOutcome, ratingItemKey, UNPARSEABLE_REASON_PREFIX } from './rating-items';

interface RatingItem {
  candidateId: string;
  imageId: string;
  roundIndex: number;
  answerIndex: number;
  question: string;
  answer: string;
}

const itemKey = ratingItemKey;

/**
 * Rates every answer of the run's candidates. A rating and its counters commit together; an
 * unparseable or failed rating is a run failure that keeps the reply. Resuming skips both.
 */
export class RatingRun extends ParsedRunKind<RatingParams> {
  readonly kind = RunKind.RATING;
  protected readonly paramsSchema = ratingParamsSchema;

  constructor(
    private readonly candidates: CandidatesService,
    private readonly preferences: PreferencesService,
    private readonly llm: LlmGateway,
    private readonly images: ImagesService,
    private readonly runs: RunsService,
    private readonly imageMaxSide: number,
  ) {
    super();
  }

  protected async attempt({ run, params, ctx }: RunAttempt<RatingParams>, control: RunControl): Promise<void> {
    const items = await this.pendingItems(ctx, run.id);
    const figures = new CountdownCache((id: string) => this.images.modelFigure(run.projectId, id, this.imageMaxSide), items.map((i) => i.imageId));
    const limits = paceOf(run.id, params.limits);
    await forEachModelCall(this.llm, run.id, items, params.limits.concurrency, control, (item) => this.rate(ctx, run, params, item, figures.take(item.imageId), limits, control));
  }

  /** Every answer of the run's candidates with neither a rating nor a failure from this run. */
  private async pendingItems(ctx: RequestContext, runId: string): Promise<RatingItem[]> {
    const candidates = await this.candidates.conversations(ctx, await this.runs.targetIds(runId));
    const settled = await this.runs.failedItemKeys(runId);
    for (const rated of await this.preferences.ratedByRun(ctx, runId)) settled.add(itemKey(rated));
    return candidates.flatMap((c) =>
      c.rounds.flatMap((round, roundIndex) =>
        round.answers.map((answer, answerIndex) => ({ candidateId: c.id, imageId: c.imageId, roundIndex, answerIndex, question: round.question, answer })),
      ),
    ).filter((item) => !settled.has(itemKey(item)));
  }

  private async rate(ctx: RequestContext, run: Run, params: RatingParams, item: RatingItem, figureTaken: Promise<ModelFigure | null>, limits: RunLimits, control: RunControl): Promise<void> {
    const figure = await figureTaken;
    if (!figure?.dataUrl) return this.fail(run, item, RatingOutcome.FAILED, 'The image has no stored bytes', null, 0, { promptTokens: 0, completionTokens: 0 }, null);
    const { signal } = control;
    const request = buildRatingRequest(figure, item.question, item.answer, figure.dataUrl, params.modelParameters);
    const { call, announce } = control.modelCall(this.llm.estimatedPromptCostUsd(request));
    try {
      const { reply, attempts } = await this.llm.chat(request, limits, signal, announce);
      if (signal.aborted) return;
      const usage = { promptTokens: reply.promptTokens, completionTokens: reply.completionTokens };
      if (reply.refusal) return this.fail(run, item, RatingOutcome.REFUSED, `The judge refused: ${reply.refusal}`, reply.refusal, attempts, usage, call);
      const parsed = parseRatingReply(reply.content ?? '');
      if (parsed.kind === 'failed') return this.fail(run, item, RatingOutcome.UNPARSEABLE, `${UNPARSEABLE_REASON_PREFIX} ${parsed.reason}`, reply.content, attempts, usage, call);
      await this.runs.recordItem(
        this.preferences.insertRating(ctx, {
          candidateId: item.candidateId,
          judgeModel: reply.model,
          runId: run.id,
          roundIndex: item.roundIndex,
          answerIndex: item.answerIndex,
          rating: parsed.score,
          rubricVersion: params.rubricVersion,
          rationale: parsed.rationale,
        }),
        run.id,
        { done: 1, outcome: RatingOutcome.RATED, ...usage, costUsd: this.cost(usage), settledCall: call },
      );
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof AttemptsExhaustedError) return this.fail(run, item, RatingOutcome.FAILED, error.message, null, error.attempts, { promptTokens: 0, completionTokens: 0 }, call);
      throw error;
    }
  }

  private async fail(
    run: Run,
    item: RatingItem,
    outcome: RatingOutcome,
    reason: string,
    rawOutput: string | null,
    attempts: number,
    usage: { promptTokens: number; completionTokens: number },
    call: InFlightCall | null,
  ): Promise<void> {
    await this.runs.recordFailure(run, { itemKey: itemKey(item), reason, rawOutput, attempts }, { ...usage, outcome, costUsd: this.cost(usage), settledCall: call });
  }

  private cost(usage: { promptTokens: number; completionTokens: number }): number {
    return this.llm.client?.costUsd(usage) ?? 0;
  }
}
