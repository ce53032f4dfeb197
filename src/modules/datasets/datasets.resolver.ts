import { Args, Ctx, FieldResolver, ObjectType, Query, Resolver, Root } from 'type-graphql';
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

@Resolver(() => Dataset)
export class DatasetsResolver {
  constructor(private readonly services: AppServices) {}

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
