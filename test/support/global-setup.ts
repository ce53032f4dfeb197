import path from 'node:path';
import { startEmbeddedPostgres } from '../../src/platform/embedded-postgres';

/**
 * Tests run against a real Postgres: DATABASE_URL when set (CI uses the machine's server),
 * otherwise an embedded one started here. Each test file then makes its own database on it.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.DATABASE_URL) return;
  const port = Number(process.env.TEST_EMBEDDED_PG_PORT ?? 54330);
  const handle = await startEmbeddedPostgres(path.join(__dirname, '..', '..', '.data', 'test-postgres'), port);
  process.env.DATABASE_URL = handle.url;
  (globalThis as { __embeddedPostgres?: typeof handle }).__embeddedPostgres = handle;
}
