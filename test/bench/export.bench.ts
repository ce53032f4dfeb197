/**
 * npm run bench:export — dataset exports streamed over HTTP, against the raw read of their rows.
 *
 * Seeds one bulk dataset per size (BENCH_SIZES, default 10,000 and 100,000 items; BENCH_IMAGES
 * images, default 400; 4 or 5 rounds of two answers of realistic length per candidate; model ratings
 * of every answer and a clinician choice on one item in 20) with set-based SQL, then downloads each
 * text format (llava.json, jsonl, trl.jsonl) over real HTTP, reading the body as it arrives.
 * References, measured in the same run on the same statement, rows counted and dropped (no
 * formatting, no HTTP): pg-query-stream on a plain client, in a child `node` process (ts-node's
 * resolver cannot load pg-cursor, see dataset-exports.service.ts), timed from the query on; and the
 * service's own cursor read (`streamRows`, DECLARE / FETCH on a pooled connection). Prints items per
 * second, bytes, the ratio to pg-query-stream, and the process RSS before (after a full GC) and at
 * its peak during each download (sampled every 10 ms; server and client share the process). Memory
 * is flat when the peak does not grow with the item count.
 */
import 'reflect-metadata';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { benchDatabase } from './bench-database';
import { datasetExportPath } from '../../src/modules/datasets/dataset-exports.routes';
import { itemsQuery, SqlQuery, streamRows, trlQuery } from '../../src/modules/datasets/dataset-exports.service';
import { startTestApp, createTestProject } from '../support/test-app';
import { seedBulkDataset } from '../support/dataset-fixture';
import { profiled } from './export-profile';

const SIZES = (process.env.BENCH_SIZES ?? '10000,100000').split(',').map(Number);
const IMAGES = Number(process.env.BENCH_IMAGES ?? 400);
const FORMATS = ['llava.json', 'jsonl', 'trl.jsonl'] as const;
/** A folder: each download of the largest size is also profiled there (a separate, untimed download), its top frames printed. */
const PROFILE_DIR = process.env.BENCH_CPU_PROFILE;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const seconds = (since: bigint) => Number(process.hrtime.bigint() - since) / 1e9;

/** Peak RSS while `work` runs, sampled every 10 ms. */
async function withPeakRss<T>(work: () => Promise<T>): Promise<{ result: T; before: number; peak: number }> {
  gc();
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  try {
    const result = await work();
    peak = Math.max(peak, process.memoryUsage().rss);
    return { result, before, peak };
  } finally {
    clearInterval(timer);
  }
}

/** Plain Node (not ts-node), so that pg-cursor loads; the query in BENCH_QUERY, the result on stdout. */
const PG_QUERY_STREAM_READ = `
const { Client } = require('pg');
const QueryStream = require('pg-query-stream');
(async () => {
  const { url, text, values } = JSON.parse(process.env.BENCH_QUERY);
  const client = new Client({ connectionString: url });
  await client.connect();
  const started = process.hrtime.bigint();
  let rows = 0;
  for await (const _row of client.query(new QueryStream(text, values, { batchSize: 200 }))) rows++;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await client.end();
  process.stdout.write(JSON.stringify({ rows, seconds }));
})().catch((error) => { console.error(error); process.exit(1); });
`;

async function pgQueryStreamRead(url: string, query: SqlQuery): Promise<{ rows: number; seconds: number }> {
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', PG_QUERY_STREAM_READ], {
    cwd: path.resolve(__dirname, '..', '..'),
    env: { ...process.env, BENCH_QUERY: JSON.stringify({ url, ...query }) },
  });
  return JSON.parse(stdout);
}

async function main(): Promise<void> {
  const stopDatabase = await benchDatabase();
  const app = await startTestApp({ RATE_LIMIT_PER_MINUTE: '0' });
  try {
    const lab = await createTestProject(app, 'bench-export');
    const datasets: { size: number; id: string }[] = [];
    for (const size of SIZES) {
      const started = process.hrtime.bigint();
      const id = await seedBulkDataset(app.ds, lab.id, { items: size, images: IMAGES, tag: `bench${size}`, preferences: true });
      await app.ds.query('ANALYZE');
      datasets.push({ size, id });
      console.log(`seeded ${size} items over ${IMAGES} images (with ratings of every answer) in ${seconds(started).toFixed(1)} s`);
    }
    const key = lab.keys.VIEWER;
    const download = async (datasetId: string, format: (typeof FORMATS)[number]) => {
      const res = await fetch(`${app.url}${datasetExportPath(datasetId, format)}`, { headers: { authorization: `Bearer ${key}` } });
      if (res.status !== 200) throw new Error(`${format}: HTTP ${res.status} ${await res.text()}`);
      let bytes = 0;
      let lines = 0;
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        bytes += chunk.length;
        for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
      }
      return { bytes, lines };
    };
    // Warm-up: code paths, plans and caches.
    for (const format of FORMATS) await download(datasets[0].id, format);

    console.log(`\ndataset exports over HTTP vs raw reads of the same statement (${IMAGES} images; items/s)`);
    console.log('items    format      HTTP      pg-query-stream  ratio  service cursor  bytes      lines    RSS before  peak       growth');
    for (const { size, id } of datasets) {
      for (const format of FORMATS) {
        const query = format === 'trl.jsonl' ? trlQuery(id, lab.id) : itemsQuery(id, lab.id);
        const reference = await pgQueryStreamRead(app.databaseUrl, query);
        if (reference.rows !== size) throw new Error(`raw read returned ${reference.rows} rows, expected ${size}`);
        let t = process.hrtime.bigint();
        let cursorRows = 0;
        for await (const _row of streamRows(app.ds, query, new AbortController().signal, 200)) cursorRows++;
        const cursorSeconds = seconds(t);
        if (cursorRows !== size) throw new Error(`cursor read returned ${cursorRows} rows, expected ${size}`);
        t = process.hrtime.bigint();
        const { result, before, peak } = await withPeakRss(() => download(id, format));
        const httpRate = size / seconds(t);
        const rawRate = size / reference.seconds;
        console.log(
          [
            String(size).padEnd(8),
            format.padEnd(11),
            httpRate.toFixed(0).padStart(7),
            rawRate.toFixed(0).padStart(16),
            (httpRate / rawRate).toFixed(2).padStart(7),
            (size / cursorSeconds).toFixed(0).padStart(15),
            ` ${mib(result.bytes).padEnd(10)}`,
            String(result.lines).padEnd(8),
            mib(before).padEnd(11),
            mib(peak).padEnd(10),
            `+${mib(peak - before)}`,
          ].join(' '),
        );
      }
    }
    if (PROFILE_DIR) {
      const { size, id } = datasets[datasets.length - 1];
      for (const format of FORMATS) {
        const file = path.join(PROFILE_DIR, `export-${size}-${format}.cpuprofile`);
        const { summary } = await profiled(file, 15, () => download(id, format));
        console.log(`\n--- CPU profile of the ${format} download of ${size} items (server and client in this process): ${file}\n${summary}`);
      }
    }
    console.log(`\npeak RSS of the process over the whole run: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
  } finally {
    await app.stop();
    await stopDatabase();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
