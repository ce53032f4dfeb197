import crypto from 'node:crypto';
import { z } from 'zod';
import { RequestContext } from '../projects/request-context';
import { Role } from '../projects/role';
import { LlmGateway } from '../../platform/llm-gateway';
import { Run, RunKind } from '../runs/run.entity';
import { RunsService } from '../runs/runs.service';
import { imageSelectionParams, ImagesService } from '../images/images.service';
import { runLimitsFrom, runLimitsSchema } from '../llm-tasks/model-call-params';
import { ClusterSize, StartClusteringRunInput } from './clustering.inputs';

export const clusteringParamsSchema = z.object({
  k: z.number().int().min(1),
  seed: z.number().int(),
  textWeight: z.number(),
  imageWeight: z.number(),
  embeddingModel: z.string(),
  limits: runLimitsSchema,
  selection: z.record(z.string(), z.unknown()),
});
export type ClusteringParams = z.infer<typeof clusteringParamsSchema>;

/** Starts clustering runs and reads cluster sizes. */
export class ClusteringService {
  constructor(
    private readonly llm: LlmGateway,
    private readonly images: ImagesService,
    private readonly runs: RunsService,
  ) {}

  async startRun(ctx: RequestContext, input: StartClusteringRunInput): Promise<Run> {
    ctx.assertRole(Role.CURATOR);
    const client = this.llm.requireClient();
    const selection = input.images ?? { filter: {} };
    const targets = await this.images.selectForRun(ctx, selection, ['input', 'images']);
    const params: ClusteringParams = {
      k: input.k,
      seed: input.seed ?? crypto.randomInt(0, 2 ** 31 - 1),
      textWeight: input.textWeight,
      imageWeight: input.imageWeight,
      embeddingModel: client.embeddingModel,
      limits: runLimitsFrom(input.limits, 4),
      selection: imageSelectionParams(selection),
    };
    return this.runs.create(ctx, { kind: RunKind.CLUSTERING, params, targets });
  }

  clusterSizes(ctx: RequestContext): Promise<ClusterSize[]> {
    return this.images.clusterSizes(ctx);
  }
}
