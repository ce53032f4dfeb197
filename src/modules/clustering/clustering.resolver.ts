import { Arg, Authorized, Ctx, Mutation, Query, Resolver } from 'type-graphql';
import type { ClusteringService } from './clustering.service';
import { asPayload } from '../../platform/user-errors';
import type { GraphQLContext } from '../projects/graphql-context';
import { Role } from '../projects/role';
import { StartRunPayload } from '../runs/runs.resolver';
import { ClusterSize, StartClusteringRunInput } from './clustering.inputs';

@Resolver()
export class ClusteringResolver {
  constructor(private readonly clusteringService: ClusteringService) {}

  @Authorized(Role.CURATOR)
  @Mutation(() => StartRunPayload, { description: 'k-means over caption + mentions embeddings joined with image features; assigns `Image.clusterId`. LLM_UNAVAILABLE when no embeddings model is configured.' })
  async startClusteringRun(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: StartClusteringRunInput): Promise<StartRunPayload> {
    return asPayload(async () => ({ run: await this.clusteringService.startRun(ctx, input) }));
  }

  @Query(() => [ClusterSize], { description: 'Images per diversity cluster, from the latest clustering of each image.' })
  async imageClusters(@Ctx() { ctx }: GraphQLContext): Promise<ClusterSize[]> {
    return this.clusteringService.clusterSizes(ctx);
  }
}
