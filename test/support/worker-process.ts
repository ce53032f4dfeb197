import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');
const TS_NODE = path.join(ROOT, 'node_modules', '.bin', 'ts-node');

/** Groups still running; a detached group would outlive a test runner that exits without cleanup. */
const liveGroups = new Set<number>();
process.once('exit', () => {
  for (const pid of liveGroups) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

/**
 * A real `npm run worker` process (ts-node src/main.ts worker) in a process group of its own, so
 * a test can SIGKILL the whole group as a crash would, or SIGTERM it as an orchestrator does.
 */
export class WorkerProcess {
  private output = '';
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private exitState: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  private constructor(private readonly child: ChildProcess) {
    const collect = (chunk: Buffer) => {
      this.output += chunk.toString();
      if (this.output.length > 200_000) this.output = this.output.slice(-100_000);
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    liveGroups.add(child.pid!);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        liveGroups.delete(child.pid!);
        this.exitState = { code, signal };
        resolve(this.exitState);
      });
    });
  }

  static spawn(env: Record<string, string>): WorkerProcess {
    const child = spawn(TS_NODE, ['--transpile-only', 'src/main.ts', 'worker'], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', NODE_ENV: 'test', ...env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new WorkerProcess(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exitState === null;
  }

  /** Everything the process wrote, for failure messages. */
  get log(): string {
    return this.output;
  }

  /** Resolves once the worker printed its ready line; rejects if it exits first or takes too long. */
  async ready(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.output.includes('worker ready')) {
      if (!this.running) throw new Error(`worker exited before it was ready (${JSON.stringify(this.exitState)}):\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`worker not ready after ${timeoutMs} ms:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Signals the whole process group (ts-node and anything it started). */
  signal(signal: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(-this.child.pid!, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }

  async waitForExit(timeoutMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`worker ${this.pid} still running after ${timeoutMs} ms:\n${this.output}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** For cleanup: kills the group and waits for the exit, whatever state it is in. */
  async kill(): Promise<void> {
    if (!this.running) return;
    this.signal('SIGKILL');
    await this.waitForExit(5_000).catch(() => undefined);
  }
}
