import { Arg, Args, Authorized, Ctx, Field, FieldResolver, Int, Mutation, ObjectType, Query, Resolver, Root } from 'type-graphql';
import type { CandidatesService } from '../candidates/candidates.service';
import type { PreferencesService } from './preferences.service';
import type { ProjectsService } from '../projects/projects.service';
import { ConnectionType, connectionOf, PAGE_ARGS_VALIDATED_ONCE, PageArgs, toConnection } from '../../platform/pagination';
import { asPayload, UserError } from '../../platform/user-errors';
import type { GraphQLContext } from '../projects/graphql-context';
import { Role } from '../projects/role';
import { User } from '../projects/user.entity';
import { userByIdLoader } from '../projects/projects.loaders';
import { Candidate } from '../candidates/candidate.entity';
import { candidateByIdLoader } from '../candidates/candidates.loaders';
import { Preference } from './preference.entity';
import { PreferencesArgs, RecordPreferenceInput } from './preferences.inputs';
import { preferenceCountByCandidateLoader, preferencePagesByCandidateLoader } from './preferences.loaders';

@ObjectType()
export class PreferenceConnection extends ConnectionType(Preference, 'Preference') {}

@ObjectType()
export class RecordPreferencePayload {
  @Field(() => Preference, { nullable: true }) preference?: Preference | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@Resolver(() => Preference)
export class PreferencesResolver {
  constructor(
    private readonly preferencesService: PreferencesService,
    private readonly candidatesService: CandidatesService,
    private readonly projectsService: ProjectsService,
  ) {}

  @Query(() => PreferenceConnection, { description: 'Clinician and model judgements, newest first.' })
  async preferences(@Ctx() { ctx }: GraphQLContext, @Args() args: PreferencesArgs): Promise<PreferenceConnection> {
    return connectionOf(PreferenceConnection, await this.preferencesService.list(ctx, args, args.filter));
  }

  @FieldResolver(() => Candidate)
  async candidate(@Root() preference: Preference, @Ctx() { ctx }: GraphQLContext): Promise<Candidate | null> {
    return candidateByIdLoader(ctx, this.candidatesService).load(preference.candidateId);
  }

  @FieldResolver(() => Candidate, { nullable: true, description: 'Candidate B of a pairwise judgement between two candidates.' })
  async otherCandidate(@Root() preference: Preference, @Ctx() { ctx }: GraphQLContext): Promise<Candidate | null> {
    return preference.otherCandidateId ? candidateByIdLoader(ctx, this.candidatesService).load(preference.otherCandidateId) : null;
  }

  @FieldResolver(() => User, { nullable: true, description: 'The clinician, for clinician preferences.' })
  async annotator(@Root() preference: Preference, @Ctx() { ctx }: GraphQLContext): Promise<User | null> {
    return preference.annotatorId ? userByIdLoader(ctx, this.projectsService).load(preference.annotatorId) : null;
  }

  @Authorized(Role.CLINICIAN)
  @Mutation(() => RecordPreferencePayload, { description: 'Records a clinician preference: pairwise, rating, or accept/reject of an answer.' })
  async recordPreference(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: RecordPreferenceInput): Promise<RecordPreferencePayload> {
    return asPayload(async () => ({ preference: await this.preferencesService.recordClinicianPreference(ctx, input) }));
  }
}

@Resolver(() => Candidate)
export class CandidatePreferencesResolver {
  constructor(private readonly preferencesService: PreferencesService) {}

  @FieldResolver(() => PreferenceConnection)
  async preferences(@Root() candidate: Candidate, @Ctx() { ctx }: GraphQLContext, @Args(PAGE_ARGS_VALIDATED_ONCE) page: PageArgs): Promise<PreferenceConnection> {
    const rows = await preferencePagesByCandidateLoader(ctx, this.preferencesService, page).load(candidate.id);
    const count = () => preferenceCountByCandidateLoader(ctx, this.preferencesService).load(candidate.id);
    return connectionOf(PreferenceConnection, toConnection(rows, page, (p) => ({ value: p.createdAt, id: p.id }), count));
  }

  @FieldResolver(() => Int)
  preferenceCount(@Root() candidate: Candidate, @Ctx() { ctx }: GraphQLContext): Promise<number> {
    return preferenceCountByCandidateLoader(ctx, this.preferencesService).load(candidate.id);
  }
}
