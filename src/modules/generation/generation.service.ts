import crypto from 'node:crypto';
import { DataSource } from 'typeorm';
import { RequestContext } from '../projects/request-context';
import { Role } from '../projects/role';
import { LlmGateway } from '../../platform/llm-gateway';
import { UserErrorCode, userError, UserErrorsException } from '../../platform/user-errors';
import { imageSelectionParams, ImagesService } from '../images/images.service';
import { DemonstrationsService } from '../demonstrations/demonstrations.service';
import { CandidateForm, CandidateStatus } from '../candidates/candidate.entity';
import { CandidatesService } from '../candidates/candidates.service';
import { ReparseCounts, RunsService, StoredReplyReparser } from '../runs/runs.service';
import { Run, RunKind } from '../runs/run.entity';
import { PromptTemplate } from '../llm-tasks/prompt-template.entity';
import { GENERATION_SINGLE, GENERATION_TWO_ANSWERS, listTemplates } from '../llm-tasks/prompt-templates';
import { StartGenerationRunInput } from './generation.inputs';
import { GenerationParams, generationParamsSchema } from './generation-params';
import { parseConversationReply } from './reply-parser';
import { modelParametersFrom, runLimitsFrom } from '../llm-tasks/model-call-params';

/** Starts generation runs; the work itself is GenerationRun's, in a worker. */
export class GenerationService implements StoredReplyReparser {
  constructor(
    private readonly ds: DataSource,
    private readonly llm: LlmGateway,
    private readonly images: ImagesService,
    private readonly demonstrations: DemonstrationsService,
    private readonly candidates: CandidatesService,
    private readonly runs: RunsService,
  ) {}

  async startRun(ctx: RequestContext, input: StartGenerationRunInput): Promise<Run> {
    ctx.assertRole(Role.CURATOR);
    const client = this.llm.requireClient();
    const targets = await this.images.selectForRun(ctx, input.images, ['input', 'images']);
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
      selection: imageSelectionParams(input.images),
      demonstrationPool: pool.map((d) => d.id),
    };
    return this.runs.create(ctx, { kind: RunKind.GENERATION, params, targets, itemsPerTarget: input.samplesPerImage });
  }

  /** PARSE_FAILED candidates of an ended run whose stored reply the current parser reads become OK. */
  async reparseStoredReplies(ctx: RequestContext, run: Run): Promise<ReparseCounts> {
    ctx.assertRole(Role.CURATOR);
    const params = generationParamsSchema.parse(run.params);
    const failed = await this.candidates.parseFailedReplies(ctx, run.id);
    let parsed = 0;
    for (const candidate of failed) {
      const reply = parseConversationReply(candidate.rawOutput, { form: params.form, minRounds: params.minRounds });
      if (reply.kind !== 'ok') continue;
      const update = this.candidates.reparsedToOk(ctx, candidate.id, reply.rounds);
      parsed += await this.runs.recordReparsed(run.id, { ...update, from: CandidateStatus.PARSE_FAILED, to: CandidateStatus.OK });
    }
    return { examined: failed.length, parsed, stillFailing: failed.length - parsed };
  }

  templates(): Promise<PromptTemplate[]> {
    return listTemplates(this.ds);
  }
}
