import { GraphQLError, GraphQLFormattedError } from 'graphql';
import { unwrapResolverError } from '@apollo/server/errors';
import { ArgumentValidationError } from 'type-graphql';
import { logger } from './logging';
import { isDatabaseUnavailable } from './db-availability';

/** The error codes clients can rely on (DESIGN.md §4). */
export enum ErrorCode {
  UNAUTHENTICATED = 'UNAUTHENTICATED',
  FORBIDDEN = 'FORBIDDEN',
  NOT_FOUND = 'NOT_FOUND',
  BAD_USER_INPUT = 'BAD_USER_INPUT',
  CONFLICT = 'CONFLICT',
  RATE_LIMITED = 'RATE_LIMITED',
  LLM_UNAVAILABLE = 'LLM_UNAVAILABLE',
  /** The database is unreachable for now (an outage); the same request may succeed shortly. */
  SERVICE_UNAVAILABLE = 'SERVICE_UNAVAILABLE',
  INTERNAL_SERVER_ERROR = 'INTERNAL_SERVER_ERROR',
}

const httpStatus: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.UNAUTHENTICATED]: 401,
  [ErrorCode.FORBIDDEN]: 403,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.BAD_USER_INPUT]: 400,
  [ErrorCode.CONFLICT]: 409,
  [ErrorCode.RATE_LIMITED]: 429,
  [ErrorCode.LLM_UNAVAILABLE]: 503,
  [ErrorCode.SERVICE_UNAVAILABLE]: 503,
};

/** A failure the domain expects and names; mapped once to a GraphQL error or an HTTP status. */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'DomainError';
  }

  get httpStatus(): number {
    return httpStatus[this.code] ?? 500;
  }
}

/** Too many requests for one API key; the client may retry after `retryAfterSeconds`. */
export class RateLimitedError extends DomainError {
  constructor(readonly retryAfterSeconds: number) {
    super(ErrorCode.RATE_LIMITED, `Too many requests; retry after ${retryAfterSeconds} s`);
  }
}

const extraExtensions = (error: DomainError) => (error instanceof RateLimitedError ? { retryAfterSeconds: error.retryAfterSeconds } : {});

export const notFound = (what: string) => new DomainError(ErrorCode.NOT_FOUND, `${what} not found`);
export const badInput = (message: string, field?: string) => new DomainError(ErrorCode.BAD_USER_INPUT, message, field);

/** A database outage becomes SERVICE_UNAVAILABLE (retry shortly) instead of a masked internal error; null for other errors. */
export function asServiceUnavailable(error: unknown): DomainError | null {
  return isDatabaseUnavailable(error) ? new DomainError(ErrorCode.SERVICE_UNAVAILABLE, 'The database is unavailable; retry shortly') : null;
}

export function toGraphQLError(error: DomainError): GraphQLError {
  return new GraphQLError(error.message, {
    extensions: { code: error.code, ...(error.field ? { field: error.field } : {}), ...extraExtensions(error), http: { status: error.httpStatus } },
  });
}

const passThroughCodes = new Set<string>([
  ...Object.values(ErrorCode),
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'OPERATION_RESOLUTION_FAILURE',
]);

/**
 * The request id of a GraphQL error, noted by the server's `tagErrorsWithRequestId` plugin (or its
 * context function) before Apollo formats the error: formatError has no context, and the api keeps
 * no AsyncLocalStorage scope per request (see platform/logging.ts).
 */
const errorRequestIds = new WeakMap<object, string>();

export function noteRequestIdOf(error: unknown, requestId: string | null | undefined): void {
  if (!requestId || !error || typeof error !== 'object') return;
  errorRequestIds.set(error, requestId);
  const original = (error as { originalError?: unknown }).originalError;
  if (original && typeof original === 'object') errorRequestIds.set(original, requestId);
}

function requestIdOf(error: unknown, original: unknown): string | undefined {
  const wrapped = (error as { originalError?: unknown })?.originalError;
  for (const e of [error, original, wrapped]) if (e && typeof e === 'object' && errorRequestIds.has(e)) return errorRequestIds.get(e);
  return undefined;
}

/**
 * Apollo's formatError: domain errors keep their code, validation errors become BAD_USER_INPUT with
 * the failing fields, anything else is logged and masked so that no stack or SQL reaches a client.
 */
export function formatError(exposeDetails: boolean) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = asServiceUnavailable(unwrapResolverError(error)) ?? unwrapResolverError(error);
    if (original instanceof DomainError) {
      const extensions = { code: original.code, ...(original.field ? { field: original.field } : {}), ...extraExtensions(original) };
      return { message: original.message, path: formatted.path, locations: formatted.locations, extensions };
    }
    if (original instanceof ArgumentValidationError) {
      const fields = original.extensions.validationErrors.map((v) => ({
        field: v.property,
        messages: Object.values(v.constraints ?? {}),
      }));
      return { message: 'Invalid input', path: formatted.path, locations: formatted.locations, extensions: { code: ErrorCode.BAD_USER_INPUT, fields } };
    }
    const code = String(formatted.extensions?.code ?? '');
    if (passThroughCodes.has(code) && code !== ErrorCode.INTERNAL_SERVER_ERROR) {
      const { stacktrace: _drop, ...extensions } = formatted.extensions ?? {};
      return { ...formatted, extensions };
    }
    logger.error('unexpected error', { requestId: requestIdOf(error, original), message: (original as Error)?.message, stack: (original as Error)?.stack, path: formatted.path });
    return {
      message: exposeDetails ? formatted.message : 'Internal server error',
      path: formatted.path,
      locations: formatted.locations,
      extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR },
    };
  };
}
