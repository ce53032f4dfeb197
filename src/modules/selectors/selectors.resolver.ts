import { Arg, Args, Ctx, ObjectType, Query, Resolver } from 'type-graphql';
import type { AppServices } from '../../app-services';
import { ConnectionType, connectionOf, PageArgs } from '../../platform/pagination';
import type { GraphQLContext } from '../projects/graphql-context';
import { SelectorModel } from './selector-model.entity';

@ObjectType()
export class SelectorModelConnection extends ConnectionType(SelectorModel, 'SelectorModel') {}

@Resolver(() => SelectorModel)
export class SelectorsResolver {
  constructor(private readonly services: AppServices) {}

  @Query(() => SelectorModelConnection)
  async selectorModels(
    @Ctx() { ctx }: GraphQLContext,
    @Args() page: PageArgs,
    @Arg('activeOnly', () => Boolean, { nullable: true }) activeOnly?: boolean,
  ): Promise<SelectorModelConnection> {
    return connectionOf(SelectorModelConnection, await this.services.selectors.list(ctx, page, activeOnly));
  }
}
