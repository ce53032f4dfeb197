import { DataSource } from 'typeorm';
import { z } from 'zod';
import { RequestContext } from '../projects/request-context';
import { Role } from '../projects/role';
import { childPages, countChildren, PageArgs } from '../../platform/pagination';
import { PlainRows } from '../../platform/plain-rows';
import { expectGlobalId } from '../../platform/ids';
import { userError, UserErrorCode, UserErrorsException } from '../../platform/user-errors';
import { CandidatesService } from '../candidates/candidates.service';
import { Run, RunKind } from '../runs/run.entity';
import { RunsService } from '../runs/runs.service';
import { SelectorsService } from '../selectors/selectors.service';
import { SelectorModel } from '../selectors/selector-model.entity';
import { Score } from './score.entity';
import { StartScoringRunInput } from './scoring.inputs';

export const scoringParamsSchema = z.object({
  selectorModelId: z.string().uuid(),
  selector: z.object({ name: z.string(), version: z.number().int() }),
  batchSize: z.number().int().min(1),
  selection: z.record(z.string(), z.unknown()),
});
export type ScoringParams = z.infer<typeof scoringParamsSchema>;

export class ScoringService {
  constructor(
    private readonly ds: DataSource,
    private readonly candidates: CandidatesService,
    private readonly selectors: SelectorsService,
    private readonly runs: RunsService,
    private readonly defaultBatchSize: number,
  ) {}

  async findById(ctx: RequestContext, id: string): Promise<Score | null> {
    return this.ds.getRepository(Score).findOneBy({ id, projectId: ctx.projectId });
  }

  /** A page of scores for each candidate, in one statement. */
  async pagesByCandidate(ctx: RequestContext, candidateIds: readonly string[], page: PageArgs): Promise<Score[]> {
    return childPages(this.ds.getRepository(Score), { table: 'scores', parentColumn: 'candidate_id', projectId: ctx.projectId, parentIds: candidateIds, page });
  }

  async countsByCandidate(ctx: RequestContext, candidateIds: readonly string[]): Promise<number[]> {
    return countChildren(this.ds, { table: 'scores', parentColumn: 'candidate_id', projectId: ctx.projectId, parentIds: candidateIds });
  }

  /** Scores of many candidates under one selector model. */
  async forCandidates(ctx: RequestContext, selectorModelId: string, candidateIds: readonly string[]): Promise<Score[]> {
    if (candidateIds.length === 0) return [];
    const rows = PlainRows.of(this.ds, Score);
    return rows.query(`SELECT ${rows.select('s')} FROM scores s WHERE s.project_id = $1 AND s.selector_model_id = $2 AND s.candidate_id = ANY($3::uuid[])`, [ctx.projectId, selectorModelId, [...candidateIds]], 's');
  }

  /** The selector a request names, or the project's active one; NOT_FOUND on `field` otherwise. */
  async resolveSelector(ctx: RequestContext, globalId: string | null | undefined, field: string[]): Promise<SelectorModel> {
    const model = globalId
      ? await this.selectors.findById(ctx, expectGlobalId(globalId, 'SelectorModel', field.join('.')))
      : await this.selectors.findActive(ctx);
    if (!model) throw new UserErrorsException([userError(UserErrorCode.NOT_FOUND, globalId ? 'Selector model not found' : 'The project has no active selector model; give selectorModelId', field)]);
    return model;
  }

  /**
   * Freezes the selected candidates that the selector has not scored yet and queues the run; a
   * re-run over the same candidates therefore only fills what is missing.
   */
  async startRun(ctx: RequestContext, input: StartScoringRunInput): Promise<Run> {
    ctx.assertRole(Role.CURATOR);
    const selector = await this.resolveSelector(ctx, input.selectorModelId, ['input', 'selectorModelId']);
    await this.runs.assertRunsOfKind(ctx, input.candidates?.generationRunIds, RunKind.GENERATION, ['input', 'candidates', 'generationRunIds']);
    const targets = await this.candidates.selectIds(ctx, input.candidates, ['input', 'candidates']);
    targets.andWhere('NOT EXISTS (SELECT 1 FROM scores s WHERE s.candidate_id = c.id AND s.selector_model_id = :selectorId)', { selectorId: selector.id });
    const params: ScoringParams = {
      selectorModelId: selector.id,
      selector: { name: selector.name, version: selector.version },
      batchSize: input.batchSize ?? this.defaultBatchSize,
      selection: { ...(input.candidates ?? {}) },
    };
    return this.runs.create(ctx, { kind: RunKind.SCORING, params, targets });
  }
}
