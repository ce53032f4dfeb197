import { DocumentNode, GraphQLError, GraphQLSchema } from 'graphql';
import { ComplexityEstimator, getComplexity } from 'graphql-query-complexity';
import type { ApolloServerPlugin } from '@apollo/server';

/**
 * The cost of an operation, computed once its variables are known, so that `first: $n` costs what
 * `first: 1000` costs. The model is graphql-armor's (the one QUERY_MAX_COST was documented with): a
 * leaf costs 1, an object field 2 plus 1.5 × its children, and a list asked with `first`/`last`
 * multiplies that by the page size. Introspection (`__schema`, `__type`) is free, as it was.
 */
export const OBJECT_COST = 2;
export const SCALAR_COST = 1;
export const DEPTH_COST_FACTOR = 1.5;

const pageSizeMultiplier = (args: Record<string, unknown>): number => {
  const size = typeof args.first === 'number' ? args.first : typeof args.last === 'number' ? args.last : 1;
  return Math.max(1, size);
};

const armorCompatibleEstimator: ComplexityEstimator = ({ node, args, childComplexity }) => {
  const name = node.name.value;
  if (name === '__schema' || name === '__type') return 0;
  if (!node.selectionSet) return SCALAR_COST;
  return (OBJECT_COST + DEPTH_COST_FACTOR * childComplexity) * pageSizeMultiplier(args);
};

export class QueryTooCostlyError extends GraphQLError {
  constructor(maxCost: number, cost: number) {
    // The same code and status as graphql-armor's other shape limits (depth, aliases).
    super(`Query Cost limit of ${maxCost} exceeded, found ${Math.round(cost)}.`, { extensions: { code: 'GRAPHQL_VALIDATION_FAILED', cost: Math.round(cost), maxCost, http: { status: 400 } } });
  }
}

/** The cost of one operation of `document` with these variables; null when the variables do not coerce (execution reports that). */
export function operationCost(schema: GraphQLSchema, document: DocumentNode, variables: Record<string, unknown> | null | undefined, operationName?: string | null): number | null {
  try {
    return getComplexity({ schema, query: document, variables: variables ?? {}, operationName: operationName ?? undefined, estimators: [armorCompatibleEstimator] });
  } catch {
    return null;
  }
}

/** Throws QueryTooCostlyError when the operation costs more than `maxCost`. */
export function assertCostWithin(maxCost: number, schema: GraphQLSchema, document: DocumentNode, variables: Record<string, unknown> | null | undefined, operationName?: string | null): void {
  const cost = operationCost(schema, document, variables, operationName);
  if (cost !== null && cost > maxCost) throw new QueryTooCostlyError(maxCost, cost);
}

/** Apollo plugin: the cost check at didResolveOperation, after the variables are known and before anything runs. */
export function queryCostPlugin(maxCost: number): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, request, operationName }) {
          assertCostWithin(maxCost, schema, document, request.variables, operationName);
        },
      };
    },
  };
}
