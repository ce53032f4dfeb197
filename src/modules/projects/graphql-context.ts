import { RequestContext } from './request-context';

/** What Apollo and graphql-ws hand to resolvers. */
export interface GraphQLContext {
  ctx: RequestContext;
  /** Origin used to build absolute URLs (signed file links). */
  baseUrl: string;
}
