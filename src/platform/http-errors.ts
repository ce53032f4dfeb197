import type { NextFunction, Request, Response } from 'express';
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import type { Logger } from '@apollo/utils.logger';
import { logger } from './logging';

/**
 * The HTTP edge: every refusal is a JSON body in the GraphQL response shape with
 * `extensions.code` and the status of the GraphQL-over-HTTP spec, never an HTML page or a stack.
 */

export interface EdgeError {
  status: number;
  code: string;
  message: string;
}

/** A refused request, for the access log line (one line per request, no stack). */
export const EDGE_ERROR = 'edgeError';

interface HttpLikeError {
  status?: number;
  statusCode?: number;
  type?: string;
  expose?: boolean;
  message?: string;
  stack?: string;
}

/** What the client did wrong, from the errors of body-parser (express.json) and graphql-upload-minimal. */
export function classifyHttpError(error: unknown, exposeDetails: boolean): EdgeError {
  const e = (error ?? {}) as HttpLikeError;
  const status = e.status ?? e.statusCode ?? 500;
  if (e.type === 'entity.parse.failed') return { status: 400, code: 'BAD_REQUEST', message: 'The request body is not valid JSON' };
  if (e.type === 'entity.too.large') return { status: 413, code: 'PAYLOAD_TOO_LARGE', message: e.message ?? 'Request body too large' };
  if (status === 413) return { status: 413, code: 'PAYLOAD_TOO_LARGE', message: e.message ?? 'Request too large' };
  // 499: the client went away during a multipart upload; nobody reads the answer, but it is not our fault.
  if (status >= 400 && status < 500) return { status: status === 499 ? 400 : status, code: 'BAD_REQUEST', message: e.expose === false ? 'Bad request' : (e.message ?? 'Bad request') };
  return { status: 500, code: 'INTERNAL_SERVER_ERROR', message: exposeDetails && e.message ? e.message : 'Internal server error' };
}

/**
 * The last express middleware: errors raised before Apollo (malformed JSON, a body over the limit,
 * a bad multipart map, too many files) become GraphQL-shaped JSON. Client errors are noted on the
 * access log line; only a server fault is logged with its stack, as one JSON line.
 */
export function jsonErrorHandler(exposeDetails: boolean) {
  return (error: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const refusal = classifyHttpError(error, exposeDetails);
    res.locals[EDGE_ERROR] = refusal;
    if (refusal.status >= 500) logger.error('unexpected error', { requestId: res.locals.requestId, method: req.method, path: req.path, message: (error as Error)?.message, stack: (error as Error)?.stack });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    afterRequestBody(req, () => {
      if (!res.headersSent) res.status(refusal.status).json({ errors: [{ message: refusal.message, extensions: { code: refusal.code } }] });
    });
  };
}

/** How long a refused request's unread body is read and thrown away before the answer goes out regardless. */
const DRAIN_MS = 5_000;

/**
 * Answers once the client has finished sending: a multipart request refused mid-body (a bad map,
 * too many files) still has bytes on the way, and answering then closing the connection under a
 * client that is still writing makes it see EPIPE or a reset instead of our JSON error. The rest
 * of the body is read and discarded, for at most DRAIN_MS.
 */
function afterRequestBody(req: Request, respond: () => void): void {
  if (req.complete || req.readableEnded || req.destroyed) return respond();
  let answered = false;
  const answer = () => {
    if (answered) return;
    answered = true;
    clearTimeout(timer);
    respond();
  };
  const timer = setTimeout(answer, DRAIN_MS);
  timer.unref();
  req.once('end', answer);
  req.once('close', answer);
  req.once('error', answer);
  req.resume();
}

/**
 * Whether the client asked for the legacy `application/json` response media type explicitly (and
 * prefers it to `application/graphql-response+json`). Without an Accept header, or with `*\/*`, the
 * spec lets the server answer request errors with 4xx, which is what clients most need.
 */
export function prefersLegacyJson(accept: string | undefined): boolean {
  if (!accept) return false;
  let json = -1;
  let graphqlResponse = -1;
  for (const part of accept.split(',')) {
    const [type, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const quality = q ? Number(q.slice(2)) : 1;
    if (type.trim() === 'application/json') json = Math.max(json, quality);
    if (type.trim() === 'application/graphql-response+json') graphqlResponse = Math.max(graphqlResponse, quality);
  }
  return json > 0 && json >= graphqlResponse;
}

/** Errors of a request that never reached execution: parse, validation, limits, variable coercion. */
const REQUEST_ERROR_CODES = new Set(['GRAPHQL_PARSE_FAILED', 'GRAPHQL_VALIDATION_FAILED', 'BAD_USER_INPUT']);

/**
 * GraphQL over HTTP status codes. Apollo answers 400 to a document that does not parse or validate
 * whatever the client accepts; the spec asks for 200 when the client accepts only the legacy
 * `application/json` (its clients read errors from the body), and 400 with
 * `application/graphql-response+json`.
 */
export function graphqlOverHttpStatusPlugin<T extends BaseContext>(): ApolloServerPlugin<T> {
  return {
    async requestDidStart({ request }) {
      return {
        async willSendResponse({ response, errors }) {
          if (response.http.status !== 400 || response.body.kind !== 'single') return;
          const result = response.body.singleResult;
          if ('data' in result && result.data !== undefined) return;
          if (!errors?.length || !errors.every((e) => REQUEST_ERROR_CODES.has(String(e.extensions?.code)))) return;
          if (prefersLegacyJson(request.http?.headers.get('accept'))) response.http.status = 200;
        },
      };
    },
  };
}

/** Apollo's own log messages as JSON lines, like everything else the process writes. */
export const apolloLogger: Logger = {
  debug: (message) => logger.debug(String(message), { source: 'apollo' }),
  info: (message) => logger.info(String(message), { source: 'apollo' }),
  warn: (message) => logger.warn(String(message), { source: 'apollo' }),
  error: (message) => logger.error(String(message), { source: 'apollo' }),
};
