import { Args, ArgsType, Ctx, Field, ObjectType, Query, Resolver } from 'type-graphql';
import { IsOptional } from 'class-validator';
import type { AppServices } from '../../app-services';
import { ConnectionType, connectionOf, PageArgs } from '../../platform/pagination';
import type { GraphQLContext } from '../projects/graphql-context';
import { Run, RunKind, RunStatus } from './run.entity';

@ObjectType()
export class RunConnection extends ConnectionType(Run, 'Run') {}

@ArgsType()
class RunsArgs extends PageArgs {
  @Field(() => [RunKind], { nullable: true }) @IsOptional() kinds?: RunKind[] | null;
  @Field(() => [RunStatus], { nullable: true }) @IsOptional() statuses?: RunStatus[] | null;
}

@Resolver(() => Run)
export class RunsResolver {
  constructor(private readonly services: AppServices) {}

  @Query(() => RunConnection, { description: 'Long work of the project, newest first.' })
  async runs(@Ctx() { ctx }: GraphQLContext, @Args() args: RunsArgs): Promise<RunConnection> {
    return connectionOf(RunConnection, await this.services.runs.list(ctx, args, args));
  }
}
