import { z } from 'zod';
import { RequestContext } from '../projects/request-context';
import { Role } from '../projects/role';
import { expectGlobalId } from '../../platform/ids';
import { LlmGateway } from '../../platform/llm-gateway';
import { UserErrorCode, userError, UserErrorsException } from '../../platform/user-errors';
import { CandidatesService } from '../candidates/candidates.service';
import { PreferencesService } from '../preferences/preferences.service';
import { ReparseCounts, RunsService, StoredReplyReparser } from '../runs/runs.service';
import { Run, RunKind } from '../runs/run.entity';
import { modelParametersFrom, modelParametersSchema, runLimitsFrom, runLimitsSchema } from '../llm-tasks/model-call-params';
import { RATING } from '../llm-tasks/prompt-templates';
import { StartRatingRunInput } from './rating.inputs';
import { parseRatingReply } from './rating-parser';
import { parseRatingItemKey, RatingOutcome, UNPARSEABLE_REASON_PREFIX } from './rating-items';

export const ratingParamsSchema = z.object({
  model: z.string(),
  rubricVersion: z.string(),
  modelParameters: modelParametersSchema,
  limits: runLimitsSchema,
  selection: z.record(z.string(), z.unknown()),
});
export type RatingParams = z.infer<typeof ratingParamsSchema>;

/** Starts model-rating runs: GPT-4V as judge, 0-10 per answer, stored as MODEL preferences. */
export class RatingService implements StoredReplyReparser {
  constructor(
    private readonly candidates: CandidatesService,
    private readonly preferences: PreferencesService,
    private readonly llm: LlmGateway,
    private readonly runs: RunsService,
  ) {}

  async startRun(ctx: RequestContext, input: StartRatingRunInput): Promise<Run> {
    ctx.assertRole(Role.CURATOR);
    const client = this.llm.requireClient();
    const targets = await this.selectCandidates(ctx, input);
    const params: RatingParams = {
      model: client.visionModel,
      rubricVersion: RATING.version,
      modelParameters: modelParametersFrom(input.model, { temperature: 0, maxTokens: 400 }),
      limits: runLimitsFrom(input.limits, 8),
      selection: input.generationRunId ? { generationRunId: input.generationRunId } : { candidateIds: input.candidateIds },
    };
    return this.runs.create(ctx, { kind: RunKind.RATING, params, targets, countItems: (em) => this.candidates.countAnswers(em, targets) });
  }

  /**
   * Unparseable judge replies of an ended run that the current parser reads become MODEL ratings with
   * the run's item keys (candidate, round, answer), and their failure rows go, in one statement each.
   * The judge model is the run's (the reply's own model name is not kept with a failure).
   */
  async reparseStoredReplies(ctx: RequestContext, run: Run): Promise<ReparseCounts> {
    ctx.assertRole(Role.CURATOR);
    const params = ratingParamsSchema.parse(run.params);
    const failures = await this.runs.failuresWithReplies(ctx, run.id, UNPARSEABLE_REASON_PREFIX);
    let parsed = 0;
    for (const failure of failures) {
      const item = parseRatingItemKey(failure.itemKey);
      const rating = parseRatingReply(failure.rawOutput);
      if (!item || rating.kind !== 'ok') continue;
      const [sql, values] = this.preferences
        .insertRating(ctx, { ...item, judgeModel: params.model, runId: run.id, rating: rating.score, rubricVersion: params.rubricVersion, rationale: rating.rationale })
        .orIgnore()
        .updateEntity(false)
        .returning('id')
        .getQueryAndParameters();
      parsed += await this.runs.recordReparsed(run.id, { sql, params: values, from: RatingOutcome.UNPARSEABLE, to: RatingOutcome.RATED, failureId: failure.id });
    }
    return { examined: failures.length, parsed, stillFailing: failures.length - parsed };
  }

  private async selectCandidates(ctx: RequestContext, input: StartRatingRunInput) {
    const field = ['input'];
    if (!!input.generationRunId === !!input.candidateIds) throw new UserErrorsException([userError(UserErrorCode.INVALID, 'Give generationRunId or candidateIds, one of them', field)]);
    if (input.generationRunId) {
      const run = await this.runs.findById(ctx, expectGlobalId(input.generationRunId, 'Run', 'input.generationRunId'));
      if (!run || run.kind !== RunKind.GENERATION) throw new UserErrorsException([userError(UserErrorCode.NOT_FOUND, 'Generation run not found', ['input', 'generationRunId'])]);
    }
    // As for images: ids that are not candidates of this project are NOT_FOUND, not silently dropped.
    const qb = await this.candidates.selectIds(ctx, { generationRunIds: input.generationRunId ? [input.generationRunId] : null, candidateIds: input.candidateIds }, field);
    if (!(await qb.getCount())) throw new UserErrorsException([userError(UserErrorCode.INVALID, 'No candidate with status OK matches', field)]);
    return qb;
  }
}
