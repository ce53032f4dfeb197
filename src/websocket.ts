import http from 'node:http';
import { GraphQLError, GraphQLFormattedError, GraphQLSchema, parse, ParseOptions, specifiedRules, validate, ValidationRule, DocumentNode } from 'graphql';
import { WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { DomainError, toGraphQLError } from './platform/errors';
import { fromGlobalId } from './platform/ids';
import { RequestContext } from './modules/projects/request-context';
import type { GraphQLContext } from './modules/projects/graphql-context';
import type { AppServices } from './app-services';

export interface WebSocketOptions {
  schema: GraphQLSchema;
  validationRules: ValidationRule[];
  parseOptions: ParseOptions;
  /** The checks that need the variables (NUL bytes, cost); throws a GraphQLError to refuse. */
  checkOperation(document: DocumentNode, variables: Record<string, unknown> | null | undefined, operationName: string | null | undefined): void;
  formatError: (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError;
  authenticate(authorization: string | null): Promise<RequestContext>;
  spendBudget(ctx: RequestContext): Promise<void>;
  baseUrl(host: string | undefined): string;
  services: AppServices;
}

function namesProject(globalId: unknown, projectId: string): boolean {
  const parsed = typeof globalId === 'string' ? fromGlobalId(globalId) : null;
  return parsed?.type === 'Project' && parsed.id === projectId;
}

/** graphql-ws validates with graphql's rules only; this adds the same limits as over HTTP. */
function validateOperation(schema: GraphQLSchema, query: string, rules: ValidationRule[], parseOptions: ParseOptions): { document: DocumentNode } | GraphQLError[] {
  let document: DocumentNode;
  try {
    document = parse(query, parseOptions);
  } catch (error) {
    return [new GraphQLError((error as Error).message, { extensions: { code: 'GRAPHQL_PARSE_FAILED' } })];
  }
  const errors = validate(schema, document, [...specifiedRules, ...rules]);
  return errors.length ? errors.map((e) => new GraphQLError(e.message, { nodes: e.nodes, extensions: { ...e.extensions, code: 'GRAPHQL_VALIDATION_FAILED' } })) : { document };
}

/**
 * GraphQL over WebSocket (graphql-ws) on the HTTP server's port and path. The API key travels in
 * `connectionParams.authorization` and is checked once at connection_init (close 4403 when it is
 * not valid, or when `connectionParams.projectId` names a project the key does not belong to); every operation then spends from the key's rate budget, passes the same query limits
 * as HTTP, and gets a fresh request context.
 */
export function attachGraphQLWebSocket(httpServer: http.Server, path: string, options: WebSocketOptions): { dispose(): Promise<void> } {
  const wsServer = new WebSocketServer({ server: httpServer, path });
  const cleanup = useServer<Record<string, unknown>, { ctx?: RequestContext }>(
    {
      schema: options.schema,
      onConnect: async (c) => {
        const authorization = c.connectionParams?.authorization ?? c.connectionParams?.Authorization;
        try {
          const ctx = await options.authenticate(typeof authorization === 'string' ? authorization : null);
          // A client may name the project it means to follow; a key of any other project is refused here.
          const projectId = c.connectionParams?.projectId;
          if (projectId !== undefined && !namesProject(projectId, ctx.projectId)) return false;
          c.extra.ctx = ctx;
          return true;
        } catch {
          return false;
        }
      },
      onSubscribe: async (c, _id, payload) => {
        const ctx = c.extra.ctx!;
        try {
          await options.spendBudget(ctx);
        } catch (error) {
          if (error instanceof DomainError) return [toGraphQLError(error)];
          throw error;
        }
        const checked = validateOperation(options.schema, payload.query, options.validationRules, options.parseOptions);
        if (Array.isArray(checked)) return checked;
        try {
          options.checkOperation(checked.document, payload.variables, payload.operationName);
        } catch (error) {
          if (!(error instanceof GraphQLError)) throw error;
          // `http` tells Apollo the status; it means nothing on a socket.
          const { http: _status, ...extensions } = error.extensions;
          return [new GraphQLError(error.message, { extensions })];
        }
        const contextValue: GraphQLContext = { ctx: ctx.fresh(), baseUrl: options.baseUrl(c.extra.request.headers.host), services: options.services };
        return { schema: options.schema, document: checked.document, variableValues: payload.variables, operationName: payload.operationName, contextValue };
      },
      // Errors over the socket carry the same codes and masking as over HTTP.
      onNext: (_c, _id, _payload, _args, result) =>
        'errors' in result && result.errors?.length ? { ...result, errors: result.errors.map((e) => options.formatError(e.toJSON(), e)) } : result,
      // An error thrown by a subscription's event stream reaches graphql-ws wrapped in a GraphQLError
      // without a path, which formatError would not unwrap: pass the original, so a DomainError keeps
      // its code and anything unexpected is masked as over HTTP. Errors from onSubscribe are already coded.
      onError: (_c, _id, _payload, errors) => errors.map((e) => (e.originalError ? options.formatError(e.toJSON(), e.originalError) : e.toJSON())),
    },
    wsServer,
  );
  return {
    dispose: async () => {
      await cleanup.dispose();
      wsServer.close();
    },
  };
}
