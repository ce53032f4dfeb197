import { RequestContext } from './request-context';
import type { AppServices } from '../../app/app-services';

/** What Apollo and graphql-ws hand to resolvers. */
export interface GraphQLContext {
  ctx: RequestContext;
  /** Origin used to build absolute URLs (signed file links). */
  baseUrl: string;
  /** For subscription sources, which run outside resolver instances. */
  services: AppServices;
}
