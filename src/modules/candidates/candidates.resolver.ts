import { Args, Ctx, FieldResolver, Int, ObjectType, Query, Resolver, Root } from 'type-graphql';
import type { AppServices } from '../../app/app-services';
import { ConnectionType, connectionOf, PageArgs, toConnection } from '../../platform/pagination';
import type { GraphQLContext } from '../projects/graphql-context';
import { Image } from '../images/image.entity';
import { imageByIdLoader } from '../images/images.loaders';
import { Candidate } from './candidate.entity';
import { CandidatesArgs } from './candidates.inputs';
import { candidateCountByImageLoader, candidatePagesByImageLoader } from './candidates.loaders';

@ObjectType()
export class CandidateConnection extends ConnectionType(Candidate, 'Candidate') {}

@Resolver(() => Candidate)
export class CandidatesResolver {
  constructor(private readonly services: AppServices) {}

  @Query(() => CandidateConnection, { description: 'Generated conversations, filtered and sorted by time or by score.' })
  async candidates(@Ctx() { ctx }: GraphQLContext, @Args() args: CandidatesArgs): Promise<CandidateConnection> {
    return connectionOf(CandidateConnection, await this.services.candidates.list(ctx, args, args.filter, args.orderBy));
  }

  @FieldResolver(() => Image)
  async image(@Root() candidate: Candidate, @Ctx() { ctx }: GraphQLContext): Promise<Image> {
    const image = await imageByIdLoader(ctx, this.services.images).load(candidate.imageId);
    if (!image) throw new Error(`candidate ${candidate.id} points to a missing image`);
    return image;
  }
}

/** The candidates of an image; lives here because images do not know candidates. */
@Resolver(() => Image)
export class ImageCandidatesResolver {
  constructor(private readonly services: AppServices) {}

  @FieldResolver(() => CandidateConnection)
  async candidates(@Root() image: Image, @Ctx() { ctx }: GraphQLContext, @Args() page: PageArgs): Promise<CandidateConnection> {
    const rows = await candidatePagesByImageLoader(ctx, this.services.candidates, page).load(image.id);
    const count = () => candidateCountByImageLoader(ctx, this.services.candidates).load(image.id);
    return connectionOf(CandidateConnection, toConnection(rows, page, (c) => ({ value: c.createdAt, id: c.id }), count));
  }

  @FieldResolver(() => Int)
  candidateCount(@Root() image: Image, @Ctx() { ctx }: GraphQLContext): Promise<number> {
    return candidateCountByImageLoader(ctx, this.services.candidates).load(image.id);
  }
}
