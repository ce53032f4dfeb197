import crypto from 'node:crypto';
import { DataSource } from 'typeorm';
import { RequestContext } from '../projects/request-context';
import { Role } from '../projects/role';
import { expectGlobalId } from '../../platform/ids';
import { LlmGateway } from '../../platform/llm-gateway';
import { UserErrorCode, userError, UserErrorsException } from '../../platform/user-errors';
import { ImagesService } from '../images/images.service';
import { DemonstrationsService } from '../demonstrations/demonstrations.service';
import { CandidateForm } from '../candidates/candidate.entity';
import { ReparseCounts, RunsService, StoredReplyReparser } from '../runs/runs.service';
import { Run, RunKind } from '../runs/run.entity';
import { PromptTemplate } from './prompt-template.entity';
import { GENERATION_SINGLE, GENERATION_TWO_ANSWERS, listTemplates } from './prompt-templates';
import { ImageSelectionInput, StartGenerationRunInput } from './generation.inputs';
import { GenerationParams, generationParamsSchema, modelParametersFrom, runLimitsFrom } from './generation-params';
import { parseConversationReply } from './reply-parser';

/** A PARSE_FAILED candidate whose stored reply now parses becomes OK in place, only while still PARSE_FAILED. */
const CANDIDATE_TO_OK = `moved AS (
    UPDATE candidates SET status = 'OK', rounds = $2::jsonb, failure_reason = NULL, updated_at = now()
    WHERE id = $1 AND status = 'PARSE_FAILED' RETURNING 1)`;

/** Starts generation runs; the work itself is GenerationJob's, in a worker. */
export class GenerationService implements StoredReplyReparser {
  constructor(
    private readonly ds: DataSource,
    private readonly llm: LlmGateway,
    private readonly images: ImagesService,
    private readonly demonstrations: DemonstrationsService,
    private readonly runs: RunsService,
  ) {}

  async startRun(ctx: RequestContext, input: StartGenerationRunInput): Promise<Run> {
    ctx.assertRole(Role.CURATOR);
    const client = this.llm.requireClient();
    const targets = await this.selectImages(ctx, input.images, ['input', 'images']);
    const pool = input.demonstrationsPerPrompt > 0 ? await this.demonstrations.activePool(ctx.projectId) : [];
    if (input.demonstrationsPerPrompt > 0 && !pool.length) {
      throw new UserErrorsException([
        userError(UserErrorCode.NOT_FOUND, 'The project has no active demonstrations; import some or set demonstrationsPerPrompt to 0', ['input', 'demonstrationsPerPrompt']),
      ]);
    }
    const template = input.form === CandidateForm.TWO_ANSWERS ? GENERATION_TWO_ANSWERS : GENERATION_SINGLE;
    const params: GenerationParams = {
      samplesPerImage: input.samplesPerImage,
      form: input.form,
      minRounds: input.minRounds,
      demonstrationsPerPrompt: input.demonstrationsPerPrompt,
      demonstrationStrategy: input.demonstrationStrategy,
      seed: input.seed ?? crypto.randomInt(0, 2 ** 31 - 1),
      model: client.visionModel,
      promptTemplateVersion: template.version,
      modelParameters: modelParametersFrom(input.model, { temperature: 0.7, maxTokens: 2000 }),
      limits: runLimitsFrom(input.limits, 8),
      selection: selectionParams(input.images),
      demonstrationPool: pool.map((d) => d.id),
    };
    return this.runs.create(ctx, { kind: RunKind.GENERATION, params, targets, itemsPerTarget: input.samplesPerImage });
  }

  /** Ids or a filter, scoped to the project; an empty selection is an input error, not an empty run. */
  async selectImages(ctx: RequestContext, selection: ImageSelectionInput, field: string[]) {
    if (selection.imageIds && selection.filter) throw new UserErrorsException([userError(UserErrorCode.INVALID, 'Give imageIds or filter, not both', field)]);
    const ids = selection.imageIds ? [...new Set(selection.imageIds.map((id) => expectGlobalId(id, 'Image', [...field, 'imageIds'].join('.'))))] : null;
    const query = this.images.selectIds(ctx, selection.filter, ids);
    const count = await query.getCount();
    if (ids && count !== ids.length) throw new UserErrorsException([userError(UserErrorCode.NOT_FOUND, `${ids.length - count} of the images were not found`, [...field, 'imageIds'])]);
    if (!count) throw new UserErrorsException([userError(UserErrorCode.INVALID, 'The selection matches no image', field)]);
    return query;
  }

  /** PARSE_FAILED candidates of an ended run whose stored reply the current parser reads become OK. */
  async reparseStoredReplies(ctx: RequestContext, run: Run): Promise<ReparseCounts> {
    ctx.assertRole(Role.CURATOR);
    const params = generationParamsSchema.parse(run.params);
    const failed: { id: string; raw_output: string }[] = await this.ds.query(
      `SELECT id, raw_output FROM candidates WHERE project_id = $1 AND run_id = $2 AND status = 'PARSE_FAILED' AND raw_output IS NOT NULL ORDER BY id`,
      [ctx.projectId, run.id],
    );
    let parsed = 0;
    for (const candidate of failed) {
      const reply = parseConversationReply(candidate.raw_output, { form: params.form, minRounds: params.minRounds });
      if (reply.kind !== 'ok') continue;
      parsed += await this.runs.recordReparsed(run.id, { ctes: CANDIDATE_TO_OK, params: [candidate.id, JSON.stringify(reply.rounds)] });
    }
    return { examined: failed.length, parsed, stillFailing: failed.length - parsed };
  }

  templates(): Promise<PromptTemplate[]> {
    return listTemplates(this.ds);
  }
}

/** How a run records which images it was asked for. */
export function selectionParams(selection: ImageSelectionInput): Record<string, unknown> {
  if (selection.imageIds) return { imageIds: selection.imageIds };
  return { filter: { ...(selection.filter ?? {}) } };
}
