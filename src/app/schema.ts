import 'reflect-metadata';
import path from 'node:path';
import fs from 'node:fs';
import { GraphQLSchema, lexicographicSortSchema, printSchema } from 'graphql';
import { buildSchema, ContainerType, NonEmptyArray } from 'type-graphql';
import type { AppServices } from './app-services';
import { authChecker } from '../modules/projects/auth-checker';
import { inputMistakesAsUserErrors } from '../platform/mutation-input-errors';
import { resolvePlainFieldsByDefault } from '../platform/plain-field-resolvers';
import { ProjectsResolver, MembershipsResolver, ApiKeysResolver } from '../modules/projects/projects.resolver';
import { ImagesResolver } from '../modules/images/images.resolver';
import { CandidatesResolver, ImageCandidatesResolver } from '../modules/candidates/candidates.resolver';
import { DemonstrationsResolver, CandidateDemonstrationsResolver } from '../modules/demonstrations/demonstrations.resolver';
import { PreferencesResolver, CandidatePreferencesResolver } from '../modules/preferences/preferences.resolver';
import { SelectorsResolver } from '../modules/selectors/selectors.resolver';
import { ScoresResolver, CandidateScoresResolver } from '../modules/scoring/scoring.resolver';
import { DatasetsResolver, DatasetItemsResolver } from '../modules/datasets/datasets.resolver';
import { RunsResolver } from '../modules/runs/runs.resolver';
import { NodeResolver } from '../modules/node/node.resolver';
import { GenerationResolver } from '../modules/generation/generation.resolver';
import { RatingResolver } from '../modules/rating/rating.resolver';
import { ClusteringResolver } from '../modules/clustering/clustering.resolver';
import { WebhooksResolver, WebhookDeliveriesResolver } from '../modules/webhooks/webhooks.resolver';
import {
  AnnotationCampaignsResolver,
  AnnotationItemsResolver,
  AnnotationPromotionsResolver,
  AnnotationSubmissionsResolver,
  AnnotationTasksResolver,
  AnnotatorProgressResolver,
  DemonstrationAnnotationResolver,
} from '../modules/annotation/annotation.resolver';
import {
  AnnotationAgreementResolver,
  AnnotationCampaignAgreementResolver,
  AnnotatorAgreementResolver,
  AnnotatorPairAgreementResolver,
  JudgeAndSelectorComparisonResolver,
  ModelAlignmentFigureResolver,
} from '../modules/annotation/agreement.resolver';
import { EncodersResolver } from '../modules/encoders/encoders.resolver';
import { TrainedSelectorResolver, TrainingRunDetailsResolver, TrainingRunsResolver } from '../modules/training/training.resolver';
import { EvaluationResolver, SelectorEvaluationsResolver } from '../modules/evaluation/evaluation.resolver';
import { createPubSub } from '@graphql-yoga/subscription';

/**
 * Every resolver class with the factory that builds it from the services it uses: the one place
 * that knows both the resolvers and the services bag, so a module's resolver imports only what it
 * touches. The tuple type ties each factory to its class, so a wrong factory fails typecheck.
 */
type ResolverEntry<R> = readonly [resolverClass: abstract new (...args: never[]) => R, build: (s: AppServices) => R];
const entry = <R>(resolverClass: abstract new (...args: never[]) => R, build: (s: AppServices) => R): ResolverEntry<R> => [resolverClass, build];

export const resolverEntries = [
  entry(NodeResolver, (s) => new NodeResolver(s)),
  entry(ProjectsResolver, (s) => new ProjectsResolver(s.projects)),
  entry(MembershipsResolver, (s) => new MembershipsResolver(s.projects)),
  entry(ApiKeysResolver, (s) => new ApiKeysResolver(s.projects)),
  entry(ImagesResolver, (s) => new ImagesResolver(s.images, s.config, s.signer)),
  entry(ImageCandidatesResolver, (s) => new ImageCandidatesResolver(s.candidates)),
  entry(CandidatesResolver, (s) => new CandidatesResolver(s.candidates, s.images)),
  entry(CandidateScoresResolver, (s) => new CandidateScoresResolver(s.scoring)),
  entry(CandidatePreferencesResolver, (s) => new CandidatePreferencesResolver(s.preferences)),
  entry(DemonstrationsResolver, (s) => new DemonstrationsResolver(s.demonstrations, s.images, s.projects, s.candidates, s.config, s.recordsImport)),
  entry(CandidateDemonstrationsResolver, (s) => new CandidateDemonstrationsResolver(s.demonstrations)),
  entry(PreferencesResolver, (s) => new PreferencesResolver(s.preferences, s.candidates, s.projects)),
  entry(SelectorsResolver, (s) => new SelectorsResolver(s.selectors, s.config)),
  entry(ScoresResolver, (s) => new ScoresResolver(s.scoring, s.selectors, s.candidates)),
  entry(DatasetsResolver, (s) => new DatasetsResolver(s.datasets, s.signer, s.selectors)),
  entry(DatasetItemsResolver, (s) => new DatasetItemsResolver(s.candidates)),
  entry(RunsResolver, (s) => new RunsResolver(s.runs, s.projects)),
  entry(GenerationResolver, (s) => new GenerationResolver(s.generation)),
  entry(RatingResolver, (s) => new RatingResolver(s.rating)),
  entry(ClusteringResolver, (s) => new ClusteringResolver(s.clustering)),
  entry(WebhooksResolver, (s) => new WebhooksResolver(s.webhooks)),
  entry(WebhookDeliveriesResolver, (s) => new WebhookDeliveriesResolver(s.webhooks)),
  entry(AnnotationCampaignsResolver, (s) => new AnnotationCampaignsResolver(s.annotations, s.projects)),
  entry(AnnotatorProgressResolver, (s) => new AnnotatorProgressResolver(s.projects)),
  entry(AnnotationItemsResolver, (s) => new AnnotationItemsResolver(s.annotations, s.candidates)),
  entry(AnnotationTasksResolver, (s) => new AnnotationTasksResolver(s.annotations, s.candidates)),
  entry(AnnotationSubmissionsResolver, (s) => new AnnotationSubmissionsResolver(s.annotations, s.projects)),
  entry(AnnotationPromotionsResolver, (s) => new AnnotationPromotionsResolver(s.annotations, s.projects, s.demonstrations)),
  entry(DemonstrationAnnotationResolver, (s) => new DemonstrationAnnotationResolver(s.annotations)),
  entry(AnnotationAgreementResolver, (s) => new AnnotationAgreementResolver(s.annotationAgreement)),
  entry(AnnotationCampaignAgreementResolver, (s) => new AnnotationCampaignAgreementResolver(s.annotationAgreement)),
  entry(ModelAlignmentFigureResolver, (s) => new ModelAlignmentFigureResolver(s.selectors)),
  entry(AnnotatorPairAgreementResolver, (s) => new AnnotatorPairAgreementResolver(s.projects)),
  entry(AnnotatorAgreementResolver, (s) => new AnnotatorAgreementResolver(s.projects)),
  entry(JudgeAndSelectorComparisonResolver, (s) => new JudgeAndSelectorComparisonResolver(s.selectors)),
  entry(EncodersResolver, (s) => new EncodersResolver(s.encoders, s.config)),
  entry(TrainingRunsResolver, (s) => new TrainingRunsResolver(s.training)),
  entry(TrainingRunDetailsResolver, (s) => new TrainingRunDetailsResolver(s.training, s.selectors, s.encoders)),
  entry(TrainedSelectorResolver, (s) => new TrainedSelectorResolver(s.runs)),
  entry(EvaluationResolver, (s) => new EvaluationResolver(s.evaluation, s.selectors, s.runs)),
  entry(SelectorEvaluationsResolver, (s) => new SelectorEvaluationsResolver(s.evaluation)),
] as const;

export const resolvers = resolverEntries.map(([resolverClass]) => resolverClass);

export const SCHEMA_FILE = path.join(__dirname, '..', '..', 'schema', 'schema.graphql');

/** Resolvers are built once per process, each from the services its entry gives it. */
function containerFor(services: AppServices | null): ContainerType {
  const factories = new Map<unknown, (s: AppServices) => unknown>(resolverEntries.map(([resolverClass, build]) => [resolverClass, build]));
  const instances = new Map<unknown, unknown>();
  return {
    get(resolverClass: unknown) {
      if (!services) throw new Error('schema built for printing only');
      const build = factories.get(resolverClass);
      if (!build) throw new Error(`no factory registered for resolver ${String((resolverClass as Function).name)}`);
      if (!instances.has(resolverClass)) instances.set(resolverClass, build(services));
      return instances.get(resolverClass);
    },
  } as ContainerType;
}

export async function buildAppSchema(services: AppServices | null): Promise<GraphQLSchema> {
  const schema = await buildSchema({
    resolvers: resolvers as unknown as NonEmptyArray<Function>,
    container: containerFor(services),
    authChecker,
    validate: { forbidUnknownValues: false },
    // Subscriptions bring their own sources (Postgres LISTEN/NOTIFY); type-graphql still asks for a pubSub.
    pubSub: createPubSub(),
  });
  // No globalMiddlewares above: plain property fields may resolve without type-graphql's wrapper.
  resolvePlainFieldsByDefault(schema);
  return inputMistakesAsUserErrors(schema);
}

export function printAppSchema(schema: GraphQLSchema): string {
  return printSchema(lexicographicSortSchema(schema)) + '\n';
}

export async function writeSchemaFile(): Promise<string> {
  const sdl = printAppSchema(await buildAppSchema(null));
  fs.mkdirSync(path.dirname(SCHEMA_FILE), { recursive: true });
  fs.writeFileSync(SCHEMA_FILE, sdl);
  return SCHEMA_FILE;
}
