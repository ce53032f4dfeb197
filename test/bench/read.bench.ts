/**
 * npm run bench:read — the read API's cost over its SQL.
 *
 * Seeds a project (2,000 images, one candidate each, two scores and up to three preferences per
 * candidate), then asks for pages of 100 candidates with image, scores, score and preferences over
 * real HTTP, as a UI would. Reference, measured in the same run: the very statements that one such
 * request sends, captured and replayed through a plain pg client. Prints requests per second,
 * latency percentiles, the statement count, and the ratio of API time to raw SQL time.
 * The two are measured interleaved, BENCH_ROUNDS times, and the medians printed.
 * BENCH_CPU_PROFILE=<file.cpuprofile> records a CPU profile of the API phases only (summarise it
 * with test/bench/profile-summary.ts).
 */
import 'reflect-metadata';
import os from 'node:os';
import { Client } from 'pg';
import { benchDatabase } from './bench-database';
import { StatementCounter } from '../../src/platform/db';
import { Image } from '../../src/modules/images/image.entity';
import { ImageSource, Modality } from '../../src/modules/images/modality';
import { Candidate, CandidateStatus } from '../../src/modules/candidates/candidate.entity';
import { SelectorModel } from '../../src/modules/selectors/selector-model.entity';
import { Score } from '../../src/modules/scoring/score.entity';
import { Preference, PreferenceKind, PreferenceSource } from '../../src/modules/preferences/preference.entity';
import { toGlobalId } from '../../src/platform/ids';
import { startTestApp, createTestProject } from '../support/test-app';
import { startProfile } from './cpu-profile';

const IMAGES = Number(process.env.BENCH_IMAGES ?? 2000);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 200);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

const QUERY = `query($after: String, $sel: ID!) { candidates(first: 100, after: $after) { totalCount pageInfo { endCursor }
  edges { node { id status rounds { question answer } image { id caption modalities thumbnailUrl candidateCount }
    scores(first: 5) { totalCount edges { node { value selectorModel { name } } } } score(selectorModelId: $sel)
    preferenceCount preferences(first: 3) { edges { node { kind source rating annotator { email } } } } } } } }`;

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function main(): Promise<void> {
  const stopDatabase = await benchDatabase();
  const app = await startTestApp({ RATE_LIMIT_PER_MINUTE: '0' });
  try {
    const lab = await createTestProject(app, 'bench-lab');
    const ds = app.ds;
    const seedStarted = Date.now();
    const [selA, selB] = await ds.getRepository(SelectorModel).save(
      ['a', 'b'].map((name) => ({ projectId: lab.id, name, version: 1, filesHash: '0'.repeat(64), manifest: {}, metrics: null, active: name === 'a' })),
    );
    const modalities = [[Modality.CT], [Modality.MRI], [Modality.CHEST_XRAY], [Modality.HISTOLOGY]];
    const images = await ds.getRepository(Image).save(
      Array.from({ length: IMAGES }, (_, i) => ({ projectId: lab.id, source: ImageSource.IMPORT, pairId: `b_${i}`, caption: `Figure ${i}: a benchmark caption with some words`, mentions: [`Figure ${i} shows it.`], modalities: modalities[i % 4] })),
      { chunk: 500 },
    );
    const candidates = await ds.getRepository(Candidate).save(
      images.map((image, i) => ({ projectId: lab.id, imageId: image.id, status: CandidateStatus.OK, rounds: [{ question: `Q${i}?`, answers: [`A${i}.`] }, { question: 'And?', answers: ['Yes.'] }] })),
      { chunk: 500 },
    );
    await ds.getRepository(Score).save(
      candidates.flatMap((c, i) => [selA, selB].map((sel, k) => ({ projectId: lab.id, candidateId: c.id, selectorModelId: sel.id, value: ((i * 37 + k * 11) % 1000) / 1000 }))),
      { chunk: 500 },
    );
    await ds.getRepository(Preference).save(
      candidates.flatMap((c, i) =>
        Array.from({ length: i % 4 }, () => ({ projectId: lab.id, candidateId: c.id, source: PreferenceSource.CLINICIAN, kind: PreferenceKind.RATING, annotatorId: lab.userIds.CLINICIAN, rating: i % 11, rubricVersion: 'v1' })),
      ),
      { chunk: 500 },
    );
    console.log(`seeded ${IMAGES} images/candidates, ${IMAGES * 2} scores in ${((Date.now() - seedStarted) / 1000).toFixed(1)} s`);

    const key = lab.keys.VIEWER;
    const sel = toGlobalId('SelectorModel', selA.id);
    const pages: (string | null)[] = [null];
    const post = async (after: string | null) => {
      const res = await fetch(app.graphqlUrl, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ query: QUERY, variables: { after, sel } }) });
      const body = (await res.json()) as { data?: { candidates: { pageInfo: { endCursor: string }; edges: unknown[] } }; errors?: unknown };
      if (!body.data || body.errors) throw new Error(`request failed: ${JSON.stringify(body.errors)}`);
      return body.data.candidates;
    };
    // Cursors of the first pages, so that requests cover different rows; also a warm-up.
    for (let i = 0; i < Math.min(10, IMAGES / 100 - 1); i++) pages.push((await post(pages[i])).pageInfo.endCursor);

    // One request's statements, captured for the reference.
    const captured: { query: string; parameters: unknown[] }[] = [];
    StatementCounter.capture = (query, parameters) => captured.push({ query, parameters });
    await post(pages[1]);
    StatementCounter.capture = null;
    if (process.env.BENCH_PRINT_SQL) for (const s of captured) console.log(`${s.query.replace(/\s+/g, ' ')}\n`);

    const clients = await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      const c = new Client({ connectionString: new URL(`/${app.databaseName}`, process.env.DATABASE_URL).toString() });
      await c.connect();
      return c;
    }));

    /** One API phase: REQUESTS pages over HTTP, CONCURRENCY at a time. */
    const apiPhase = async (latencies: number[]) => {
      let next = 0;
      const cpu = process.cpuUsage();
      const started = process.hrtime.bigint();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          while (next < REQUESTS) {
            const after = pages[next++ % pages.length];
            const t = process.hrtime.bigint();
            await post(after);
            latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
          }
        }),
      );
      const used = process.cpuUsage(cpu);
      return { rate: REQUESTS / (Number(process.hrtime.bigint() - started) / 1e9), cpuMs: (used.user + used.system) / 1000 / REQUESTS };
    };
    /** One reference phase: the captured statements of REQUESTS requests through plain pg. */
    const rawPhase = async () => {
      let replayed = 0;
      const started = process.hrtime.bigint();
      await Promise.all(
        clients.map(async (client) => {
          while (replayed < REQUESTS) {
            replayed++;
            for (const s of captured) await client.query(s.query, s.parameters as unknown[]);
          }
        }),
      );
      return REQUESTS / (Number(process.hrtime.bigint() - started) / 1e9);
    };

    // API and reference interleaved, ROUNDS times: the machine is shared and its load drifts, so a
    // ratio taken from phases minutes apart would measure the neighbours as much as the code.
    const latencies: number[] = [];
    const rounds: { api: number; raw: number; cpuMs: number }[] = [];
    const profile = process.env.BENCH_CPU_PROFILE ? await startProfile() : null;
    for (let r = 0; r < ROUNDS; r++) {
      await profile?.resume();
      const { rate: api, cpuMs } = await apiPhase(latencies);
      await profile?.pause();
      const raw = await rawPhase();
      rounds.push({ api, raw, cpuMs });
      console.log(`  round ${r + 1}: API ${api.toFixed(1)} requests/s (${cpuMs.toFixed(1)} ms CPU each), raw SQL ${raw.toFixed(1)} requests/s, ratio ${(api / raw).toFixed(2)}`);
    }
    if (profile) console.log(`  CPU profile of the API phases: ${await profile.stop(process.env.BENCH_CPU_PROFILE!)}`);
    await Promise.all(clients.map((c) => c.end()));

    latencies.sort((a, b) => a - b);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const apiRate = median(rounds.map((r) => r.api));
    const rawRate = median(rounds.map((r) => r.raw));
    const ratio = median(rounds.map((r) => r.api / r.raw));
    console.log(`read API, pages of 100 candidates with nested image/scores/preferences (concurrency ${CONCURRENCY}, ${ROUNDS} rounds of ${REQUESTS} requests, medians)`);
    console.log(`  statements per request:   ${captured.length}`);
    console.log(`  API over HTTP:            ${apiRate.toFixed(1)} requests/s, ${(apiRate * 100).toFixed(0)} candidates/s, latency p50 ${percentile(latencies, 50).toFixed(1)} ms, p95 ${percentile(latencies, 95).toFixed(1)} ms`);
    console.log(`  API process CPU:          ${median(rounds.map((r) => r.cpuMs)).toFixed(1)} ms per request (server and its HTTP client together; steadier than requests/s on a loaded machine)`);
    console.log(`  reference, same SQL raw:  ${rawRate.toFixed(1)} requests/s`);
    console.log(`  ratio API / raw SQL:      ${ratio.toFixed(2)} (median of the rounds' ratios)`);
    console.log(`  peak RSS:                 ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
    console.log(`  load average (1 min):     ${os.loadavg()[0].toFixed(2)} on ${os.cpus().length} CPUs`);
  } finally {
    await app.stop();
    await stopDatabase();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
