import path from 'node:path';
import { startEmbeddedPostgres } from '../../src/platform/embedded-postgres';

/**
 * The Postgres a benchmark runs against: `DATABASE_URL` when set, else an embedded server of its
 * own (`.data/bench-postgres`). Returns how to stop what it started.
 */
export async function benchDatabase(): Promise<() => Promise<void>> {
  if (process.env.DATABASE_URL) return async () => undefined;
  const pg = await startEmbeddedPostgres(path.resolve(__dirname, '..', '..', '.data', 'bench-postgres'), 54331);
  process.env.DATABASE_URL = pg.url;
  return pg.stop;
}
