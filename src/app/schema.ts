import 'reflect-metadata';
import path from 'node:path';
import fs from 'node:fs';
import { GraphQLSchema, lexicographicSortSchema, printSchema } from 'graphql';
import { buildSchema, ContainerType, NonEmptyArray } from 'type-graphql';
import type { AppServices } from './app-services';
import { authChecker } from '../modules/projects/auth-checker';
import { inputMistakesAsUserErrors } from '../platform/mutation-input-errors';
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
import { createPubSub } from '@graphql-yoga/subscription';

export const resolvers = [
  NodeResolver,
  ProjectsResolver,
  MembershipsResolver,
  ApiKeysResolver,
  ImagesResolver,
  ImageCandidatesResolver,
  CandidatesResolver,
  CandidateScoresResolver,
  CandidatePreferencesResolver,
  DemonstrationsResolver,
  CandidateDemonstrationsResolver,
  PreferencesResolver,
  SelectorsResolver,
  ScoresResolver,
  DatasetsResolver,
  DatasetItemsResolver,
  RunsResolver,
  GenerationResolver,
  RatingResolver,
  ClusteringResolver,
  WebhooksResolver,
  WebhookDeliveriesResolver,
] as const;

export const SCHEMA_FILE = path.join(__dirname, '..', '..', 'schema', 'schema.graphql');

/** Resolvers are built once per process with the services they need. */
function containerFor(services: AppServices | null): ContainerType {
  const instances = new Map<unknown, unknown>();
  return {
    get(resolverClass: new (services: AppServices) => unknown) {
      if (!services) throw new Error('schema built for printing only');
      if (!instances.has(resolverClass)) instances.set(resolverClass, new resolverClass(services));
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
