import { DataSource } from 'typeorm';
import { z } from 'zod';
import { RequestContext } from '../projects/request-context';
import { Role } from '../projects/role';
import { expectGlobalId } from '../../platform/ids';
import { LlmGateway } from '../../platform/llm-gateway';
import { UserErrorCode, userError, UserErrorsException } from '../../platform/user-errors';
import { Candidate, CandidateStatus } from '../candidates/candidate.entity';
import { ReparseCounts, RunsService, StoredReplyReparser } from '../runs/runs.service';
import { Run, RunKind } from '../runs/run.entity';
import { modelParametersFrom, modelParametersSchema, runLimitsFrom, runLimitsSchema } from '../generation/generation-params';
import { RATING } from '../generation/prompt-templates';
import { StartRatingRunInput } from './rating.inputs';
import { parseRatingReply } from './rating-parser';

export const ratingParamsSchema = z.object({
  model: z.string(),
  rubricVersion: z.string(),
  modelParameters: modelParametersSchema,
  limits: runLimitsSchema,
  selection: z.record(z.string(), z.unknown()),
});
export type RatingParams = z.infer<typeof ratingParamsSchema>;

/** One item per answer of every round of the run's candidates. */
const COUNT_ANSWERS = `SELECT coalesce(sum(jsonb_array_length(r.value -> 'answers')), 0) AS count
  FROM run_targets t JOIN candidates c ON c.id = t.target_id CROSS JOIN LATERAL jsonb_array_elements(c.rounds) r
  WHERE t.run_id = $1`;

/** The reason RatingJob gives an unparseable reply (a refusal also keeps its text, and is not re-parsed). */
const UNPARSEABLE_REASON_PREFIX = 'Unparseable rating:';

/** RatingJob's item key: `candidate:<id>:round:<n>:answer:<n>`. */
const RATING_ITEM_KEY = /^candidate:([0-9a-f-]{36}):round:(\d+):answer:(\d+)$/;

/**
 * One re-parsed failure becomes the preference the job would have written, with the same item
 * (candidate, round, answer, run), and the failure row goes, in one statement. The failure is only
 * removed while no preference holds its item, so the item is never both.
 */
const FAILURE_TO_RATING = `removed AS (
    DELETE FROM run_failures f WHERE f.id = $1 AND NOT EXISTS (
      SELECT 1 FROM preferences p WHERE p.run_id = f.run_id AND p.candidate_id = $2 AND p.round_index = $3 AND p.answer_index = $4)
    RETURNING f.project_id, f.run_id),
  moved AS (
    INSERT INTO preferences (project_id, candidate_id, source, kind, judge_model, run_id, round_index, answer_index, rating, rubric_version, rationale)
    SELECT project_id, $2, 'MODEL', 'RATING', $5, run_id, $3, $4, $6, $7, $8 FROM removed
    ON CONFLICT DO NOTHING RETURNING 1)`;

/** Starts model-rating runs: GPT-4V as judge, 0-10 per answer, stored as MODEL preferences. */
export class RatingService implements StoredReplyReparser {
  constructor(
    private readonly ds: DataSource,
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
    return this.runs.create(ctx, { kind: RunKind.RATING, params, targets, countItemsSql: COUNT_ANSWERS });
  }

  /**
   * Unparseable judge replies of an ended run that the current parser reads become MODEL ratings.
   * The judge model is the run's (the reply's own model name is not kept with a failure).
   */
  async reparseStoredReplies(ctx: RequestContext, run: Run): Promise<ReparseCounts> {
    ctx.assertRole(Role.CURATOR);
    const params = ratingParamsSchema.parse(run.params);
    const failures: { id: string; item_key: string; raw_output: string }[] = await this.ds.query(
      `SELECT id, item_key, raw_output FROM run_failures WHERE project_id = $1 AND run_id = $2 AND raw_output IS NOT NULL AND starts_with(reason, $3) ORDER BY created_at, id`,
      [ctx.projectId, run.id, UNPARSEABLE_REASON_PREFIX],
    );
    let parsed = 0;
    for (const failure of failures) {
      const key = RATING_ITEM_KEY.exec(failure.item_key);
      const rating = parseRatingReply(failure.raw_output);
      if (!key || rating.kind !== 'ok') continue;
      const [, candidateId, roundIndex, answerIndex] = key;
      parsed += await this.runs.recordReparsed(run.id, {
        ctes: FAILURE_TO_RATING,
        params: [failure.id, candidateId, Number(roundIndex), Number(answerIndex), params.model, rating.score, params.rubricVersion, rating.rationale],
      });
    }
    return { examined: failures.length, parsed, stillFailing: failures.length - parsed };
  }

  private async selectCandidates(ctx: RequestContext, input: StartRatingRunInput) {
    const field = ['input'];
    if (!!input.generationRunId === !!input.candidateIds) throw new UserErrorsException([userError(UserErrorCode.INVALID, 'Give generationRunId or candidateIds, one of them', field)]);
    const qb = this.ds
      .getRepository(Candidate)
      .createQueryBuilder('c')
      .select('c.id', 'id')
      .where('c.projectId = :p AND c.status = :ok', { p: ctx.projectId, ok: CandidateStatus.OK });
    if (input.generationRunId) {
      const runId = expectGlobalId(input.generationRunId, 'Run', 'input.generationRunId');
      const run = await this.runs.findById(ctx, runId);
      if (!run || run.kind !== RunKind.GENERATION) throw new UserErrorsException([userError(UserErrorCode.NOT_FOUND, 'Generation run not found', ['input', 'generationRunId'])]);
      qb.andWhere('c.runId = :runId', { runId });
    } else {
      const ids = [...new Set(input.candidateIds!.map((id) => expectGlobalId(id, 'Candidate', 'input.candidateIds')))];
      // As for images: ids that are not candidates of this project are NOT_FOUND, not silently dropped.
      const found = await this.ds.getRepository(Candidate).createQueryBuilder('c').where('c.projectId = :p AND c.id = ANY(:ids::uuid[])', { p: ctx.projectId, ids }).getCount();
      if (found !== ids.length) throw new UserErrorsException([userError(UserErrorCode.NOT_FOUND, `${ids.length - found} of the candidates were not found`, ['input', 'candidateIds'])]);
      qb.andWhere('c.id = ANY(:ids::uuid[])', { ids });
    }
    if (!(await qb.getCount())) throw new UserErrorsException([userError(UserErrorCode.INVALID, 'No candidate with status OK matches', field)]);
    return qb;
  }
}
