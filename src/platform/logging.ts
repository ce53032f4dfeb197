import crypto from 'node:crypto';
import { AsyncLocalStorage } from 'node:async_hooks';

type Level = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const order: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

let threshold: Level = (process.env.LOG_LEVEL as Level) in order ? (process.env.LOG_LEVEL as Level) : 'info';

export function setLogLevel(level: Level): void {
  threshold = level;
}

/**
 * The request id of a worker's job in progress (the id of the request that queued it), so that
 * every line logged inside carries the same `requestId` without each call passing it.
 *
 * Only the worker enters this scope. The api does not: once any AsyncLocalStorage has been entered,
 * Node 20 runs its promise hooks on every promise of the process, and the GraphQL read path makes
 * thousands of promises per request (about a tenth of its CPU in an A/B). On the api's path the
 * request id travels explicitly instead: `ctx.requestId` in services, `res.locals.requestId` in
 * express routes, and a `requestId` field on the few lines logged there (the access line, unexpected
 * errors, a failed export or run announcement). A line that passes `requestId` in its fields wins
 * over the scope's.
 */
const requestScope = new AsyncLocalStorage<{ requestId: string }>();

export function withRequestId<T>(requestId: string | null | undefined, work: () => T): T {
  return requestId ? requestScope.run({ requestId }, work) : work();
}

export function currentRequestId(): string | null {
  return requestScope.getStore()?.requestId ?? null;
}

/** Letters, digits and `._:-`, at most 128: a client's id is kept only when it cannot forge a log line. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The caller's `x-request-id` when it is a sane token, else a new one. */
export function requestIdFrom(header: string | string[] | undefined): string {
  const given = Array.isArray(header) ? header[0] : header;
  return given && SANE_REQUEST_ID.test(given) ? given : crypto.randomUUID();
}

export function isSaneRequestId(value: unknown): value is string {
  return typeof value === 'string' && SANE_REQUEST_ID.test(value);
}

function write(level: Level, message: string, fields?: Record<string, unknown>): void {
  if (order[level] < order[threshold]) return;
  const requestId = (fields?.requestId as string | null | undefined) || currentRequestId();
  const line = JSON.stringify({ time: new Date().toISOString(), level, message, ...fields, ...(requestId ? { requestId } : {}) });
  (level === 'error' || level === 'warn' ? process.stderr : process.stdout).write(line + '\n');
}

export const logger = {
  debug: (m: string, f?: Record<string, unknown>) => write('debug', m, f),
  info: (m: string, f?: Record<string, unknown>) => write('info', m, f),
  warn: (m: string, f?: Record<string, unknown>) => write('warn', m, f),
  error: (m: string, f?: Record<string, unknown>) => write('error', m, f),
};
