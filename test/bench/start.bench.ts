/**
 * npm run bench:start — wall time of `npm start` as a user sees it: from spawning the command to the
 * first 200 from /readyz, on a second start (embedded Postgres initialised, compile cache warm).
 * Reference, measured in the same run on the same data folder: the same start through
 * `ts-node --transpile-only` (how `npm start` ran before), which compiles every file at every start.
 * Each figure is the median of BENCH_RUNS starts (default 3); every start is stopped with SIGTERM to
 * npm and must leave nothing running.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { freePort, NpmProcess, postmasterPid, tempDataDir, waitUntil } from '../support/app-process';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const ROOT = path.join(__dirname, '..', '..');

interface Started {
  stop(): Promise<void>;
}

async function timeToReady(port: number, start: () => Started): Promise<{ ms: number; started: Started }> {
  const t0 = performance.now();
  const started = start();
  await waitUntil('first 200 from /readyz', async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.status === 200, 120_000);
  return { ms: performance.now() - t0, started };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function main(): Promise<void> {
  const dataDir = tempDataDir('bmv-bench-start-');
  const port = await freePort();
  const env = { DATABASE_URL: undefined, PORT: String(port), EMBEDDED_PG_PORT: String(await freePort()), DATA_DIR: dataDir, LOG_LEVEL: 'warn' };

  const viaNpm = (): Started => {
    const p = NpmProcess.spawn(['start'], env);
    return {
      stop: async () => {
        p.signal('SIGTERM');
        await p.waitForExit(30_000);
        await waitUntil('Postgres stopped', () => postmasterPid(dataDir) === null, 10_000);
      },
    };
  };
  const viaTsNode = (): Started => {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, NODE_ENV: 'test' };
    delete childEnv.DATABASE_URL;
    const child = spawn(path.join(ROOT, 'node_modules', '.bin', 'ts-node'), ['--transpile-only', 'src/main.ts', 'serve'], { cwd: ROOT, env: childEnv, stdio: 'ignore' });
    return {
      stop: async () => {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
        await waitUntil('Postgres stopped', () => postmasterPid(dataDir) === null, 10_000);
      },
    };
  };

  try {
    // The first start initialises Postgres, migrates, seeds and fills the compile cache: not measured.
    const first = await timeToReady(port, viaNpm);
    await first.started.stop();
    console.log(`first start (initialises everything): ${(first.ms / 1000).toFixed(1)} s`);

    const npmTimes: number[] = [];
    const tsNodeTimes: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      for (const [times, start] of [
        [npmTimes, viaNpm],
        [tsNodeTimes, viaTsNode],
      ] as const) {
        const run = await timeToReady(port, start);
        times.push(run.ms);
        await run.started.stop();
      }
    }
    const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
    console.log(`npm start, second start, command to first /readyz 200: median ${fmt(median(npmTimes))} (runs: ${npmTimes.map(fmt).join(', ')})`);
    console.log(`reference, ts-node --transpile-only (the former npm start): median ${fmt(median(tsNodeTimes))} (runs: ${tsNodeTimes.map(fmt).join(', ')})`);
    console.log(`target: <= 5 s; ${median(npmTimes) <= 5000 ? 'met' : 'NOT met'} on this machine now (load: ${fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')})`);
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
