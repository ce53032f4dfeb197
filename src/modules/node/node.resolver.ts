import { Arg, Ctx, ID, Query, Resolver } from 'type-graphql';
import { Node } from '../../platform/entity-base';
import { fromGlobalId } from '../../platform/ids';
import { badInput, notFound } from '../../platform/errors';
import { RequestContext } from '../projects/request-context';
import type { GraphQLContext } from '../projects/graphql-context';
import type { ProjectsService } from '../projects/projects.service';
import type { ImagesService } from '../images/images.service';
import type { DemonstrationsService } from '../demonstrations/demonstrations.service';
import type { CandidatesService } from '../candidates/candidates.service';
import type { PreferencesService } from '../preferences/preferences.service';
import type { SelectorsService } from '../selectors/selectors.service';
import type { ScoringService } from '../scoring/scoring.service';
import type { DatasetsService } from '../datasets/datasets.service';
import type { RunsService } from '../runs/runs.service';
import type { WebhooksService } from '../webhooks/webhooks.service';
import type { AnnotationService } from '../annotation/annotation.service';
import type { EncodersService } from '../encoders/encoders.service';
import type { EvaluationService } from '../evaluation/evaluation.service';

/** The services that own a Node type, each able to re-fetch its own objects within the caller's project. */
export interface NodeOwners {
  projects: ProjectsService;
  images: ImagesService;
  demonstrations: DemonstrationsService;
  candidates: CandidatesService;
  preferences: PreferencesService;
  selectors: SelectorsService;
  scoring: ScoringService;
  datasets: DatasetsService;
  runs: RunsService;
  webhooks: WebhooksService;
  annotations: AnnotationService;
  encoders: EncodersService;
  evaluation: EvaluationService;
}

type Finder = (owners: NodeOwners, ctx: RequestContext, id: string) => Promise<Node | null>;

/** Every Node type and the scoped lookup that re-fetches it; ids of other projects find nothing. */
const finders: Record<string, Finder> = {
  Project: (s, ctx, id) => s.projects.findProject(ctx, id),
  User: (s, ctx, id) => s.projects.findUser(ctx, id),
  Membership: (s, ctx, id) => s.projects.findMembership(ctx, id),
  ApiKey: (s, ctx, id) => (ctx.role === 'OWNER' ? s.projects.findApiKey(ctx, id) : Promise.resolve(null)),
  Image: (s, ctx, id) => s.images.findById(ctx, id),
  Demonstration: (s, ctx, id) => s.demonstrations.findById(ctx, id),
  Candidate: (s, ctx, id) => s.candidates.findById(ctx, id),
  Preference: (s, ctx, id) => s.preferences.findById(ctx, id),
  SelectorModel: (s, ctx, id) => s.selectors.findById(ctx, id),
  Score: (s, ctx, id) => s.scoring.findById(ctx, id),
  Dataset: (s, ctx, id) => s.datasets.findById(ctx, id),
  DatasetItem: (s, ctx, id) => s.datasets.findItemById(ctx, id),
  Run: (s, ctx, id) => s.runs.findById(ctx, id),
  RunFailure: (s, ctx, id) => s.runs.findFailureById(ctx, id),
  WebhookEndpoint: (s, ctx, id) => s.webhooks.findEndpoint(ctx, id),
  WebhookDelivery: (s, ctx, id) => s.webhooks.findDelivery(ctx, id),
  WebhookAttempt: (s, ctx, id) => s.webhooks.findAttempt(ctx, id),
  AnnotationCampaign: (s, ctx, id) => s.annotations.findCampaign(ctx, id),
  AnnotationItem: (s, ctx, id) => s.annotations.findItem(ctx, id),
  AnnotationSubmission: (s, ctx, id) => s.annotations.findSubmission(ctx, id),
  EncoderModel: (s, ctx, id) => s.encoders.findById(ctx, id),
  SelectorEvaluation: (s, ctx, id) => s.evaluation.findById(ctx, id),
};

@Resolver()
export class NodeResolver {
  constructor(private readonly owners: NodeOwners) {}

  @Query(() => Node, { nullable: true, description: 'Re-fetches any object by its global id. NOT_FOUND when it does not exist or belongs to another project.' })
  async node(@Ctx() { ctx }: GraphQLContext, @Arg('id', () => ID) id: string): Promise<Node | null> {
    const parsed = fromGlobalId(id);
    const find = parsed && finders[parsed.type];
    if (!find) throw badInput('Not a valid id', 'id');
    const found = await find(this.owners, ctx, parsed.id);
    if (!found) throw notFound(parsed.type);
    return found;
  }
}
