import { logger } from './logging';
import { isDatabaseUnavailable } from './db-availability';

/**
 * Longest a shutdown may take before the process exits anyway, so a supervisor never waits on us:
 * graphile-worker's 5 s for running jobs to finish, then their release, with room to spare.
 */
const SHUTDOWN_TIMEOUT_MS = 15_000;
const PARENT_CHECK_MS = 500;

interface Closer {
  name: string;
  close: () => Promise<void>;
}

/**
 * One bounded way out of a long-lived process, whatever asks for it: SIGTERM/SIGINT/SIGHUP from a
 * supervisor or a terminal, the parent going away (a killed `npm start` re-parents us instead of
 * signalling us), or a start that cannot continue. Parts close in reverse order of registration,
 * so the Postgres this process started stops last, after everything that uses it.
 */
export class ProcessLifecycle {
  private readonly closers: Closer[] = [];
  private shuttingDown: Promise<never> | null = null;

  constructor(private readonly timeoutMs = SHUTDOWN_TIMEOUT_MS) {}

  /** Registers something to close on shutdown; the last registered closes first. */
  onShutdown(name: string, close: () => Promise<void>): void {
    this.closers.push({ name, close });
  }

  /** Signals, parent watch and last-resort error handlers; call once, before starting anything. */
  install(): void {
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => void this.shutdown(signal));
    this.watchParent();
    // A lost database connection surfaces in places nobody awaits (a pool's idle client, a queue
    // timer). It is an outage to ride out, never a reason to exit: readiness and the job runner recover.
    process.on('unhandledRejection', (reason) => {
      logger.error('unhandled rejection', { error: describe(reason), databaseUnavailable: isDatabaseUnavailable(reason) });
    });
    process.on('uncaughtException', (error) => {
      if (isDatabaseUnavailable(error)) return logger.error('database connection error outside any request', { error: describe(error) });
      logger.error('uncaught exception; shutting down', { error: describe(error), stack: error.stack });
      void this.shutdown('uncaughtException', 1);
    });
  }

  /** Closes every part (each bounded by the overall timeout) and exits; later calls join the first. */
  shutdown(reason: string, exitCode = 0): Promise<never> {
    if (this.shuttingDown) {
      // A second Ctrl-C means "now".
      if (reason === 'SIGINT' || reason === 'SIGTERM') logger.warn('second signal during shutdown; still closing', { signal: reason });
      return this.shuttingDown;
    }
    logger.info('shutting down', { reason });
    const force = setTimeout(() => {
      logger.error('shutdown took too long; exiting anyway', { timeoutMs: this.timeoutMs });
      process.exit(exitCode || 1);
    }, this.timeoutMs);
    force.unref();
    this.shuttingDown = (async () => {
      for (const closer of [...this.closers].reverse()) {
        try {
          await closer.close();
        } catch (error) {
          logger.warn('shutdown step failed', { step: closer.name, error: describe(error) });
        }
      }
      logger.info('stopped', { reason });
      process.exit(exitCode);
    })();
    return this.shuttingDown;
  }

  /**
   * npm (and `sh -c`) may die on a signal without passing it on, leaving us re-parented to PID 1
   * (or a subreaper) and still serving. A changed parent pid means whoever started us is gone.
   */
  private watchParent(): void {
    const parent = process.ppid;
    if (parent <= 1) return;
    const timer = setInterval(() => {
      if (process.ppid !== parent) void this.shutdown('parent process exited');
    }, PARENT_CHECK_MS);
    timer.unref();
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
