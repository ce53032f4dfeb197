import { Arg, Args, ArgsType, Authorized, Ctx, Field, FieldResolver, ID, Int, Mutation, ObjectType, Query, Resolver, Root, Subscription } from 'type-graphql';
import { GraphQLDateTime } from 'graphql-scalars';
import type { CandidatesService } from '../candidates/candidates.service';
import type { ProjectsService } from '../projects/projects.service';
import type { DemonstrationsService } from '../demonstrations/demonstrations.service';
import { ConnectionType, connectionOf, decodeCursor, PageArgs, toConnection } from '../../platform/pagination';
import { expectGlobalId, toGlobalId } from '../../platform/ids';
import { notFound } from '../../platform/errors';
import { asPayload, UserError } from '../../platform/user-errors';
import type { GraphQLContext } from '../projects/graphql-context';
import { Role } from '../projects/role';
import { User } from '../projects/user.entity';
import { userByIdLoader } from '../projects/projects.loaders';
import { Candidate } from '../candidates/candidate.entity';
import { candidateByIdLoader } from '../candidates/candidates.loaders';
import { Demonstration } from '../demonstrations/demonstration.entity';
import { demonstrationByIdLoader } from '../demonstrations/demonstrations.loaders';
import { AnnotationCampaign } from './annotation-campaign.entity';
import { AnnotationItem, AnnotationItemStatus } from './annotation-item.entity';
import { AnnotationPromotion } from './annotation-promotion.entity';
import { AnnotationSubmission } from './annotation-submission.entity';
import {
  AnnotationItemsArgs,
  AnnotationSubmissionsArgs,
  CreateAnnotationCampaignInput,
  NextAnnotationTaskInput,
  PromoteToDemonstrationInput,
  SkipAnnotationTaskInput,
  SubmitAnnotationInput,
} from './annotation.inputs';
import type { AnnotationService } from './annotation.service';
import {
  campaignByIdLoader,
  itemByIdLoader,
  itemCountsLoader,
  itemStatsLoader,
  progressLoader,
  promotionByDemonstrationLoader,
    submissionsByItemLoader,
} from './annotation.loaders';

@ObjectType()
export class AnnotationCampaignConnection extends ConnectionType(AnnotationCampaign, 'AnnotationCampaign') {}

@ObjectType()
export class AnnotationItemConnection extends ConnectionType(AnnotationItem, 'AnnotationItem') {}

@ObjectType()
export class AnnotationSubmissionConnection extends ConnectionType(AnnotationSubmission, 'AnnotationSubmission') {}

@ObjectType({ description: 'Items of a campaign per status.' })
export class AnnotationItemCounts {
  @Field(() => Int) pending: number;
  @Field(() => Int) inProgress: number;
  @Field(() => Int) completed: number;
  @Field(() => Int) total: number;
}

@ObjectType({ description: "One clinician's work on a campaign." })
export class AnnotatorProgress {
  annotatorId: string;
  @Field(() => Int, { description: 'Items submitted (edits count once).' }) submitted: number;
  @Field(() => Int) skipped: number;
  @Field(() => Int, { description: 'Items leased to them now (unexpired).' }) inProgress: number;
}

@ObjectType({ description: 'An item leased to the calling clinician until leaseExpiresAt.' })
export class AnnotationTask {
  @Field(() => AnnotationItem) item: AnnotationItem;
  @Field(() => AnnotationCampaign) campaign: AnnotationCampaign;
  @Field(() => GraphQLDateTime) leaseExpiresAt: Date;
}

@ObjectType()
export class CreateAnnotationCampaignPayload {
  @Field(() => AnnotationCampaign, { nullable: true }) campaign?: AnnotationCampaign | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@ObjectType()
export class NextAnnotationTaskPayload {
  @Field(() => AnnotationTask, { nullable: true, description: 'Null (with no userErrors) when nothing is left for you.' }) task?: AnnotationTask | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@ObjectType()
export class SubmitAnnotationPayload {
  @Field(() => AnnotationSubmission, { nullable: true }) submission?: AnnotationSubmission | null;
  @Field(() => AnnotationItem, { nullable: true }) item?: AnnotationItem | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@ObjectType()
export class SkipAnnotationTaskPayload {
  @Field(() => AnnotationItem, { nullable: true }) item?: AnnotationItem | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@ObjectType()
export class PromoteToDemonstrationPayload {
  @Field(() => Demonstration, { nullable: true }) demonstration?: Demonstration | null;
  @Field(() => AnnotationPromotion, { nullable: true }) promotion?: AnnotationPromotion | null;
  @Field(() => [UserError]) userErrors: UserError[];
}

@ArgsType()
class CampaignIdArgs {
  @Field(() => ID) campaignId: string;
}


/**
 * The campaign now and after every change (a lease, a submission, a skip, a promotion) until the
 * subscriber leaves; each event re-reads it with fresh loaders, scoped to the caller's project.
 */
async function* followCampaign(context: GraphQLContext, campaignId: string): AsyncGenerator<AnnotationCampaign> {
  const annotations = context.services.annotations;
  const events = await annotations.events.subscribe(campaignId);
  try {
    const campaign = await annotations.findCampaign(context.ctx, campaignId);
    if (!campaign) throw notFound('Campaign');
    yield campaign;
    for (;;) {
      const next = await events.next();
      if (next.done) return;
      context.ctx = context.ctx.fresh();
      const current = await annotations.findCampaign(context.ctx, campaignId);
      if (!current) return;
      yield current;
    }
  } finally {
    await events.return();
  }
}

/** Blind campaigns hide other clinicians' submissions from clinicians; curators and viewers see all. */
const seesOnlyOwn = (context: GraphQLContext, campaign: AnnotationCampaign) => campaign.blind && context.ctx.role === Role.CLINICIAN;

@Resolver(() => AnnotationCampaign)
export class AnnotationCampaignsResolver {
  constructor(
    private readonly annotations: AnnotationService,
    private readonly projects: ProjectsService,
  ) {}

  @Query(() => AnnotationCampaignConnection, { description: 'Clinician annotation campaigns, newest first.' })
  async annotationCampaigns(@Ctx() { ctx }: GraphQLContext, @Args() page: PageArgs): Promise<AnnotationCampaignConnection> {
    return connectionOf(AnnotationCampaignConnection, await this.annotations.listCampaigns(ctx, page));
  }

  @Authorized(Role.CURATOR)
  @Mutation(() => CreateAnnotationCampaignPayload, { description: 'Creates a campaign with its items frozen from a candidate filter, a generation run or a dataset.' })
  async createAnnotationCampaign(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: CreateAnnotationCampaignInput): Promise<CreateAnnotationCampaignPayload> {
    return asPayload(async () => ({ campaign: await this.annotations.createCampaign(ctx, input) }));
  }

  @Authorized(Role.CLINICIAN)
  @Mutation(() => NextAnnotationTaskPayload, {
    description:
      'Leases the next item to you (or returns the unexpired lease you hold): never an item you submitted or skipped, never more than the overlap at once. Task null when nothing is left for you.',
  })
  async nextAnnotationTask(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: NextAnnotationTaskInput): Promise<NextAnnotationTaskPayload> {
    return asPayload(async () => ({ task: await this.annotations.nextTask(ctx, expectGlobalId(input.campaignId, 'AnnotationCampaign', 'input.campaignId')) }));
  }

  @Authorized(Role.CLINICIAN)
  @Mutation(() => SubmitAnnotationPayload, { description: 'Submits your judgement of a leased item, or a new version of your earlier one (history kept; the latest counts).' })
  async submitAnnotation(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: SubmitAnnotationInput): Promise<SubmitAnnotationPayload> {
    return asPayload(() => this.annotations.submit(ctx, input));
  }

  @Authorized(Role.CLINICIAN)
  @Mutation(() => SkipAnnotationTaskPayload, { description: 'Gives a leased item back; it is not offered to you again.' })
  async skipAnnotationTask(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: SkipAnnotationTaskInput): Promise<SkipAnnotationTaskPayload> {
    return asPayload(async () => ({ item: await this.annotations.skip(ctx, input.itemId) }));
  }

  @Authorized(Role.CURATOR)
  @Mutation(() => PromoteToDemonstrationPayload, { description: 'Makes the conversation clinicians accepted in an item an active demonstration, with provenance back to the campaign and their judgements.' })
  async promoteToDemonstration(@Ctx() { ctx }: GraphQLContext, @Arg('input') input: PromoteToDemonstrationInput): Promise<PromoteToDemonstrationPayload> {
    return asPayload(() => this.annotations.promote(ctx, input.itemId));
  }

  @Subscription(() => AnnotationCampaign, {
    description: 'A campaign now and after every lease, submission, skip or promotion in it.',
    subscribe: ({ args, context }) => followCampaign(context as GraphQLContext, expectGlobalId((args as CampaignIdArgs).campaignId, 'AnnotationCampaign', 'campaignId')),
  })
  annotationCampaignUpdated(@Root() campaign: AnnotationCampaign, @Args() _args: CampaignIdArgs): AnnotationCampaign {
    return campaign;
  }

  @FieldResolver(() => AnnotationItemCounts)
  itemCounts(@Root() campaign: AnnotationCampaign, @Ctx() { ctx }: GraphQLContext): Promise<AnnotationItemCounts> {
    return itemCountsLoader(ctx, this.annotations).load(campaign.id);
  }

  @FieldResolver(() => [AnnotatorProgress], { description: 'Per clinician: the named annotators (or every CLINICIAN member) and anyone else who worked on it.' })
  progress(@Root() campaign: AnnotationCampaign, @Ctx() { ctx }: GraphQLContext): Promise<AnnotatorProgress[]> {
    return progressLoader(ctx, this.annotations).load(campaign);
  }

  @FieldResolver(() => AnnotatorProgress, { nullable: true, description: 'Your own progress; null when you may not annotate this campaign.' })
  async myProgress(@Root() campaign: AnnotationCampaign, @Ctx() { ctx }: GraphQLContext): Promise<AnnotatorProgress | null> {
    const rows = await progressLoader(ctx, this.annotations).load(campaign);
    const mine = rows.find((r) => r.annotatorId === ctx.userId);
    if (mine) return mine;
    const allowed = ctx.role !== Role.VIEWER && (!campaign.annotatorIds || campaign.annotatorIds.includes(ctx.userId));
    return allowed ? { annotatorId: ctx.userId, submitted: 0, skipped: 0, inProgress: 0 } : null;
  }

  @FieldResolver(() => AnnotationItemConnection, { description: 'Items in source order.' })
  async items(@Root() campaign: AnnotationCampaign, @Ctx() { ctx }: GraphQLContext, @Args() args: AnnotationItemsArgs): Promise<AnnotationItemConnection> {
    return connectionOf(AnnotationItemConnection, await this.annotations.items(ctx, campaign.id, args, args.status));
  }

  @FieldResolver(() => User, { nullable: true })
  createdBy(@Root() campaign: AnnotationCampaign, @Ctx() { ctx }: GraphQLContext): Promise<User | null> {
    return userByIdLoader(ctx, this.projects).load(campaign.createdById);
  }

  @FieldResolver(() => Int, { description: 'Items in the campaign (frozen at creation).' })
  itemTotal(@Root() campaign: AnnotationCampaign): number {
    return campaign.itemCount;
  }
}

@Resolver(() => AnnotatorProgress)
export class AnnotatorProgressResolver {
  constructor(private readonly projects: ProjectsService) {}

  @FieldResolver(() => User, { nullable: true, description: 'Null for a former member.' })
  annotator(@Root() progress: AnnotatorProgress, @Ctx() { ctx }: GraphQLContext): Promise<User | null> {
    return userByIdLoader(ctx, this.projects).load(progress.annotatorId);
  }
}

@Resolver(() => AnnotationItem)
export class AnnotationItemsResolver {
  constructor(
    private readonly annotations: AnnotationService,
    private readonly candidates: CandidatesService,
  ) {}

  @FieldResolver(() => AnnotationItemStatus)
  async status(@Root() item: AnnotationItem, @Ctx() { ctx }: GraphQLContext): Promise<AnnotationItemStatus> {
    return (await itemStatsLoader(ctx, this.annotations).load(item.id)).status;
  }

  @FieldResolver(() => Int, { description: 'Clinicians who submitted it (edits count once).' })
  async submittedCount(@Root() item: AnnotationItem, @Ctx() { ctx }: GraphQLContext): Promise<number> {
    return (await itemStatsLoader(ctx, this.annotations).load(item.id)).submittedCount;
  }

  @FieldResolver(() => Candidate, { description: 'The candidate judged (side A of a PAIRWISE item between two candidates).' })
  candidate(@Root() item: AnnotationItem, @Ctx() { ctx }: GraphQLContext): Promise<Candidate | null> {
    return candidateByIdLoader(ctx, this.candidates).load(item.candidateId);
  }

  @FieldResolver(() => Candidate, { nullable: true, description: 'PAIRWISE between two candidates: side B.' })
  otherCandidate(@Root() item: AnnotationItem, @Ctx() { ctx }: GraphQLContext): Promise<Candidate | null> {
    return item.otherCandidateId ? candidateByIdLoader(ctx, this.candidates).load(item.otherCandidateId) : Promise.resolve(null);
  }

  @FieldResolver(() => AnnotationCampaign)
  campaign(@Root() item: AnnotationItem, @Ctx() { ctx }: GraphQLContext): Promise<AnnotationCampaign | null> {
    return campaignByIdLoader(ctx, this.annotations).load(item.campaignId);
  }

  @FieldResolver(() => AnnotationSubmissionConnection, { description: 'Submissions, oldest first (every version, or the latest of each clinician); a CLINICIAN of a blind campaign sees only their own.' })
  async submissions(@Root() item: AnnotationItem, @Ctx() context: GraphQLContext, @Args() args: AnnotationSubmissionsArgs): Promise<AnnotationSubmissionConnection> {
    const campaign = await campaignByIdLoader(context.ctx, this.annotations).load(item.campaignId);
    const all = await submissionsByItemLoader(context.ctx, this.annotations, args.latestOnly, !campaign || seesOnlyOwn(context, campaign)).load(item.id);
    // An item has a handful of submissions (overlap x versions): all are read in one batched statement and paged here.
    const cursor = args.after ? decodeCursor(args.after, 'time') : null;
    const after = cursor ? all.filter((s) => s.createdAt.getTime() > (cursor.value as Date).getTime() || (s.createdAt.getTime() === (cursor.value as Date).getTime() && s.id > cursor.id)) : all;
    const rows = after.slice(0, args.first + 1);
    return connectionOf(AnnotationSubmissionConnection, toConnection(rows, args, (s) => ({ value: s.createdAt, id: s.id }), async () => all.length));
  }

  @FieldResolver(() => AnnotationSubmission, { nullable: true, description: 'Your latest submission of this item.' })
  async mySubmission(@Root() item: AnnotationItem, @Ctx() { ctx }: GraphQLContext): Promise<AnnotationSubmission | null> {
    const mine = await submissionsByItemLoader(ctx, this.annotations, true, true).load(item.id);
    return mine[0] ?? null;
  }
}

@Resolver(() => AnnotationTask)
export class AnnotationTasksResolver {
  constructor(
    private readonly annotations: AnnotationService,
    private readonly candidates: CandidatesService,
  ) {}

  @FieldResolver(() => Candidate)
  candidate(@Root() task: AnnotationTask, @Ctx() { ctx }: GraphQLContext): Promise<Candidate | null> {
    return candidateByIdLoader(ctx, this.candidates).load(task.item.candidateId);
  }

  @FieldResolver(() => Candidate, { nullable: true })
  otherCandidate(@Root() task: AnnotationTask, @Ctx() { ctx }: GraphQLContext): Promise<Candidate | null> {
    return task.item.otherCandidateId ? candidateByIdLoader(ctx, this.candidates).load(task.item.otherCandidateId) : Promise.resolve(null);
  }

  @FieldResolver(() => AnnotationSubmission, { nullable: true, description: 'Your latest submission of the item, when you are editing it.' })
  async mySubmission(@Root() task: AnnotationTask, @Ctx() { ctx }: GraphQLContext): Promise<AnnotationSubmission | null> {
    const mine = await submissionsByItemLoader(ctx, this.annotations, true, true).load(task.item.id);
    return mine[0] ?? null;
  }
}

@Resolver(() => AnnotationSubmission)
export class AnnotationSubmissionsResolver {
  constructor(
    private readonly annotations: AnnotationService,
    private readonly projects: ProjectsService,
  ) {}

  @FieldResolver(() => User, { nullable: true })
  annotator(@Root() submission: AnnotationSubmission, @Ctx() { ctx }: GraphQLContext): Promise<User | null> {
    return userByIdLoader(ctx, this.projects).load(submission.annotatorId);
  }

  @FieldResolver(() => AnnotationItem)
  item(@Root() submission: AnnotationSubmission, @Ctx() { ctx }: GraphQLContext): Promise<AnnotationItem | null> {
    return itemByIdLoader(ctx, this.annotations).load(submission.itemId);
  }
}

@Resolver(() => AnnotationPromotion)
export class AnnotationPromotionsResolver {
  constructor(
    private readonly annotations: AnnotationService,
    private readonly projects: ProjectsService,
    private readonly demonstrations: DemonstrationsService,
  ) {}

  @FieldResolver(() => Demonstration, { nullable: true })
  demonstration(@Root() promotion: AnnotationPromotion, @Ctx() { ctx }: GraphQLContext): Promise<Demonstration | null> {
    return demonstrationByIdLoader(ctx, this.demonstrations).load(promotion.demonstrationId);
  }

  @FieldResolver(() => AnnotationCampaign)
  campaign(@Root() promotion: AnnotationPromotion, @Ctx() { ctx }: GraphQLContext): Promise<AnnotationCampaign | null> {
    return campaignByIdLoader(ctx, this.annotations).load(promotion.campaignId);
  }

  @FieldResolver(() => AnnotationItem)
  item(@Root() promotion: AnnotationPromotion, @Ctx() { ctx }: GraphQLContext): Promise<AnnotationItem | null> {
    return itemByIdLoader(ctx, this.annotations).load(promotion.itemId);
  }

  @FieldResolver(() => [ID], { description: "Each clinician's latest submission when it was promoted (AnnotationSubmission ids; read them with node)." })
  submissionIds(@Root() promotion: AnnotationPromotion): string[] {
    return promotion.submissionIds.map((id) => toGlobalId('AnnotationSubmission', id));
  }

  @FieldResolver(() => [ID], { description: 'The CLINICIAN preferences those submissions wrote (Preference ids).' })
  preferenceIds(@Root() promotion: AnnotationPromotion): string[] {
    return promotion.preferenceIds.map((id) => toGlobalId('Preference', id));
  }

  @FieldResolver(() => User, { nullable: true })
  promotedBy(@Root() promotion: AnnotationPromotion, @Ctx() { ctx }: GraphQLContext): Promise<User | null> {
    return userByIdLoader(ctx, this.projects).load(promotion.promotedById);
  }
}

/** Where a demonstration came from, when a campaign promoted it; here because demonstrations do not know campaigns. */
@Resolver(() => Demonstration)
export class DemonstrationAnnotationResolver {
  constructor(private readonly annotations: AnnotationService) {}

  @FieldResolver(() => AnnotationPromotion, { nullable: true, description: 'The campaign item and clinician judgements it was promoted from (promoteToDemonstration).' })
  annotationProvenance(@Root() demonstration: Demonstration, @Ctx() { ctx }: GraphQLContext): Promise<AnnotationPromotion | null> {
    return promotionByDemonstrationLoader(ctx, this.annotations).load(demonstration.id);
  }
}
