/**
 * An embedded Postgres in a process of its own, for tests that stop and start the database under
 * running services (jest cannot load the ESM-only package in-process). Prints `postgres ready <url>`;
 * SIGTERM stops the server (fast shutdown) and exits.
 * Usage: node -r ./scripts/register-ts.js test/support/postgres-process.ts <dataDir> <port>
 */
import { startEmbeddedPostgres } from '../../src/platform/embedded-postgres';

async function main(): Promise<void> {
  const [dataDir, port] = process.argv.slice(2);
  const handle = await startEmbeddedPostgres(dataDir, Number(port));
  process.once('SIGTERM', () => {
    void handle.stop().finally(() => process.exit(0));
  });
  console.log(`postgres ready ${handle.url}`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
