import { Args, ArgsType, Ctx, Field, FieldResolver, ObjectType, Query, Resolver, Root } from 'type-graphql';
import { IsOptional } from 'class-validator';
import type { AppServices } from '../../app-services';
import { ConnectionType, connectionOf, PageArgs } from '../../platform/pagination';
import type { GraphQLContext } from '../projects/graphql-context';
import { User } from '../projects/user.entity';
import { userByIdLoader } from '../projects/projects.loaders';
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

  @FieldResolver(() => User, { nullable: true, description: 'Who started the run.' })
  async createdBy(@Root() run: Run, @Ctx() { ctx }: GraphQLContext): Promise<User | null> {
    return run.createdById ? userByIdLoader(ctx, this.services.projects).load(run.createdById) : null;
  }
}
