/**
 * npm run bench:load — the read API under a fixed offered load (issue 14).
 *
 * Seeds a project (LOAD_IMAGES images, each with two candidates, each candidate with two scores),
 * starts the api with a worker in this process (as `npm start` runs), and drives it from a child
 * process (test/bench/load-client.ts) with an OPEN-LOOP client: requests leave at a fixed rate
 * whether or not earlier ones have returned, over keep-alive connections, and each latency is
 * measured from the moment the request was due, so a server that falls behind shows it in the
 * tail instead of slowing the client down (no coordinated omission).
 *
 * The request: a page of 20 images with their nested candidates (rounds, status, scores).
 * For each offered rate (LOAD_RATES, default 100 then 200 requests/s) it runs LOAD_DURATION_S
 * seconds (default 60) and prints completed requests/s, latency p50/p90/p99/max, errors, and the
 * api process's CPU per request. The highest completed rate is the api's rate at saturation when
 * it stays below what was offered.
 *
 *   npm run bench:load                                  # 60 s at 100/s, then 60 s at 200/s
 *   LOAD_DURATION_S=10 LOAD_RATES=50,100 npm run bench:load   # a quick run
 */
import 'reflect-metadata';
import os from 'node:os';
import path from 'node:path';
import { fork } from 'node:child_process';
import { benchDatabase } from './bench-database';
import { Image } from '../../src/modules/images/image.entity';
import { ImageSource, Modality } from '../../src/modules/images/modality';
import { Candidate, CandidateStatus } from '../../src/modules/candidates/candidate.entity';
import { SelectorModel } from '../../src/modules/selectors/selector-model.entity';
import { Score } from '../../src/modules/scoring/score.entity';
import { startTestApp, createTestProject } from '../support/test-app';
import type { LoadPhaseResult, LoadPlan } from './load-client';

const IMAGES = Number(process.env.LOAD_IMAGES ?? 2000);
const RATES = (process.env.LOAD_RATES ?? '100,200').split(',').map(Number);
const DURATION_S = Number(process.env.LOAD_DURATION_S ?? 60);
const MAX_IN_FLIGHT = Number(process.env.LOAD_MAX_IN_FLIGHT ?? 2000);

export const LOAD_QUERY = `query($after: String) { images(first: 20, after: $after) { pageInfo { endCursor hasNextPage }
  edges { node { id caption modalities thumbnailUrl candidateCount
    candidates(first: 5) { totalCount edges { node { id status rounds { question answer } scores(first: 2) { edges { node { value } } } } } } } } } }`;

async function main(): Promise<void> {
  const stopDatabase = await benchDatabase();
  const app = await startTestApp({ RATE_LIMIT_PER_MINUTE: '0' }, { worker: true });
  try {
    const lab = await createTestProject(app, 'load-lab');
    const ds = app.ds;
    const seedStarted = Date.now();
    const selectors = await ds.getRepository(SelectorModel).save(
      ['a', 'b'].map((name) => ({ projectId: lab.id, name, version: 1, filesHash: '0'.repeat(64), manifest: {}, metrics: null, active: name === 'a' })),
    );
    const modalities = [[Modality.CT], [Modality.MRI], [Modality.CHEST_XRAY], [Modality.HISTOLOGY]];
    const images = await ds.getRepository(Image).save(
      Array.from({ length: IMAGES }, (_, i) => ({ projectId: lab.id, source: ImageSource.IMPORT, pairId: `l_${i}`, caption: `Figure ${i}: a load-test caption with some words`, mentions: [`Figure ${i} shows it.`], modalities: modalities[i % 4] })),
      { chunk: 500 },
    );
    const candidates = await ds.getRepository(Candidate).save(
      images.flatMap((image, i) =>
        [0, 1].map((k) => ({ projectId: lab.id, imageId: image.id, sampleIndex: k, status: CandidateStatus.OK, rounds: [{ question: `Q${i}.${k}?`, answers: [`A${i}.${k}.`] }, { question: 'And?', answers: ['Yes.'] }] })),
      ),
      { chunk: 500 },
    );
    await ds.getRepository(Score).save(
      candidates.flatMap((c, i) => selectors.map((sel, k) => ({ projectId: lab.id, candidateId: c.id, selectorModelId: sel.id, value: ((i * 37 + k * 11) % 1000) / 1000 }))),
      { chunk: 500 },
    );
    console.log(`seeded ${IMAGES} images, ${candidates.length} candidates, ${candidates.length * 2} scores in ${((Date.now() - seedStarted) / 1000).toFixed(1)} s`);

    // Cursors of the first pages, so that requests read different rows (and a warm-up).
    const key = lab.keys.VIEWER;
    const cursors: (string | null)[] = [null];
    for (let i = 0; i < Math.min(20, IMAGES / 20 - 1); i++) {
      const res = await fetch(app.graphqlUrl, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ query: LOAD_QUERY, variables: { after: cursors[i] } }) });
      const body = (await res.json()) as { data?: { images: { pageInfo: { endCursor: string } } }; errors?: unknown };
      if (!body.data) throw new Error(`warm-up failed: ${JSON.stringify(body.errors)}`);
      cursors.push(body.data.images.pageInfo.endCursor);
    }

    const plan: LoadPlan = { url: app.graphqlUrl, key, query: LOAD_QUERY, variables: cursors.map((after) => ({ after })), rates: RATES, durationS: DURATION_S, maxInFlight: MAX_IN_FLIGHT };
    const client = fork(path.join(__dirname, 'load-client.ts'), [], { execArgv: ['-r', path.join(__dirname, '..', '..', 'scripts', 'register-ts.js')], stdio: 'inherit' });
    const results: LoadPhaseResult[] = [];
    await new Promise<void>((resolve, reject) => {
      let cpu = process.cpuUsage();
      client.on('message', (message: { kind: 'phase-start' } | { kind: 'phase'; result: LoadPhaseResult } | { kind: 'done' }) => {
        if (message.kind === 'phase-start') cpu = process.cpuUsage();
        if (message.kind === 'phase') {
          const used = process.cpuUsage(cpu);
          const result = { ...message.result, apiCpuMsPerRequest: (used.user + used.system) / 1000 / Math.max(1, message.result.completed), loadAverage: os.loadavg()[0] };
          results.push(result);
          printPhase(result);
        }
        if (message.kind === 'done') resolve();
      });
      client.on('error', reject);
      client.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`load client exited with ${code}`))));
      client.send(plan);
    });

    const saturated = results.filter((r) => r.completedPerSecond < r.offered * 0.95);
    const best = Math.max(...results.map((r) => r.completedPerSecond));
    console.log(`\nread API under load: a page of 20 images with nested candidates, open loop, ${DURATION_S} s per rate, api + worker in one process`);
    console.log(`  ${saturated.length ? `saturation: ${best.toFixed(1)} requests/s completed (offered ${saturated.map((r) => r.offered).join(', ')}/s was more than it could serve)` : `not saturated: every offered rate (${RATES.join(', ')}/s) was served; the highest completed ${best.toFixed(1)} requests/s`}`);
    const at100 = results.find((r) => r.offered === 100);
    if (at100) console.log(`  at 100 requests/s offered: p50 ${ms(at100.p50)}, p99 ${ms(at100.p99)} (goal p99 < 250 ms)`);
    console.log(`  load average (1 min): ${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} CPUs; peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB (api + worker process)`);
  } finally {
    await app.stop();
    await stopDatabase();
  }
}

/** Milliseconds with one decimal; n/a when nothing completed (NaN crosses the IPC channel as null). */
const ms = (x: number | null) => (x == null || Number.isNaN(x) ? 'n/a' : `${x.toFixed(1)} ms`);

function printPhase(r: LoadPhaseResult & { apiCpuMsPerRequest: number; loadAverage: number }): void {
  console.log(
    `  offered ${r.offered}/s for ${r.durationS} s: completed ${r.completedPerSecond.toFixed(1)}/s (${r.completed} ok, ${r.errors} errors, ${r.shed} not sent: ${MAX_IN_FLIGHT} in flight), ` +
      `latency p50 ${ms(r.p50)}, p90 ${ms(r.p90)}, p99 ${ms(r.p99)}, max ${ms(r.max)}; api CPU ${r.apiCpuMsPerRequest.toFixed(1)} ms per request; load average ${r.loadAverage.toFixed(1)}`,
  );
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
