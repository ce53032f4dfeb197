/**
 * Database outage errors, however they are wrapped, reach clients as SERVICE_UNAVAILABLE and not as
 * a masked INTERNAL_SERVER_ERROR; anything else is still masked. Real errors from a real pg client
 * against a port where nothing listens, and from TypeORM over it.
 */
import net from 'node:net';
import { GraphQLError } from 'graphql';
import { Client } from 'pg';
import { DataSource, QueryFailedError } from 'typeorm';
import { isDatabaseUnavailable } from '../../src/platform/db-availability';
import { formatError } from '../../src/platform/errors';
import { setLogLevel } from '../../src/platform/logging';

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** What a resolver's failure looks like to Apollo's formatError. */
function asResolverError(original: Error): GraphQLError {
  return new GraphQLError(original.message, { originalError: original, path: ['viewer'] });
}

describe('database outage errors', () => {
  beforeAll(() => setLogLevel('silent'));

  it('recognises a refused connection from pg and from TypeORM, and a server shutting down', async () => {
    const port = await closedPort();
    const refused = await new Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` }).connect().catch((e: Error) => e);
    expect(isDatabaseUnavailable(refused)).toBe(true);

    const ds = new DataSource({ type: 'postgres', url: `postgres://postgres@127.0.0.1:${port}/postgres` });
    const fromTypeorm = await ds.initialize().catch((e: Error) => e);
    expect(isDatabaseUnavailable(fromTypeorm)).toBe(true);

    const shutdown = new QueryFailedError('SELECT 1', [], Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }));
    expect(isDatabaseUnavailable(shutdown)).toBe(true);
    expect(isDatabaseUnavailable(new AggregateError([new Error('x'), new Error('Connection terminated unexpectedly')]))).toBe(true);
  });

  it('leaves other database errors alone', () => {
    const uniqueViolation = new QueryFailedError('INSERT', [], Object.assign(new Error('duplicate key value'), { code: '23505' }));
    expect(isDatabaseUnavailable(uniqueViolation)).toBe(false);
    expect(isDatabaseUnavailable(new TypeError('x is undefined'))).toBe(false);
  });

  it('formats an outage in a resolver as SERVICE_UNAVAILABLE, a bug still as INTERNAL_SERVER_ERROR', async () => {
    const format = formatError(false);
    const port = await closedPort();
    const refused = (await new Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` }).connect().catch((e: Error) => e)) as Error;
    const outage = format({ message: refused.message, path: ['viewer'] }, asResolverError(refused));
    expect(outage).toMatchObject({ message: 'The database is unavailable; retry shortly', path: ['viewer'], extensions: { code: 'SERVICE_UNAVAILABLE' } });

    const bug = format({ message: 'x is undefined', path: ['viewer'] }, asResolverError(new TypeError('x is undefined')));
    expect(bug).toMatchObject({ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } });
  });
});
