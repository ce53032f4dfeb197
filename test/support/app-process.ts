import fs from 'node:fs';
import os from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { ChildProcess, spawn, execFileSync } from 'node:child_process';
import { PROJECT_ROOT } from './shared-data';
import { ExitState, forgetGroup, SpawnedProcess, trackGroup } from './spawned-process';

const ROOT = PROJECT_ROOT;

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A fresh data folder that Postgres (its own user when the tests run as root) can enter. */
export function tempDataDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  return dir;
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The postmaster pid of the embedded server of a data folder, or null when it is not running. */
export function postmasterPid(dataDir: string): number | null {
  try {
    const pid = Number(fs.readFileSync(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
    return pid > 0 && processAlive(pid) ? pid : null;
  } catch {
    return null;
  }
}

export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number, log?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs} ms${log ? `\n${log()}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A real `npm start` / `npm run worker` / `npm run cli -- ...` in a process group of its own. Signals
 * go to the npm process only, as a supervisor or a terminal's Ctrl-C through npm sends them.
 */
export class NpmProcess extends SpawnedProcess {
  /** `args` as after `npm`: ['start'], ['run', 'worker'], ['run', 'cli', '--', 'import', ...]. */
  static spawn(args: string[], env: Record<string, string | undefined>): NpmProcess {
    const base: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'test', LOG_LEVEL: 'info', ...env };
    for (const [name, value] of Object.entries(env)) if (value === undefined) delete base[name];
    const child = spawn('npm', ['--silent', ...args], { cwd: ROOT, env: base, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    return new NpmProcess(child, { name: 'npm', maxOutput: 400_000, forgetGroupOnExit: false });
  }

  /** The node process npm started (its child), or null once there is none. */
  nodePid(): number | null {
    try {
      const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(this.pid)], { encoding: 'utf8' });
      const line = out.split('\n').find((l) => /\bnode\b.*src\/main\.ts/.test(l));
      return line ? Number(line.trim().split(/\s+/)[0]) : null;
    } catch {
      return null;
    }
  }

  override waitFor(pattern: RegExp, timeoutMs = 90_000): Promise<RegExpExecArray> {
    return super.waitFor(pattern, timeoutMs);
  }

  /** Signals the npm process alone. */
  signal(signal: NodeJS.Signals): void {
    this.send(signal, false);
  }

  override waitForExit(timeoutMs = 30_000): Promise<ExitState> {
    return super.waitForExit(timeoutMs);
  }

  /** For cleanup: the whole group, whatever state it is in. */
  async kill(): Promise<void> {
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch {
      // gone
    }
    forgetGroup(this.pid);
    if (this.running) await this.waitForExit(5_000).catch(() => undefined);
  }
}

/** Stops a Postgres left behind by a failed test (fast shutdown), so that nothing outlives the run. */
export function stopLeftoverPostgres(dataDir: string): void {
  const pid = postmasterPid(dataDir);
  if (pid) {
    try {
      process.kill(pid, 'SIGINT');
    } catch {
      // gone
    }
  }
}

/** A real embedded Postgres owned by a process of its own, which a test stops and starts at will. */
export class PostgresProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly url: string,
    private readonly dataDir: string,
  ) {}

  static async start(dataDir: string, port: number): Promise<PostgresProcess> {
    const child = spawn(process.execPath, ['-r', './scripts/register-ts.js', 'test/support/postgres-process.ts', dataDir, String(port)], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'warn' },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    trackGroup(child.pid!);
    let output = '';
    const url = await new Promise<string>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const match = /postgres ready (\S+)/.exec(output);
        if (match) resolve(match[1]);
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('exit', (code) => reject(new Error(`postgres process exited with ${code}:\n${output}`)));
    });
    return new PostgresProcess(child, url, dataDir);
  }

  /**
   * Immediate shutdown (SIGQUIT to the postmaster), as a crash: no checkpoint, the next start runs
   * crash recovery. The owning process is then killed too, as if the machine had lost both.
   */
  async crash(): Promise<void> {
    const pid = Number(fs.readFileSync(path.join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    process.kill(pid, 'SIGQUIT');
    await waitUntil('postmaster gone after SIGQUIT', () => !processAlive(pid), 10_000);
    const exited = new Promise((r) => this.child.once('exit', r));
    process.kill(-this.child.pid!, 'SIGKILL');
    await exited;
    forgetGroup(this.child.pid!);
  }

  /** Fast shutdown, as `pg_ctl stop` does: sessions are terminated, the server exits. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
    forgetGroup(this.child.pid!);
  }
}
