import { RequestContext } from './request-context';
import type { RunEventsListener } from '../../platform/pubsub';
import type { RunsService } from '../runs/runs.service';
import type { AnnotationService } from '../annotation/annotation.service';

/** What Apollo and graphql-ws hand to resolvers. */
export interface GraphQLContext {
  ctx: RequestContext;
  /** Origin used to build absolute URLs (signed file links). */
  baseUrl: string;
  /** For subscription sources, which run outside resolver instances: only what they read. */
  services: { runs: RunsService; runEvents: RunEventsListener; annotations: AnnotationService };
}
