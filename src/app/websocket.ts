import http from 'node:http';
import { GraphQLError, GraphQLFormattedError, GraphQLSchema, parse, ParseOptions, specifiedRules, validate, ValidationRule, DocumentNode } from 'graphql';
import { WebSocket, WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { DomainError, toGraphQLError } from '../platform/errors';
import { fromGlobalId } from '../platform/ids';
import type { AccessChange, AccessChangeHandler } from '../platform/access-events';
import { isSaneRequestId, logger, requestIdFrom } from '../platform/logging';
import { RequestContext } from '../modules/projects/request-context';
import type { GraphQLContext } from '../modules/projects/graphql-context';
import type { AppServices } from './app-services';
import { subscribeSharingResults } from './shared-subscription-results';

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
  /** Key revocations and role changes from every api process (LISTEN/NOTIFY). */
  accessChanges: { onChange(handler: AccessChangeHandler): () => void };
}

/** Close code of a connection whose key is no longer valid for what it was opened with (as at connection_init). */
const FORBIDDEN_CLOSE = 4403;

interface OpenConnection {
  socket: WebSocket;
  authorization: string | null;
  ctx: RequestContext;
}

const concerns = (change: AccessChange | 'resync', ctx: RequestContext): boolean =>
  change === 'resync' || ('apiKeyId' in change ? change.apiKeyId === ctx.apiKeyId : change.projectId === ctx.projectId && change.userId === ctx.userId);

/**
 * Open connections by key: when a key is revoked or its member's role changes, each connection it
 * concerns authenticates its key again and closes with 4403 unless it still acts for the same
 * project with the same role (a client reconnects to get its new role).
 */
class OpenConnections {
  private readonly open = new Set<OpenConnection>();

  constructor(private readonly authenticate: (authorization: string | null) => Promise<RequestContext>) {}

  add(connection: OpenConnection): void {
    this.open.add(connection);
    connection.socket.once('close', () => this.open.delete(connection));
  }

  async recheck(change: AccessChange | 'resync'): Promise<void> {
    await Promise.all([...this.open].filter((c) => concerns(change, c.ctx)).map((c) => this.recheckOne(c)));
  }

  private async recheckOne(connection: OpenConnection): Promise<void> {
    let still: RequestContext;
    try {
      still = await this.authenticate(connection.authorization);
    } catch (error) {
      if (!(error instanceof DomainError)) {
        // The database is unreachable, say: keep the connection; its next operation checks again.
        logger.warn('could not re-check a WebSocket key', { error: String((error as Error)?.message ?? error) });
        return;
      }
      return this.close(connection, 'API key revoked');
    }
    const { ctx } = connection;
    if (still.projectId !== ctx.projectId || still.userId !== ctx.userId || still.role !== ctx.role) this.close(connection, 'Role changed; reconnect');
  }

  private close(connection: OpenConnection, reason: string): void {
    this.open.delete(connection);
    connection.socket.close(FORBIDDEN_CLOSE, reason);
  }
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
  const connections = new OpenConnections(options.authenticate);
  const stopListening = options.accessChanges.onChange((change) => void connections.recheck(change));
  // Which subscribers may share one execution of an event (see subscribeSharingResults).
  const shareKeys = new WeakMap<object, string>();
  const cleanup = useServer<Record<string, unknown>, { ctx?: RequestContext }>(
    {
      schema: options.schema,
      subscribe: (args) => subscribeSharingResults(args, shareKeys.get(args.contextValue as object) ?? null),
      onConnect: async (c) => {
        const authorization = c.connectionParams?.authorization ?? c.connectionParams?.Authorization;
        try {
          const ctx = await options.authenticate(typeof authorization === 'string' ? authorization : null);
          // A client may name the project it means to follow; a key of any other project is refused here.
          const projectId = c.connectionParams?.projectId;
          if (projectId !== undefined && !namesProject(projectId, ctx.projectId)) return false;
          c.extra.ctx = ctx;
          connections.add({ socket: c.extra.socket, authorization: typeof authorization === 'string' ? authorization : null, ctx });
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
        // A socket has no headers per operation: a client may name its id in the message's extensions.
        const operationCtx = ctx.fresh();
        const given = payload.extensions?.requestId;
        operationCtx.requestId = isSaneRequestId(given) ? given : requestIdFrom(undefined);
        const contextValue: GraphQLContext = { ctx: operationCtx, baseUrl: options.baseUrl(c.extra.request.headers.host), services: options.services };
        // Everything a result can depend on besides the event: the operation as sent, and who asks.
        shareKeys.set(contextValue, JSON.stringify([payload.query, payload.operationName ?? null, payload.variables ?? null, ctx.projectId, ctx.userId, ctx.role, contextValue.baseUrl]));
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
      stopListening();
      await cleanup.dispose();
      wsServer.close();
    },
  };
}
