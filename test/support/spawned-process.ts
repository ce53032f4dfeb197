import { ChildProcess } from 'node:child_process';

export type ExitState = { code: number | null; signal: NodeJS.Signals | null };

/** Process groups still running; each is killed if the test runner exits without cleaning up. */
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

/** Registers a detached group, so a test runner that exits without cleanup does not leave it behind. */
export function trackGroup(pid: number): void {
  liveGroups.add(pid);
}

export function forgetGroup(pid: number): void {
  liveGroups.delete(pid);
}

export interface SpawnedProcessOptions {
  /** What failure messages call the process ("worker", "npm"). */
  name: string;
  /** The output kept: past this many characters only the newer half stays. */
  maxOutput: number;
  /**
   * Whether the group is forgotten when the spawned process exits. Not for npm: the node process it
   * started may outlive it, so only kill() forgets that group.
   */
  forgetGroupOnExit: boolean;
}

/**
 * A real child process spawned detached, in a process group of its own, for tests that signal it
 * as a supervisor, a terminal or a crash would: its output collected for failure messages, its exit
 * awaited with a time limit, the group killed at cleanup.
 */
export abstract class SpawnedProcess {
  private output = '';
  private exitState: ExitState | null = null;
  private readonly exited: Promise<ExitState>;

  protected constructor(
    protected readonly child: ChildProcess,
    private readonly options: SpawnedProcessOptions,
  ) {
    const collect = (chunk: Buffer) => {
      this.output += chunk.toString();
      if (this.output.length > options.maxOutput) this.output = this.output.slice(-options.maxOutput / 2);
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    trackGroup(child.pid!);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        if (options.forgetGroupOnExit) forgetGroup(child.pid!);
        this.exitState = { code, signal };
        resolve(this.exitState);
      });
    });
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

  /** Resolves with the output once it matches; rejects if the process exits first or it takes too long. */
  async waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const match = pattern.exec(this.output);
      if (match) return match;
      if (!this.running) throw new Error(`${this.options.name} exited (${JSON.stringify(this.exitState)}) before ${pattern}:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`${this.options.name}: no ${pattern} after ${timeoutMs} ms:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async waitForExit(timeoutMs: number): Promise<ExitState> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.options.name} ${this.pid} still running after ${timeoutMs} ms:\n${this.output}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Sends a signal to the process alone (`group: false`) or to its whole group; one already gone is no error. */
  protected send(signal: NodeJS.Signals, group: boolean): void {
    try {
      process.kill(group ? -this.pid : this.pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }
}
