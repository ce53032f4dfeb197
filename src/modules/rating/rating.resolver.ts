import { Arg, Authorized, Ctx, Mutation, Resolver } from 'type-graphql';
import type { RatingService } from './rating.service';
import { asPayload } from '../../platform/user-errors';
import type { GraphQLContext } from '../projects/graphql-context';
import { Role } from '../projects/role';
import { StartRunPayload } from '../runs/runs.resolver';
import { StartRatingRunInput } from './rating.inputs';

@Resolver()
export class RatingResolver {
  constructor(private readonly ratingService: RatingService) {}

  @Authorized(Role.CURATOR)
  @Mutation(() => StartRunPayload, { description: 'GPT-4V as judge rates every answer 0-10 with a rationale; ratings are MODEL preferences. LLM_UNAVAILABLE when no model is configured.' })
  async startRatingRun(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: StartRatingRunInput): Promise<StartRunPayload> {
    return asPayload(async () => ({ run: await this.ratingService.startRun(ctx, input) }));
  }
}
