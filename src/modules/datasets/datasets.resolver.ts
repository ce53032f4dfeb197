import { Arg, Args, Authorized, Ctx, Field, FieldResolver, Mutation, ObjectType, Query, Resolver, Root } from 'type-graphql';
import { asPayload, UserError } from '../../platform/user-errors';
import { Role } from '../projects/role';
import { SelectorModel } from '../selectors/selector-model.entity';
import { selectorModelByIdLoader } from '../selectors/selectors.loaders';
import { CreateDatasetInput } from './datasets.inputs';
import type { AppServices } from '../../app-services';
import { ConnectionType, connectionOf, PageArgs } from '../../platform/pagination';
import type { GraphQLContext } from '../projects/graphql-context';
import { Candidate } from '../candidates/candidate.entity';
import { candidateByIdLoader } from '../candidates/candidates.loaders';
import { Dataset } from './dataset.entity';
import { DatasetItem } from './dataset-item.entity';

@ObjectType()
export class DatasetConnection extends ConnectionType(Dataset, 'Dataset') {}

@ObjectType()
export class DatasetItemConnection extends ConnectionType(DatasetItem, 'DatasetItem') {}

@ObjectType()
export class CreateDatasetPayload {
  @Field(() => Dataset, { nullable: true }) dataset?: Dataset | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@Resolver(() => Dataset)
export class DatasetsResolver {
  constructor(private readonly services: AppServices) {}

  @Authorized(Role.CURATOR)
  @Mutation(() => CreateDatasetPayload, { description: 'Applies a selection rule and freezes the chosen candidates as a new version of the named dataset.' })
  async createDataset(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: CreateDatasetInput): Promise<CreateDatasetPayload> {
    return asPayload(async () => ({ dataset: await this.services.datasets.create(ctx, input) }));
  }

  @FieldResolver(() => SelectorModel, { nullable: true, description: 'The selector (and so its version) whose scores ranked the items.' })
  async selectorModel(@Root() dataset: Dataset, @Ctx() { ctx }: GraphQLContext): Promise<SelectorModel | null> {
    return dataset.selectorModelId ? selectorModelByIdLoader(ctx, this.services.selectors).load(dataset.selectorModelId) : null;
  }

  @Query(() => DatasetConnection)
  async datasets(@Ctx() { ctx }: GraphQLContext, @Args() page: PageArgs): Promise<DatasetConnection> {
    return connectionOf(DatasetConnection, await this.services.datasets.list(ctx, page));
  }

  @FieldResolver(() => DatasetItemConnection, { description: 'Items in rank order.' })
  async items(@Root() dataset: Dataset, @Ctx() { ctx }: GraphQLContext, @Args() page: PageArgs): Promise<DatasetItemConnection> {
    return connectionOf(DatasetItemConnection, await this.services.datasets.items(ctx, dataset.id, page));
  }
}

@Resolver(() => DatasetItem)
export class DatasetItemsResolver {
  constructor(private readonly services: AppServices) {}

  @FieldResolver(() => Candidate)
  async candidate(@Root() item: DatasetItem, @Ctx() { ctx }: GraphQLContext): Promise<Candidate | null> {
    return candidateByIdLoader(ctx, this.services.candidates).load(item.candidateId);
  }
}
