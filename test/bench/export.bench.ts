/**
 * npm run bench:export — dataset exports streamed over HTTP, against the raw read of their rows.
 *
 * Seeds one bulk dataset per size (BENCH_SIZES, default 10,000 and 100,000 items; BENCH_IMAGES
 * images, default 400; 4 or 5 rounds of two answers of realistic length per candidate; model ratings
 * of every answer and a clinician choice on one item in 20) with set-based SQL, then downloads each
 * text format (llava.json, jsonl, trl.jsonl) over real HTTP, reading the body as it arrives.
 * References, measured in the same run on the same rows, counted and dropped (no formatting, no
 * HTTP): the statement that reads the items with their candidate and image (`itemsQuery`; for TRL
 * `trlQuery`, with the preferences) through pg-query-stream on a plain client, in a child `node`
 * process (ts-node's resolver cannot load pg-cursor, see dataset-exports.service.ts), timed from the
 * query on; and the service's own cursor read of it (`streamRows`, DECLARE / FETCH on a pooled
 * connection). The LLaVA and JSONL exports read their lines from a statement of their own
 * (dataset-export.lines.ts: Postgres writes the JSON), so their ratio compares the whole export
 * with reading its data raw. Each measurement runs BENCH_REPEAT times (default 3), reference and
 * export interleaved; medians printed, with the spread of the ratio and the machine's load average.
 * The same download is also read by curl in a child process (the server's pace without a client
 * sharing its process and core, as the reference has its own process).
 * Prints items per second, the ratio to pg-query-stream, CPU time per 1,000 items of this process
 * (server and client) and of the reference's process, bytes, and the process RSS before (after a
 * full GC) and its largest growth during a download (sampled every 10 ms). Memory is flat when the
 * growth does not grow with the item count; `NODE_OPTIONS=--max-old-space-size=160` caps the heap.
 * BENCH_CPU_PROFILE=<folder> also profiles one more download of each format of the largest size
 * and prints its top frames (test/bench/export-profile.ts).
 */
import 'reflect-metadata';
import { execFile } from 'node:child_process';
import os from 'node:os';
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
/** Each measurement this many times, reference and export interleaved; medians printed (the machine is shared and noisy). */
const REPEAT = Number(process.env.BENCH_REPEAT ?? 3);
const IMAGES = Number(process.env.BENCH_IMAGES ?? 400);
const FORMATS = ['llava.json', 'jsonl', 'trl.jsonl'] as const;
/** A folder: each download of the largest size is also profiled there (a separate, untimed download), its top frames printed. */
const PROFILE_DIR = process.env.BENCH_CPU_PROFILE;

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const load = () => os.loadavg().map((l) => l.toFixed(1)).join(' ');
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
  const cpu = process.cpuUsage();
  let rows = 0;
  for await (const _row of client.query(new QueryStream(text, values, { batchSize: 200 }))) rows++;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const { user, system } = process.cpuUsage(cpu);
  await client.end();
  process.stdout.write(JSON.stringify({ rows, seconds, cpuMs: (user + system) / 1000 }));
})().catch((error) => { console.error(error); process.exit(1); });
`;

async function pgQueryStreamRead(url: string, query: SqlQuery): Promise<{ rows: number; seconds: number; cpuMs: number }> {
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
    /** The same download by curl in a child process: the server's pace without a client in its process (as the reference runs in its own). */
    const curlDownload = async (datasetId: string, format: (typeof FORMATS)[number]) => {
      const { stdout } = await promisify(execFile)('curl', ['-sS', '--fail', '-o', '/dev/null', '-w', '%{size_download}', '-H', `authorization: Bearer ${key}`, `${app.url}${datasetExportPath(datasetId, format)}`]);
      return Number(stdout);
    };
    // Warm-up: code paths, plans and caches.
    for (const format of FORMATS) await download(datasets[0].id, format);

    console.log(`\ndataset exports over HTTP vs raw reads of the same statement (${IMAGES} images; items/s; median of ${REPEAT}, interleaved)`);
    console.log(`${os.cpus().length} CPUs, load average ${load()} (1, 5, 15 min) at the start`);
    console.log('CPU ms/1k: this process (server and client) per 1,000 items, against the pg-query-stream process');
    console.log('curl: the same download read by curl in a child process; its ratio to the same pg-query-stream read');
    console.log('items    format      HTTP  pg-query-stream  ratio (min-max)     cursor  CPU ms/1k HTTP  ref   bytes      lines    RSS before  peak growth   curl  ratio');
    for (const { size, id } of datasets) {
      for (const format of FORMATS) {
        const query = format === 'trl.jsonl' ? trlQuery(id, lab.id) : itemsQuery(id, lab.id);
        const http: number[] = [];
        const raw: number[] = [];
        const ratios: number[] = [];
        const cpu: number[] = [];
        const rawCpu: number[] = [];
        const cursor: number[] = [];
        const curl: number[] = [];
        const curlRatios: number[] = [];
        let result = { bytes: 0, lines: 0 };
        let before = 0;
        let growth = 0;
        for (let r = 0; r < REPEAT; r++) {
          const reference = await pgQueryStreamRead(app.databaseUrl, query);
          if (reference.rows !== size) throw new Error(`raw read returned ${reference.rows} rows, expected ${size}`);
          let t = process.hrtime.bigint();
          let cursorRows = 0;
          for await (const _row of streamRows(app.ds, query, new AbortController().signal, 200)) cursorRows++;
          cursor.push(size / seconds(t));
          if (cursorRows !== size) throw new Error(`cursor read returned ${cursorRows} rows, expected ${size}`);
          t = process.hrtime.bigint();
          const started = process.cpuUsage();
          const measured = await withPeakRss(() => download(id, format));
          const used = process.cpuUsage(started);
          http.push(size / seconds(t));
          raw.push(size / reference.seconds);
          ratios.push(http[r] / raw[r]);
          cpu.push(((used.user + used.system) / 1000 / size) * 1000);
          rawCpu.push((reference.cpuMs / size) * 1000);
          t = process.hrtime.bigint();
          const curlBytes = await curlDownload(id, format);
          curl.push(size / seconds(t));
          curlRatios.push(curl[r] / raw[r]);
          if (curlBytes !== measured.result.bytes) throw new Error(`curl read ${curlBytes} bytes, fetch ${measured.result.bytes}`);
          result = measured.result;
          before = measured.before;
          growth = Math.max(growth, measured.peak - measured.before);
        }
        console.log(
          [
            String(size).padEnd(8),
            format.padEnd(11),
            median(http).toFixed(0).padStart(5),
            median(raw).toFixed(0).padStart(16),
            median(ratios).toFixed(2).padStart(6),
            `(${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`.padEnd(12),
            median(cursor).toFixed(0).padStart(7),
            median(cpu).toFixed(0).padStart(15),
            median(rawCpu).toFixed(0).padStart(5),
            ` ${mib(result.bytes).padEnd(10)}`,
            String(result.lines).padEnd(8),
            mib(before).padEnd(11),
            `+${mib(growth)}`.padEnd(10),
            median(curl).toFixed(0).padStart(6),
            median(curlRatios).toFixed(2).padStart(6),
          ].join(' '),
        );
      }
    }
    console.log(`load average ${load()} at the end`);
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
