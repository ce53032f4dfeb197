import { Arg, Args, Authorized, Ctx, FieldResolver, Float, ID, Mutation, ObjectType, Resolver, Root } from 'type-graphql';
import { asPayload } from '../../platform/user-errors';
import { Role } from '../projects/role';
import { StartRunPayload } from '../runs/runs.resolver';
import { StartScoringRunInput } from './scoring.inputs';
import type { CandidatesService } from '../candidates/candidates.service';
import type { ScoringService } from './scoring.service';
import type { SelectorsService } from '../selectors/selectors.service';
import { expectGlobalId } from '../../platform/ids';
import { ConnectionType, connectionOf, PAGE_ARGS_VALIDATED_ONCE, PageArgs, toConnection } from '../../platform/pagination';
import type { GraphQLContext } from '../projects/graphql-context';
import { Candidate } from '../candidates/candidate.entity';
import { candidateByIdLoader } from '../candidates/candidates.loaders';
import { SelectorModel } from '../selectors/selector-model.entity';
import { selectorModelByIdLoader } from '../selectors/selectors.loaders';
import { Score } from './score.entity';
import { scoreBySelectorLoader, scoreCountByCandidateLoader, scorePagesByCandidateLoader } from './scoring.loaders';

@ObjectType()
export class ScoreConnection extends ConnectionType(Score, 'Score') {}

@Resolver(() => Score)
export class ScoresResolver {
  constructor(
    private readonly scoringService: ScoringService,
    private readonly selectorsService: SelectorsService,
    private readonly candidatesService: CandidatesService,
  ) {}

  @Authorized(Role.CURATOR)
  @Mutation(() => StartRunPayload, {
    description: 'Scores candidates with a selector model on ONNX Runtime, in batches; exactly one score per (candidate, selector model). Follow it with runUpdated or node(id:).',
  })
  async startScoringRun(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: StartScoringRunInput): Promise<StartRunPayload> {
    return asPayload(async () => ({ run: await this.scoringService.startRun(ctx, input) }));
  }

  @FieldResolver(() => SelectorModel)
  async selectorModel(@Root() score: Score, @Ctx() { ctx }: GraphQLContext): Promise<SelectorModel | null> {
    return selectorModelByIdLoader(ctx, this.selectorsService).load(score.selectorModelId);
  }

  @FieldResolver(() => Candidate)
  async candidate(@Root() score: Score, @Ctx() { ctx }: GraphQLContext): Promise<Candidate | null> {
    return candidateByIdLoader(ctx, this.candidatesService).load(score.candidateId);
  }
}

@Resolver(() => Candidate)
export class CandidateScoresResolver {
  constructor(private readonly scoringService: ScoringService) {}

  @FieldResolver(() => ScoreConnection, { description: 'Scores of this candidate under every selector model.' })
  async scores(@Root() candidate: Candidate, @Ctx() { ctx }: GraphQLContext, @Args(PAGE_ARGS_VALIDATED_ONCE) page: PageArgs): Promise<ScoreConnection> {
    const rows = await scorePagesByCandidateLoader(ctx, this.scoringService, page).load(candidate.id);
    const count = () => scoreCountByCandidateLoader(ctx, this.scoringService).load(candidate.id);
    return connectionOf(ScoreConnection, toConnection(rows, page, (s) => ({ value: s.createdAt, id: s.id }), count));
  }

  @FieldResolver(() => Float, { nullable: true, description: 'The score under one selector model, null if not scored.' })
  async score(@Root() candidate: Candidate, @Ctx() { ctx }: GraphQLContext, @Arg('selectorModelId', () => ID) selectorModelId: string): Promise<number | null> {
    const id = expectGlobalId(selectorModelId, 'SelectorModel', 'selectorModelId');
    const score = await scoreBySelectorLoader(ctx, this.scoringService, id).load(candidate.id);
    return score?.value ?? null;
  }
}
