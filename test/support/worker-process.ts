import { spawn } from 'node:child_process';
import path from 'node:path';
import { PROJECT_ROOT } from './shared-data';
import { ExitState, SpawnedProcess } from './spawned-process';

const TS_NODE = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'ts-node');

/**
 * A real `npm run worker` process (ts-node src/main.ts worker) in a process group of its own, so
 * a test can SIGKILL the whole group as a crash would, or SIGTERM it as an orchestrator does.
 */
export class WorkerProcess extends SpawnedProcess {
  static spawn(env: Record<string, string>): WorkerProcess {
    const child = spawn(TS_NODE, ['--transpile-only', 'src/main.ts', 'worker'], {
      cwd: PROJECT_ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'test', ...env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new WorkerProcess(child, { name: 'worker', maxOutput: 200_000, forgetGroupOnExit: true });
  }

  /** Resolves once the worker printed its ready line; rejects if it exits first or takes too long. */
  async ready(timeoutMs = 30_000): Promise<void> {
    await this.waitFor(/worker ready/, timeoutMs);
  }

  /** Signals the whole process group (ts-node and anything it started). */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.send(signal, true);
  }

  override waitForExit(timeoutMs = 15_000): Promise<ExitState> {
    return super.waitForExit(timeoutMs);
  }

  /** For cleanup: kills the group and waits for the exit, whatever state it is in. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.signal('SIGKILL');
    await this.waitForExit(5_000).catch(() => undefined);
  }
}
