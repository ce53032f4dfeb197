import http from 'node:http';
import express, { Request } from 'express';
import cors from 'cors';
import { ApolloServer, ApolloServerPlugin, GraphQLRequestListener } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import { graphqlUploadExpress } from 'graphql-upload-minimal';
import { getDistDirectory, renderAltair } from 'altair-static';
import { DataSource } from 'typeorm';
import { getOperationAST } from 'graphql';
import { AppConfig } from '../platform/config';
import { asServiceUnavailable, DomainError, formatError, noteRequestIdOf, RateLimitedError, toGraphQLError } from '../platform/errors';
import { checkReadiness } from '../platform/db-availability';
import { RequestRateLimiter } from '../platform/rate-limit';
import { connectionString, migrationsApplied } from '../platform/db';
import { loadSigningSecret, UrlSigner } from '../platform/signing';
import { logger, requestIdFrom } from '../platform/logging';
import { AppServices, createServices } from './app-services';
import { buildAppSchema } from './schema';
import { GraphQLContext } from '../modules/projects/graphql-context';
import { imageFilesRouter } from '../modules/images/image-files.routes';
import { datasetExportsRouter } from '../modules/datasets/dataset-exports.routes';
import { annotatePageRouter } from '../modules/annotation/annotate-page.routes';
import { attachGraphQLWebSocket } from './websocket';
import { apolloLogger, EDGE_ERROR, EdgeError, graphqlOverHttpStatusPlugin, jsonErrorHandler } from '../platform/http-errors';
import { assertCostWithin, queryCostPlugin } from '../platform/query-cost';
import { assertNoNulBytes, nulBytePlugin } from '../platform/input-checks';
import { AccessChangesListener } from '../platform/access-events';
import { closeComputePool } from '../platform/compute-pool';
import { METRICS_CONTENT_TYPE, metricsAllowed } from '../platform/metrics';

export interface RunningServer {
  url: string;
  graphqlUrl: string;
  services: AppServices;
  httpServer: http.Server;
  /** With `holdReadiness`, /readyz answers 503 "starting" until this is called. */
  markReady(): void;
  close(): Promise<void>;
}

const GRAPHQL_PATH = '/graphql';

/**
 * Limits on query shape that keep one request from exhausting the service: depth, aliases
 * (`__typename` ones too) and directives by graphql-armor's validation rules; tokens by graphql's
 * own parser (`parseOptions`), which refuses a long document as a parse failure (armor's token
 * plugin throws from a hook, which Apollo answers with a 500); cost after the variables are known
 * (query-cost.ts), since armor's cost rule reads only literal `first` arguments.
 */
function queryLimits(config: AppConfig, exposeDetails: boolean) {
  const armor = new ApolloArmor({
    maxDepth: { n: config.QUERY_MAX_DEPTH },
    maxAliases: { n: config.QUERY_MAX_ALIASES, allowList: [] },
    maxTokens: { enabled: false },
    costLimit: { enabled: false },
    maxDirectives: { n: 20 },
    blockFieldSuggestion: { enabled: !exposeDetails },
  }).protect();
  return {
    validationRules: armor.validationRules,
    parseOptions: { maxTokens: config.QUERY_MAX_TOKENS },
    plugins: [...armor.plugins, nulBytePlugin(), queryCostPlugin(config.QUERY_MAX_COST)],
  };
}

/**
 * Notes the request id of each error a GraphQL request met, before Apollo formats (and, for an
 * unexpected one, logs) it. One listener object for all requests: nothing allocated per request.
 */
const errorListener: GraphQLRequestListener<GraphQLContext> = {
  async didEncounterErrors({ errors, contextValue }) {
    for (const error of errors) noteRequestIdOf(error, contextValue?.ctx?.requestId);
  },
};
const errorsCarryRequestId: ApolloServerPlugin<GraphQLContext> = { requestDidStart: async () => errorListener };

/** One JSON line per request (health probes excepted): method, path, status, duration. */
function accessLog(req: Request, res: express.Response, next: express.NextFunction): void {
  if (req.path === '/healthz' || req.path === '/readyz') return next();
  const requestId = requestIdFrom(req.headers['x-request-id']);
  res.locals.requestId = requestId;
  res.setHeader('x-request-id', requestId);
  const started = process.hrtime.bigint();
  // Read now: inside a mounted router (the GraphQL route) req.path is relative to the mount point.
  const path = req.path;
  res.on('finish', () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const refused = res.locals[EDGE_ERROR] as EdgeError | undefined;
    logger.info('request', { requestId, method: req.method, path, status: res.statusCode, ms: Math.round(ms * 10) / 10, ...(refused ? { code: refused.code, error: refused.message } : {}) });
  });
  // Not an AsyncLocalStorage scope (see platform/logging.ts): handlers read res.locals.requestId.
  next();
}

/**
 * A multipart request answered before its files were read (FORBIDDEN, a validation error) leaves
 * unread bytes on the connection, and the server resets it; a client reusing that keep-alive
 * connection would see its next request fail. Multipart requests therefore close their connection.
 */
function closeAfterMultipart(req: Request, res: express.Response, next: express.NextFunction): void {
  if (req.is('multipart/form-data')) res.setHeader('Connection', 'close');
  next();
}

function baseUrlOf(req: Request, config: AppConfig): string {
  return config.PUBLIC_URL?.replace(/\/$/, '') ?? `${req.protocol}://${req.get('host')}`;
}

/** Listens, or fails at once with a readable reason (a port in use) instead of an unhandled 'error' event. */
function listenOrFail(httpServer: http.Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const fail = (error: NodeJS.ErrnoException) => {
      const reason = error.code === 'EADDRINUSE' ? 'is already in use (EADDRINUSE): stop the other process or set PORT' : `cannot be listened on: ${error.message}`;
      reject(new Error(`Port ${port} on ${host} ${reason}`));
    };
    httpServer.once('error', fail);
    httpServer.listen(port, host, () => {
      httpServer.off('error', fail);
      resolve();
    });
  });
}

/** The api process: GraphQL over HTTP and WebSocket on one port, file downloads, health probes. */
export async function startServer(ds: DataSource, config: AppConfig, options: { holdReadiness?: boolean } = {}): Promise<RunningServer> {
  const signer = new UrlSigner(await loadSigningSecret(ds, config.URL_SIGNING_SECRET), config.SIGNED_URL_TTL_SECONDS);
  const services = createServices(ds, config, signer);
  const schema = await buildAppSchema(services);
  const exposeDetails = config.EXPOSE_ERROR_DETAILS ?? config.NODE_ENV !== 'production';

  const app = express();
  app.disable('x-powered-by');
  const httpServer = http.createServer(app);

  const formatErr = formatError(exposeDetails);
  const limits = queryLimits(config, exposeDetails);
  const rateLimiter = new RequestRateLimiter(ds, config.RATE_LIMIT_PER_MINUTE);
  /** Authenticates a key and spends one request of its budget. */
  const authenticate = async (authorization: string | null | undefined) => {
    const ctx = await services.auth.authenticateHeader(authorization);
    await rateLimiter.consume(ctx.apiKeyId ?? ctx.userId);
    return ctx;
  };
  const accessChanges = new AccessChangesListener(connectionString(ds));
  const wsCleanup = attachGraphQLWebSocket(httpServer, GRAPHQL_PATH, {
    accessChanges,
    schema,
    validationRules: limits.validationRules,
    parseOptions: limits.parseOptions,
    checkOperation: (document, variables, operationName) => {
      assertNoNulBytes(schema, document, getOperationAST(document, operationName), variables);
      assertCostWithin(config.QUERY_MAX_COST, schema, document, variables, operationName);
    },
    formatError: formatErr,
    authenticate: (authorization) => services.auth.authenticateHeader(authorization),
    spendBudget: (ctx) => rateLimiter.consume(ctx.apiKeyId ?? ctx.userId),
    baseUrl: (host) => config.PUBLIC_URL ?? `http://${host}`,
    services,
  });

  const apollo = new ApolloServer<GraphQLContext>({
    schema,
    formatError: formatErr,
    includeStacktraceInErrorResponses: false,
    allowBatchedHttpRequests: false,
    validationRules: limits.validationRules,
    parseOptions: limits.parseOptions,
    logger: apolloLogger,
    plugins: [
      ...limits.plugins,
      graphqlOverHttpStatusPlugin(),
      services.metrics.graphqlPlugin(),
      ApolloServerPluginDrainHttpServer({ httpServer }),
      ApolloServerPluginLandingPageDisabled(),
      // No CDN cache hints here; without the plugin Apollo does not wrap every field resolver.
      ApolloServerPluginCacheControlDisabled(),
      errorsCarryRequestId,
      { async serverWillStart() { return { async drainServer() { await wsCleanup.dispose(); } }; } },
    ],
  });
  await apollo.start();
  await services.runEvents.start();
  await accessChanges.start();

  // Keys travel in the Authorization header, never in cookies, so any allowed origin may call.
  app.use(cors({ origin: config.CORS_ORIGINS, allowedHeaders: ['authorization', 'content-type', 'apollo-require-preflight', 'x-apollo-operation-name', 'x-request-id'], exposedHeaders: ['x-request-id'], maxAge: 600 }));
  app.use(accessLog);
  app.use(services.metrics.httpMiddleware());
  app.get('/metrics', async (req, res) => {
    if (!metricsAllowed(req.headers.authorization, config.METRICS_BEARER_TOKEN)) return void res.status(401).set('www-authenticate', 'Bearer').end();
    res.type(METRICS_CONTENT_TYPE).send(await services.metrics.render());
  });

  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  // A process that still has start-up work after listening (the demo seed, its worker) holds its
  // readiness until that is done, so a supervisor or script never sees "ready" too early.
  let started = !options.holdReadiness;
  app.get('/readyz', async (_req, res) => {
    if (!started) return void res.status(503).json({ status: 'starting' });
    const readiness = await checkReadiness(ds, migrationsApplied);
    res.status(readiness.status).json(readiness.body);
  });

  // A GraphQL IDE served from the npm package: works offline, no CDN.
  app.use('/ide', express.static(getDistDirectory(), { index: false }));
  app.get(['/ide', '/ide/'], (req, res) => {
    const base = baseUrlOf(req, config);
    res.type('html').send(
      renderAltair({
        baseURL: '/ide/',
        endpointURL: `${base}${GRAPHQL_PATH}`,
        subscriptionsEndpoint: `${base.replace(/^http/, 'ws')}${GRAPHQL_PATH}`,
        initialHeaders: { Authorization: 'Bearer <your API key>' },
        disableAccount: true,
      }),
    );
  });
  app.get('/', (_req, res) => void res.redirect('/ide/'));

  app.use(imageFilesRouter(services));
  app.use(datasetExportsRouter(services));
  // The reference annotation page (issue 12): static files that call /graphql like any client.
  app.use(annotatePageRouter());

  app.use(
    GRAPHQL_PATH,
    express.json({ limit: config.MAX_JSON_BODY_BYTES }),
    closeAfterMultipart,
    // Each mutation checks its own files' limit; the transport allows the largest of them.
    graphqlUploadExpress({ maxFileSize: Math.max(config.MAX_UPLOAD_BYTES, config.SELECTOR_MAX_BYTES) + 1, maxFiles: config.MAX_UPLOAD_FILES }),
    expressMiddleware(apollo, {
      context: async ({ req, res }): Promise<GraphQLContext> => {
        try {
          const ctx = await authenticate(req.headers.authorization);
          ctx.requestId = (res.locals.requestId as string | undefined) ?? null;
          return { ctx, baseUrl: baseUrlOf(req, config), services };
        } catch (error) {
          noteRequestIdOf(error, res.locals.requestId as string | undefined);
          if (error instanceof RateLimitedError) res.setHeader('Retry-After', String(error.retryAfterSeconds));
          if (error instanceof DomainError) throw toGraphQLError(error);
          // Authentication reads the database: an outage answers 503 SERVICE_UNAVAILABLE, not 500.
          const unavailable = asServiceUnavailable(error);
          if (unavailable) throw toGraphQLError(unavailable);
          throw error;
        }
      },
    }),
  );

  app.use(jsonErrorHandler(exposeDetails));

  await listenOrFail(httpServer, config.PORT, config.HOST);
  const address = httpServer.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  const url = `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${port}`;
  logger.info('api listening', { url: `${url}${GRAPHQL_PATH}` });

  return {
    url,
    graphqlUrl: `${url}${GRAPHQL_PATH}`,
    services,
    httpServer,
    markReady: () => {
      started = true;
    },
    close: async () => {
      await apollo.stop();
      await services.runEvents.stop();
      await services.annotations.events.stop();
      await accessChanges.stop();
      await services.selectors.close();
      await services.encoders.close();
      await closeComputePool();
    },
  };
}
