import { DataSource } from 'typeorm';
import { z } from 'zod';
import { RequestContext } from '../projects/request-context';
import { Role } from '../projects/role';
import { expectGlobalId } from '../../platform/ids';
import { childPages, countChildren, PageArgs } from '../../platform/pagination';
import { userError, UserErrorCode, UserErrorsException } from '../../platform/user-errors';
import { Run, RunKind, RunStatus } from '../runs/run.entity';
import { RunsService } from '../runs/runs.service';
import { SelectorsService } from '../selectors/selectors.service';
import { SelectorModel } from '../selectors/selector-model.entity';
import { ImagesService } from '../images/images.service';
import { PreferencesService } from '../preferences/preferences.service';
import { CandidatesService } from '../candidates/candidates.service';
import type { PreferenceRecord } from '../training/preference-pairs';
import { heldOutClinicianPairs } from './held-out-pairs';
import { SelectorEvaluation } from './selector-evaluation.entity';
import { StartEvaluationRunInput } from './evaluation.inputs';

export const evaluationParamsSchema = z.object({
  selectorModelIds: z.array(z.string().uuid()),
  selectors: z.array(z.object({ id: z.string().uuid(), name: z.string(), version: z.number().int() })),
  /** Null: the judge is not measured. `model` null: the judge with the most ratings. */
  judge: z.object({ model: z.string().nullable() }).nullable(),
  trainingRunId: z.string().uuid().nullable(),
  /** The held-out images; null: every clinician pair of the project. */
  imageIds: z.array(z.string().uuid()).nullable(),
  /** Only judgements recorded up to the run's start count, so a resumed run measures the same pairs. */
  preferencesBefore: z.string(),
  bootstrapSamples: z.number().int().min(1),
  seed: z.number().int().min(0),
  batchSize: z.number().int().min(1),
});
export type EvaluationParams = z.infer<typeof evaluationParamsSchema>;

/** The held-out images of a TRAINING run (its validation split); provided by the training module at the composition root. */
export type TrainingHeldOutImages = (ctx: RequestContext, trainingRunId: string) => Promise<string[]>;

/**
 * The project's judgements recorded before `before` (the preferences module's trainingRecords, the
 * same read training builds its pairs from) with the images of the judged candidates; judgements
 * of a deleted candidate are dropped.
 */
export async function judgementRecords(ctx: RequestContext, preferences: PreferencesService, candidates: CandidatesService, before: Date): Promise<PreferenceRecord[]> {
  const rows = await preferences.trainingRecords(ctx, before);
  const candidateIds = [...new Set(rows.flatMap((r) => (r.otherCandidateId ? [r.candidateId, r.otherCandidateId] : [r.candidateId])))];
  const imageOf = new Map((await candidates.imagesOf(ctx, candidateIds)).map((c) => [c.id, c.imageId]));
  return rows
    .filter((r) => imageOf.has(r.candidateId))
    .map((r) => ({ ...r, imageId: imageOf.get(r.candidateId)!, otherImageId: r.otherCandidateId ? (imageOf.get(r.otherCandidateId) ?? null) : null }));
}

/** One row of a comparison: a selector or the judge, side by side with the others of the same run. */
export interface SelectorComparisonShape {
  run: Run;
  rows: SelectorEvaluation[];
}

/** Starts EVALUATION runs and reads what they measured. */
export class EvaluationService {
  /** Set by the composition root once the training module is there (an EVALUATION run can then name a TRAINING run). */
  trainingHeldOutImages: TrainingHeldOutImages | null = null;

  constructor(
    private readonly ds: DataSource,
    private readonly selectors: SelectorsService,
    private readonly images: ImagesService,
    private readonly preferences: PreferencesService,
    private readonly candidates: CandidatesService,
    private readonly runs: RunsService,
    private readonly defaultBatchSize: number,
  ) {}

  async findById(ctx: RequestContext, id: string): Promise<SelectorEvaluation | null> {
    return this.ds.getRepository(SelectorEvaluation).findOneBy({ id, projectId: ctx.projectId });
  }

  /** A page of evaluations for each selector, newest first, in one statement. */
  async pagesBySelector(ctx: RequestContext, selectorIds: readonly string[], page: PageArgs): Promise<SelectorEvaluation[]> {
    return childPages(this.ds.getRepository(SelectorEvaluation), { table: 'selector_evaluations', parentColumn: 'selector_model_id', projectId: ctx.projectId, parentIds: selectorIds, page });
  }

  async countsBySelector(ctx: RequestContext, selectorIds: readonly string[]): Promise<number[]> {
    return countChildren(this.ds, { table: 'selector_evaluations', parentColumn: 'selector_model_id', projectId: ctx.projectId, parentIds: selectorIds });
  }

  /** The rows of one evaluation run, best alignment first (undefined alignment last), the judge among them. */
  async ofRun(ctx: RequestContext, runId: string): Promise<SelectorEvaluation[]> {
    return this.ds
      .getRepository(SelectorEvaluation)
      .createQueryBuilder('e')
      .where('e.projectId = :p AND e.runId = :r', { p: ctx.projectId, r: runId })
      .orderBy('e.alignmentRateValue', 'DESC', 'NULLS LAST')
      .addOrderBy('e.subjectKey', 'ASC')
      .getMany();
  }

  /**
   * The comparison table of an EVALUATION run: every selector and the judge measured on the same
   * held-out pairs. Without a run id: the project's latest SUCCEEDED evaluation. Null when there is none.
   */
  async comparison(ctx: RequestContext, evaluationRunId: string | null | undefined): Promise<SelectorComparisonShape | null> {
    let run: Run | null;
    if (evaluationRunId) {
      run = await this.runs.findById(ctx, expectGlobalId(evaluationRunId, 'Run', 'evaluationRunId'));
      if (run && run.kind !== RunKind.EVALUATION) run = null;
    } else {
      const latest = await this.runs.list(ctx, { first: 1 } as PageArgs, { kinds: [RunKind.EVALUATION], statuses: [RunStatus.SUCCEEDED] });
      run = latest.edges[0]?.node ?? null;
    }
    if (!run) return null;
    return { run, rows: await this.ofRun(ctx, run.id) };
  }

  /**
   * Freezes what the run measures (selectors, judge, held-out images, the judgements recorded so
   * far) and queues it; one item per selector plus one for the judge.
   */
  async startRun(ctx: RequestContext, input: StartEvaluationRunInput): Promise<Run> {
    ctx.assertRole(Role.CURATOR);
    const invalid = (message: string, field: string) => new UserErrorsException([userError(UserErrorCode.INVALID, message, ['input', field])]);
    if (input.trainingRunId && input.imageIds) throw invalid('Give trainingRunId or imageIds, not both', 'imageIds');
    const selectors = await this.resolveSelectors(ctx, input);
    if (!selectors.length && !input.includeJudge) throw invalid('Nothing to evaluate: give selectorIds or includeJudge', 'selectorIds');

    let imageIds: string[] | null = null;
    let trainingRunId: string | null = null;
    if (input.trainingRunId) {
      await this.runs.assertRunsOfKind(ctx, [input.trainingRunId], RunKind.TRAINING, ['input', 'trainingRunId']);
      trainingRunId = expectGlobalId(input.trainingRunId, 'Run', 'input.trainingRunId');
      if (!this.trainingHeldOutImages) throw invalid('This server cannot read training runs', 'trainingRunId');
      imageIds = [...new Set(await this.trainingHeldOutImages(ctx, trainingRunId))].sort();
      if (!imageIds.length) throw invalid('The training run held out no images (has it finished?)', 'trainingRunId');
    } else if (input.imageIds) {
      imageIds = [...new Set(input.imageIds.map((id) => expectGlobalId(id, 'Image', 'input.imageIds')))].sort();
      const found = await this.images.findByIds(ctx, imageIds);
      if (found.length !== imageIds.length) throw new UserErrorsException([userError(UserErrorCode.NOT_FOUND, `${imageIds.length - found.length} of the images were not found`, ['input', 'imageIds'])]);
    }

    const preferencesBefore = new Date();
    const records = await judgementRecords(ctx, this.preferences, this.candidates, preferencesBefore);
    const pairs = heldOutClinicianPairs(records, imageIds ? new Set(imageIds) : null);
    if (!pairs.length) throw invalid('There are no clinician pairs on the held-out images to evaluate on', input.trainingRunId ? 'trainingRunId' : input.imageIds ? 'imageIds' : 'selectorIds');

    const params: EvaluationParams = {
      selectorModelIds: selectors.map((s) => s.id),
      selectors: selectors.map((s) => ({ id: s.id, name: s.name, version: s.version })),
      judge: input.includeJudge ? { model: input.judgeModel?.trim() || null } : null,
      trainingRunId,
      imageIds,
      preferencesBefore: preferencesBefore.toISOString(),
      bootstrapSamples: input.bootstrapSamples,
      seed: input.seed,
      batchSize: this.defaultBatchSize,
    };
    const total = selectors.length + (input.includeJudge ? 1 : 0);
    return this.runs.create(ctx, { kind: RunKind.EVALUATION, params, targets: this.selectors.selectIds(ctx, params.selectorModelIds), countItems: async () => total });
  }

  private async resolveSelectors(ctx: RequestContext, input: StartEvaluationRunInput): Promise<SelectorModel[]> {
    if (input.selectorIds == null) {
      const active = await this.selectors.findActive(ctx);
      if (!active && !input.includeJudge) throw new UserErrorsException([userError(UserErrorCode.NOT_FOUND, 'The project has no active selector model; give selectorIds', ['input', 'selectorIds'])]);
      return active ? [active] : [];
    }
    const ids = [...new Set(input.selectorIds.map((id) => expectGlobalId(id, 'SelectorModel', 'input.selectorIds')))];
    const found = await this.selectors.findByIds(ctx, ids);
    if (found.length !== ids.length) throw new UserErrorsException([userError(UserErrorCode.NOT_FOUND, `${ids.length - found.length} of the selector models were not found`, ['input', 'selectorIds'])]);
    const byId = new Map(found.map((s) => [s.id, s]));
    return ids.map((id) => byId.get(id)!);
  }
}
