import { AuthChecker } from 'type-graphql';
import type { GraphQLContext } from './graphql-context';
import { Role } from './role';

/**
 * The one authorization rule: `@Authorized(Role.X)` needs role X or higher in the key's project.
 * Authentication itself happens before any resolver runs (no valid key, no context).
 */
export const authChecker: AuthChecker<GraphQLContext, Role> = ({ context }, roles) => {
  for (const role of roles) context.ctx.assertRole(role);
  return true;
};
