import { DataSource } from 'typeorm';

/** Node socket errors of a database that went away or is not there (yet). */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * Postgres SQLSTATEs of an unavailable server: class 08 (connection exception), 57P01-57P03
 * (admin/crash shutdown, cannot connect now: starting up or shutting down), 53300 (too many connections).
 */
function isUnavailableSqlState(code: string): boolean {
  return code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03' || code === '53300';
}

/** Messages of node-postgres and its pool for a connection that ended or never came. */
const MESSAGES = [/Connection terminated/i, /connection error and is not queryable/i, /timeout exceeded when trying to connect/i, /Client was closed/i, /the database system is (starting up|shutting down)/i];

/**
 * True when an error means "the database is unreachable right now", wherever it was wrapped: TypeORM's
 * QueryFailedError (driverError), an Error's cause, or an AggregateError. Such errors are an outage to
 * wait out and report as SERVICE_UNAVAILABLE, not a bug to report as INTERNAL_SERVER_ERROR.
 */
export function isDatabaseUnavailable(error: unknown, depth = 0): boolean {
  if (!error || typeof error !== 'object' || depth > 5) return false;
  const e = error as { code?: unknown; message?: unknown; driverError?: unknown; cause?: unknown; errors?: unknown; originalError?: unknown };
  if (typeof e.code === 'string' && (SOCKET_CODES.has(e.code) || (/^[0-9A-Z]{5}$/.test(e.code) && isUnavailableSqlState(e.code)))) return true;
  if (typeof e.message === 'string' && MESSAGES.some((m) => m.test(e.message as string))) return true;
  const nested = [e.driverError, e.cause, e.originalError, ...(Array.isArray(e.errors) ? e.errors : [])];
  return nested.some((inner) => inner !== error && isDatabaseUnavailable(inner, depth + 1));
}

const READINESS_TIMEOUT_MS = 2_000;

/**
 * Readiness for /readyz: the database answers within a bound (a blackholed host must not hang the
 * probe) and every migration is applied.
 */
export async function checkReadiness(ds: DataSource, migrationsApplied: (ds: DataSource) => Promise<boolean>): Promise<{ status: number; body: Record<string, string> }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from the database within ${READINESS_TIMEOUT_MS} ms`)), READINESS_TIMEOUT_MS);
  });
  try {
    const applied = await Promise.race([ds.query('SELECT 1').then(() => migrationsApplied(ds)), timeout]);
    return applied ? { status: 200, body: { status: 'ready', database: 'ok' } } : { status: 503, body: { status: 'migrations pending', database: 'ok' } };
  } catch (error) {
    return { status: 503, body: { status: 'unavailable', database: String((error as Error).message) } };
  } finally {
    clearTimeout(timer);
  }
}
