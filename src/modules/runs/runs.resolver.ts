import { Arg, Args, ArgsType, Authorized, Ctx, Field, FieldResolver, Float, ID, InputType, Int, Mutation, ObjectType, Query, Resolver, Root, Subscription } from 'type-graphql';
import { IsOptional } from 'class-validator';
import type { ProjectsService } from '../projects/projects.service';
import type { RunsService } from './runs.service';
import { ConnectionType, connectionOf, PageArgs } from '../../platform/pagination';
import { expectGlobalId } from '../../platform/ids';
import { notFound } from '../../platform/errors';
import { asPayload, UserError } from '../../platform/user-errors';
import type { GraphQLContext } from '../projects/graphql-context';
import { Role } from '../projects/role';
import { User } from '../projects/user.entity';
import { userByIdLoader } from '../projects/projects.loaders';
import { Run, RunKind, RunStatus, RunStatusCount } from './run.entity';
import { RunFailure } from './run-failure.entity';
import { isTerminal } from './runs.service';

@ObjectType()
export class RunConnection extends ConnectionType(Run, 'Run') {}

@ObjectType()
export class RunFailureConnection extends ConnectionType(RunFailure, 'RunFailure') {}

@ArgsType()
class RunsArgs extends PageArgs {
  @Field(() => [RunKind], { nullable: true }) @IsOptional() kinds?: RunKind[] | null;
  @Field(() => [RunStatus], { nullable: true }) @IsOptional() statuses?: RunStatus[] | null;
}

@ObjectType({ description: 'A run that was started: follow it with `runUpdated` or by polling `node(id:)`.' })
export class StartRunPayload {
  @Field(() => Run, { nullable: true }) run?: Run | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@InputType()
export class CancelRunInput {
  @Field(() => ID) runId: string;
}

@ObjectType()
export class CancelRunPayload {
  @Field(() => Run, { nullable: true }) run?: Run | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@InputType()
export class ReparseRunInput {
  @Field(() => ID, { description: 'An ended generation or rating run.' }) runId: string;
}

@ObjectType({ description: 'What re-parsing found; counts are null when nothing was done (see userErrors).' })
export class ReparseRunPayload {
  @Field(() => Run, { nullable: true }) run?: Run | null;
  @Field(() => Int, { nullable: true, description: 'Stored replies of failed items that were parsed again.' }) examined?: number | null;
  @Field(() => Int, { nullable: true, description: 'Of those, the ones that became results (OK candidates, MODEL ratings).' }) parsed?: number | null;
  @Field(() => Int, { nullable: true, description: 'Of those, the ones the current parsers still cannot read.' }) stillFailing?: number | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

/**
 * The run's current state, then its state after every change until it ends; the final state is
 * always delivered. Each event re-reads the run (one read per event for all the subscribers of this
 * process) and resolves its fields with fresh loaders, scoped to the caller's project.
 */
async function* followRun(services: GraphQLContext['services'], context: GraphQLContext, runId: string): AsyncGenerator<Run> {
  const events = services.runEvents.subscribe(runId);
  try {
    let run = await services.runs.findById(context.ctx, runId);
    if (!run) throw notFound('Run');
    yield run;
    while (!isTerminal(run.status)) {
      const next = await events.next();
      if (next.done) return;
      context.ctx = context.ctx.fresh();
      const current = await services.runs.findAfterEvent(context.ctx, next.value);
      if (!current) return;
      run = current;
      yield run;
    }
  } finally {
    await events.return();
  }
}

@Resolver(() => Run)
export class RunsResolver {
  constructor(private readonly runsService: RunsService, private readonly projectsService: ProjectsService) {}

  @Query(() => RunConnection, { description: 'Long work of the project, newest first.' })
  async runs(@Ctx() { ctx }: GraphQLContext, @Args() args: RunsArgs): Promise<RunConnection> {
    return connectionOf(RunConnection, await this.runsService.list(ctx, args, args));
  }

  @Query(() => Run, { nullable: true, description: 'One run by its global id (what `node(id:)` with a `... on Run` fragment gives). NOT_FOUND when it does not exist or belongs to another project.' })
  async run(@Ctx() { ctx }: GraphQLContext, @Arg('id', () => ID) id: string): Promise<Run> {
    const run = await this.runsService.findById(ctx, expectGlobalId(id, 'Run', 'id'));
    if (!run) throw notFound('Run');
    return run;
  }

  @Authorized(Role.CURATOR)
  @Mutation(() => CancelRunPayload, { description: 'A queued run stops at once; a running one within a second, keeping what it finished.' })
  async cancelRun(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: CancelRunInput): Promise<CancelRunPayload> {
    return asPayload(async () => {
      const run = await this.runsService.requestCancel(ctx, expectGlobalId(input.runId, 'Run', 'runId'));
      if (!run) throw notFound('Run');
      return { run };
    });
  }

  @Authorized(Role.CURATOR)
  @Mutation(() => ReparseRunPayload, {
    description:
      'Applies the current parsers to the model replies an ended run kept for its failed items (PARSE_FAILED candidates, unparseable ratings); those that now parse become results and the counters move, once. No model call. CONFLICT while the run is queued or running.',
  })
  async reparseRun(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: ReparseRunInput): Promise<ReparseRunPayload> {
    return asPayload(async () => {
      const { run, counts } = await this.runsService.reparse(ctx, expectGlobalId(input.runId, 'Run', 'runId'));
      return { run, ...counts };
    });
  }

  @Subscription(() => Run, {
    description: "A run's state now and after every change (throttled to about 10 a second), ending with its final state.",
    subscribe: ({ args, context }) => followRun((context as GraphQLContext).services, context as GraphQLContext, expectGlobalId((args as { id: string }).id, 'Run')),
  })
  // A scalar @Arg, not an @ArgsType: type-graphql runs class-validator over an args object on every
  // resolve, which here means once per subscriber per event.
  runUpdated(@Root() run: Run, @Arg('id', () => ID) _id: string): Run {
    return run;
  }

  @FieldResolver(() => User, { nullable: true, description: 'Who started the run.' })
  async createdBy(@Root() run: Run, @Ctx() { ctx }: GraphQLContext): Promise<User | null> {
    return run.createdById ? userByIdLoader(ctx, this.projectsService).load(run.createdById) : null;
  }

  @FieldResolver(() => Int, { description: 'Items not processed yet: total - done - failed - skipped (0 once the run SUCCEEDED).' })
  queued(@Root() run: Run): number {
    return Math.max(0, run.total - run.done - run.failed - (run.skipped ?? 0));
  }

  @FieldResolver(() => [RunStatusCount], { description: 'Items by outcome, largest first; each outcome belongs to done, failed or skipped, so the counts add up to done + failed + skipped.' })
  countsByStatus(@Root() run: Run): RunStatusCount[] {
    return Object.entries(run.countsByStatus ?? {})
      .filter(([, count]) => Number(count) > 0)
      .map(([status, count]) => ({ status, count: Number(count) }))
      .sort((a, b) => b.count - a.count || a.status.localeCompare(b.status));
  }

  @FieldResolver(() => Float, { nullable: true, description: 'Items processed per second since the run started (to its end, once finished); null before it starts.' })
  itemsPerSecond(@Root() run: Run): number | null {
    return throughput(run);
  }

  @FieldResolver(() => Float, { nullable: true, description: 'Seconds left at the current throughput, while running; null otherwise.' })
  etaSeconds(@Root() run: Run): number | null {
    const rate = throughput(run);
    if (run.status !== RunStatus.RUNNING || !rate) return null;
    return Math.max(0, run.total - run.done - run.failed - (run.skipped ?? 0)) / rate;
  }

  @FieldResolver(() => RunFailureConnection, { description: 'Items the run gave up on, newest first (rating, clustering and scoring; generation keeps failed candidates).' })
  async failures(@Root() run: Run, @Ctx() { ctx }: GraphQLContext, @Args() page: PageArgs): Promise<RunFailureConnection> {
    return connectionOf(RunFailureConnection, await this.runsService.failures(ctx, run.id, page));
  }
}

function throughput(run: Run): number | null {
  if (!run.startedAt) return null;
  const seconds = ((run.finishedAt ?? new Date()).getTime() - run.startedAt.getTime()) / 1000;
  return seconds > 0 ? (run.done + run.failed) / seconds : null;
}
