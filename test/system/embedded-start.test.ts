import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { spawn, ChildProcess } from 'node:child_process';
import { gql } from '../support/graphql-client';
import { PROJECT_ROOT } from '../support/shared-data';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`timed out; output so far:\n${output}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (pattern.test(output)) {
        clearTimeout(timer);
        resolve(output);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`exited with ${code}:\n${output}`)));
  });
}

/** `npm start` without DATABASE_URL: embedded Postgres, migrations, demo seed, a working dev key. */
describe('single-process start on the embedded database', () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bmv-start-'));
  // Postgres runs as its own user when the tests run as root: it must be able to enter the folder.
  fs.chmodSync(dataDir, 0o755);
  let child: ChildProcess;
  let ports: { port: number; pgPort: number };
  const pidFile = () => path.join(dataDir, 'postgres', 'postmaster.pid');

  function start(): ChildProcess {
    const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(ports.port), EMBEDDED_PG_PORT: String(ports.pgPort), DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
    delete env.DATABASE_URL;
    return spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/main.ts', 'serve'], { cwd: PROJECT_ROOT, env });
  }

  async function stop(signal: NodeJS.Signals): Promise<void> {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
  }

  afterAll(async () => {
    if (child && child.exitCode === null) await stop('SIGTERM');
    // A server left behind by a failed test must not outlive the run.
    if (fs.existsSync(pidFile())) {
      const pid = Number(fs.readFileSync(pidFile(), 'utf8').split('\n')[0]);
      try {
        process.kill(pid, 'SIGINT');
      } catch {
        /* already gone */
      }
    }
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('starts, prints a working development key, serves the seeded demo, and stops its Postgres on SIGTERM', async () => {
    ports = { port: await freePort(), pgPort: await freePort() };
    const port = ports.port;
    child = start();
    const output = await waitForOutput(child, /Dev key:\s+(bmv_\S+)/, 90_000);
    const key = /Dev key:\s+(bmv_\S+)/.exec(output)![1];
    expect(fs.readFileSync(path.join(dataDir, 'dev-api-key'), 'utf8').trim()).toBe(key);

    const res = await gql(`http://127.0.0.1:${port}/graphql`, key, '{ viewer { role project { slug } } images(first: 10) { totalCount } demonstrations(first: 10) { totalCount } selectorModels(first: 1, activeOnly: true) { edges { node { name version } } } }');
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({
      viewer: { role: 'OWNER', project: { slug: 'demo' } },
      images: { totalCount: 3 },
      demonstrations: { totalCount: 1 },
      selectorModels: { edges: [{ node: { name: 'reference', version: 1 } }] },
    });
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    const ide = await fetch(`http://127.0.0.1:${port}/ide/`);
    expect(ide.status).toBe(200);
    expect(await ide.text()).not.toMatch(/https?:\/\/(cdn|unpkg|cdnjs|jsdelivr)/);

    await stop('SIGTERM');
    expect(fs.existsSync(pidFile())).toBe(false);
  }, 120_000);

  it('starts again over a stale postmaster.pid left by a crash, keeping its data and key', async () => {
    const key = fs.readFileSync(path.join(dataDir, 'dev-api-key'), 'utf8').trim();
    fs.writeFileSync(pidFile(), '2147483646\n' + path.join(dataDir, 'postgres') + '\n');
    child = start();
    await waitForOutput(child, /ready in/, 90_000);
    const res = await gql(`http://127.0.0.1:${ports.port}/graphql`, key, '{ images(first: 10) { totalCount } }');
    expect(res.data).toEqual({ images: { totalCount: 3 } });
    await stop('SIGTERM');
  }, 120_000);

  it('reuses the Postgres a hard-killed process left running', async () => {
    child = start();
    await waitForOutput(child, /ready in/, 90_000);
    await stop('SIGKILL');
    const orphan = Number(fs.readFileSync(pidFile(), 'utf8').split('\n')[0]);
    expect(() => process.kill(orphan, 0)).not.toThrow();

    child = start();
    await waitForOutput(child, /ready in/, 90_000);
    const key = fs.readFileSync(path.join(dataDir, 'dev-api-key'), 'utf8').trim();
    expect((await gql(`http://127.0.0.1:${ports.port}/graphql`, key, '{ viewer { role } }')).data).toEqual({ viewer: { role: 'OWNER' } });
    await stop('SIGTERM');
    // The process that adopted the orphan also stops it.
    expect(() => process.kill(orphan, 0)).toThrow();
    expect(fs.existsSync(pidFile())).toBe(false);
  }, 120_000);
});
