import { DataSource } from 'typeorm';
import { z } from 'zod';
import { RequestContext } from '../projects/request-context';
import { Role } from '../projects/role';
import { expectGlobalId } from '../../platform/ids';
import { LlmGateway } from '../../platform/llm-gateway';
import { UserErrorCode, userError, UserErrorsException } from '../../platform/user-errors';
import { Candidate, CandidateStatus } from '../candidates/candidate.entity';
import { RunsService } from '../runs/runs.service';
import { Run, RunKind } from '../runs/run.entity';
import { modelParametersFrom, modelParametersSchema, runLimitsFrom, runLimitsSchema } from '../llm-tasks/model-call-params';
import { RATING } from '../llm-tasks/prompt-templates';
import { StartRatingRunInput } from './rating.inputs';

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

/** Starts model-rating runs: GPT-4V as judge, 0-10 per answer, stored as MODEL preferences. */
export class RatingService {
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
