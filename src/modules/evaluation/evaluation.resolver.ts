import DataLoader from 'dataloader';
import { Arg, Args, Authorized, Ctx, Field, FieldResolver, ID, Int, Mutation, ObjectType, Query, Resolver, Root } from 'type-graphql';
import { asPayload } from '../../platform/user-errors';
import { ConnectionType, connectionOf, PageArgs, toConnection } from '../../platform/pagination';
import { Role } from '../projects/role';
import type { GraphQLContext } from '../projects/graphql-context';
import { Run } from '../runs/run.entity';
import type { RunsService } from '../runs/runs.service';
import { StartRunPayload } from '../runs/runs.resolver';
import { SelectorModel } from '../selectors/selector-model.entity';
import { selectorModelByIdLoader } from '../selectors/selectors.loaders';
import type { SelectorsService } from '../selectors/selectors.service';
import { StartEvaluationRunInput } from './evaluation.inputs';
import { evaluationCountBySelectorLoader, evaluationPagesBySelectorLoader } from './evaluation.loaders';
import type { EvaluationService } from './evaluation.service';
import { SelectorEvaluation } from './selector-evaluation.entity';

@ObjectType()
export class SelectorEvaluationConnection extends ConnectionType(SelectorEvaluation, 'SelectorEvaluation') {}

@ObjectType({ description: 'One line of a comparison table (at most 51 lines: up to 50 selectors and the judge).' })
export class SelectorComparisonRow {
  @Field(() => Int, { description: '1 = highest alignment rate; rows with equal rates share a rank.' })
  rank: number;

  @Field(() => SelectorEvaluation)
  evaluation: SelectorEvaluation;
}

@ObjectType({ description: 'Selectors and the model judge side by side, measured by one EVALUATION run on the same held-out clinician pairs.' })
export class SelectorComparison {
  @Field(() => Run, { description: 'The EVALUATION run.' })
  run: Run;

  @Field(() => Int, { nullable: true, description: 'Held-out clinician pairs (known once the run has started).' })
  heldOutPairs: number | null;

  @Field(() => Int, { nullable: true, description: 'Images those pairs are about (the bootstrap resamples them).' })
  heldOutImages: number | null;

  @Field(() => [SelectorComparisonRow], { description: 'One row per selector and one for the judge, best alignment rate first.' })
  rows: SelectorComparisonRow[];
}

@Resolver(() => SelectorEvaluation)
export class EvaluationResolver {
  constructor(
    private readonly evaluation: EvaluationService,
    private readonly selectors: SelectorsService,
    private readonly runs: RunsService,
  ) {}

  @Authorized(Role.CURATOR)
  @Mutation(() => StartRunPayload, {
    description:
      'Measures selectors and the model judge against held-out clinician pairs: alignment rate, AUC, mean rank, MAP with bootstrap 95 % intervals. Results: selectorComparison(evaluationRunId:) and SelectorModel.evaluations.',
  })
  async startEvaluationRun(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: StartEvaluationRunInput): Promise<StartRunPayload> {
    return asPayload(async () => ({ run: await this.evaluation.startRun(ctx, input) }));
  }

  @Query(() => SelectorComparison, {
    nullable: true,
    description: "The comparison table of an EVALUATION run; without evaluationRunId, the project's latest succeeded one. Null when there is none (or the id is not an evaluation run).",
  })
  async selectorComparison(@Ctx() { ctx }: GraphQLContext, @Arg('evaluationRunId', () => ID, { nullable: true }) evaluationRunId?: string | null): Promise<SelectorComparison | null> {
    const found = await this.evaluation.comparison(ctx, evaluationRunId);
    if (!found) return null;
    const heldOut = (found.run.params?.heldOut ?? {}) as { pairs?: number; images?: number };
    return Object.assign(new SelectorComparison(), { run: found.run, rows: rankRows(found.rows), heldOutPairs: heldOut.pairs ?? null, heldOutImages: heldOut.images ?? null });
  }

  @FieldResolver(() => SelectorModel, { nullable: true, description: 'The selector measured (SELECTOR rows).' })
  async selectorModel(@Root() row: SelectorEvaluation, @Ctx() { ctx }: GraphQLContext): Promise<SelectorModel | null> {
    return row.selectorModelId ? selectorModelByIdLoader(ctx, this.selectors).load(row.selectorModelId) : null;
  }

  @FieldResolver(() => Run, { description: 'The EVALUATION run that measured it.' })
  async run(@Root() row: SelectorEvaluation, @Ctx() { ctx }: GraphQLContext): Promise<Run | null> {
    // Rows of one comparison share their run: one read per distinct run per request.
    const loader = ctx.loader('evaluations.runById', () => new DataLoader((ids: readonly string[]) => Promise.all(ids.map((id) => this.runs.findById(ctx, id)))));
    return loader.load(row.runId);
  }
}

@Resolver(() => SelectorModel)
export class SelectorEvaluationsResolver {
  constructor(private readonly evaluation: EvaluationService) {}

  @FieldResolver(() => SelectorEvaluationConnection, { description: 'What EVALUATION runs measured of this selector against held-out clinician pairs, newest first.' })
  async evaluations(@Root() model: SelectorModel, @Ctx() { ctx }: GraphQLContext, @Args() page: PageArgs): Promise<SelectorEvaluationConnection> {
    const rows = await evaluationPagesBySelectorLoader(ctx, this.evaluation, page).load(model.id);
    const count = () => evaluationCountBySelectorLoader(ctx, this.evaluation).load(model.id);
    return connectionOf(SelectorEvaluationConnection, toConnection(rows, page, (e) => ({ value: e.createdAt, id: e.id }), count));
  }
}

/** Competition ranking by alignment rate (1, 2, 2, 4); rows without one rank last. */
function rankRows(rows: SelectorEvaluation[]): SelectorComparisonRow[] {
  return rows.map((evaluation) => ({
    evaluation,
    rank: 1 + rows.filter((other) => (other.alignmentRateValue ?? -1) > (evaluation.alignmentRateValue ?? -1)).length,
  }));
}
