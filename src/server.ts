import http from 'node:http';
import express, { Request } from 'express';
import cors from 'cors';
import { ApolloServer } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import { graphqlUploadExpress } from 'graphql-upload-minimal';
import { getDistDirectory, renderAltair } from 'altair-static';
import { DataSource } from 'typeorm';
import { AppConfig } from './platform/config';
import { DomainError, formatError, RateLimitedError, toGraphQLError } from './platform/errors';
import { RequestRateLimiter } from './platform/rate-limit';
import { migrationsApplied } from './platform/db';
import { loadSigningSecret, UrlSigner } from './platform/signing';
import { logger } from './platform/logging';
import { AppServices, createServices } from './app-services';
import { buildAppSchema } from './schema';
import { GraphQLContext } from './modules/projects/graphql-context';
import { imageFilesRouter } from './modules/images/image-files.routes';
import { datasetExportsRouter } from './modules/datasets/dataset-exports.routes';
import { attachGraphQLWebSocket } from './websocket';
import { closeComputePool } from './platform/compute-pool';

export interface RunningServer {
  url: string;
  graphqlUrl: string;
  services: AppServices;
  httpServer: http.Server;
  close(): Promise<void>;
}

const GRAPHQL_PATH = '/graphql';

/** Limits on query shape (depth, aliases, tokens, cost) that keep one request from exhausting the service. */
function queryLimits(config: AppConfig, exposeDetails: boolean) {
  return new ApolloArmor({
    maxDepth: { n: config.QUERY_MAX_DEPTH },
    maxAliases: { n: config.QUERY_MAX_ALIASES },
    maxTokens: { n: config.QUERY_MAX_TOKENS },
    costLimit: { maxCost: config.QUERY_MAX_COST },
    maxDirectives: { n: 20 },
    blockFieldSuggestion: { enabled: !exposeDetails },
  }).protect();
}

/** One JSON line per request (health probes excepted): method, path, status, duration. */
function accessLog(req: Request, res: express.Response, next: express.NextFunction): void {
  if (req.path === '/healthz' || req.path === '/readyz') return next();
  const started = process.hrtime.bigint();
  res.on('finish', () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    logger.info('request', { method: req.method, path: req.path, status: res.statusCode, ms: Math.round(ms * 10) / 10 });
  });
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

/** The api process: GraphQL over HTTP and WebSocket on one port, file downloads, health probes. */
export async function startServer(ds: DataSource, config: AppConfig): Promise<RunningServer> {
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
  const wsCleanup = attachGraphQLWebSocket(httpServer, GRAPHQL_PATH, {
    schema,
    validationRules: limits.validationRules,
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
    plugins: [
      ...limits.plugins,
      ApolloServerPluginDrainHttpServer({ httpServer }),
      ApolloServerPluginLandingPageDisabled(),
      // No CDN cache hints here; without the plugin Apollo does not wrap every field resolver.
      ApolloServerPluginCacheControlDisabled(),
      { async serverWillStart() { return { async drainServer() { await wsCleanup.dispose(); } }; } },
    ],
  });
  await apollo.start();
  await services.runEvents.start();

  // Keys travel in the Authorization header, never in cookies, so any allowed origin may call.
  app.use(cors({ origin: config.CORS_ORIGINS, allowedHeaders: ['authorization', 'content-type', 'apollo-require-preflight', 'x-apollo-operation-name'], maxAge: 600 }));
  app.use(accessLog);

  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/readyz', async (_req, res) => {
    try {
      await ds.query('SELECT 1');
      const applied = await migrationsApplied(ds);
      res.status(applied ? 200 : 503).json({ status: applied ? 'ready' : 'migrations pending', database: 'ok' });
    } catch (error) {
      res.status(503).json({ status: 'unavailable', database: String((error as Error).message) });
    }
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

  app.use(
    GRAPHQL_PATH,
    express.json({ limit: '20mb' }),
    closeAfterMultipart,
    // Each mutation checks its own files' limit; the transport allows the largest of them.
    graphqlUploadExpress({ maxFileSize: Math.max(config.MAX_UPLOAD_BYTES, config.SELECTOR_MAX_BYTES) + 1, maxFiles: config.MAX_UPLOAD_FILES }),
    expressMiddleware(apollo, {
      context: async ({ req, res }): Promise<GraphQLContext> => {
        try {
          return { ctx: await authenticate(req.headers.authorization), baseUrl: baseUrlOf(req, config), services };
        } catch (error) {
          if (error instanceof RateLimitedError) res.setHeader('Retry-After', String(error.retryAfterSeconds));
          if (error instanceof DomainError) throw toGraphQLError(error);
          throw error;
        }
      },
    }),
  );

  await new Promise<void>((resolve) => httpServer.listen(config.PORT, config.HOST, resolve));
  const address = httpServer.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  const url = `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${port}`;
  logger.info('api listening', { url: `${url}${GRAPHQL_PATH}` });

  return {
    url,
    graphqlUrl: `${url}${GRAPHQL_PATH}`,
    services,
    httpServer,
    close: async () => {
      await apollo.stop();
      await services.runEvents.stop();
      await services.selectors.close();
      await closeComputePool();
    },
  };
}
