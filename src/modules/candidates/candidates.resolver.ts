import { Args, Ctx, FieldResolver, Int, ObjectType, Query, Resolver, Root } from 'type-graphql';
import type { CandidatesService } from './candidates.service';
import type { ImagesService } from '../images/images.service';
import { ConnectionType, connectionOf, PAGE_ARGS_VALIDATED_ONCE, PageArgs, toConnection } from '../../platform/pagination';
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
  constructor(private readonly candidatesService: CandidatesService, private readonly imagesService: ImagesService) {}

  @Query(() => CandidateConnection, { description: 'Generated conversations, filtered and sorted by time or by score.' })
  async candidates(@Ctx() { ctx }: GraphQLContext, @Args() args: CandidatesArgs): Promise<CandidateConnection> {
    return connectionOf(CandidateConnection, await this.candidatesService.list(ctx, args, args.filter, args.orderBy));
  }

  @FieldResolver(() => Image)
  async image(@Root() candidate: Candidate, @Ctx() { ctx }: GraphQLContext): Promise<Image> {
    const image = await imageByIdLoader(ctx, this.imagesService).load(candidate.imageId);
    if (!image) throw new Error(`candidate ${candidate.id} points to a missing image`);
    return image;
  }
}

/** The candidates of an image; lives here because images do not know candidates. */
@Resolver(() => Image)
export class ImageCandidatesResolver {
  constructor(private readonly candidatesService: CandidatesService) {}

  @FieldResolver(() => CandidateConnection)
  async candidates(@Root() image: Image, @Ctx() { ctx }: GraphQLContext, @Args(PAGE_ARGS_VALIDATED_ONCE) page: PageArgs): Promise<CandidateConnection> {
    const rows = await candidatePagesByImageLoader(ctx, this.candidatesService, page).load(image.id);
    const count = () => candidateCountByImageLoader(ctx, this.candidatesService).load(image.id);
    return connectionOf(CandidateConnection, toConnection(rows, page, (c) => ({ value: c.createdAt, id: c.id }), count));
  }

  @FieldResolver(() => Int)
  candidateCount(@Root() image: Image, @Ctx() { ctx }: GraphQLContext): Promise<number> {
    return candidateCountByImageLoader(ctx, this.candidatesService).load(image.id);
  }
}
