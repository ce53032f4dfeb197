/**
 * npm run bench:image-bytes — image bytes read from blob storage the way scoring reads them
 * (ImagesService.originalsByHash -> BlobStorage.getMany, a batch of keys per read), before and after
 * issue 14, in the same run, interleaved:
 * - text: the previous read, `SELECT key, data FROM blob_objects WHERE key = ANY($1)` through the
 *   pooled driver; the bytea comes as hex text (`\x` and two characters a byte) that node-postgres
 *   decodes on the main thread;
 * - binary COPY: PostgresBlobStorage.getMany now (platform/pg-binary-copy.ts), the bytes as they are.
 * Prints per image: wall ms and this process's CPU ms (user + system: the decoding, the protocol
 * parsing, the copies), medians of BENCH_REPEAT rounds (default 5), and checks that both reads give
 * the same bytes. Seeds BENCH_IMAGES (default 256) distinct files of BENCH_IMAGE_KIB (default 93,
 * the size issue 14 measured) of random bytes, which like PNG or JPEG data do not compress.
 * Environment: DATABASE_URL (else an embedded Postgres), BENCH_BATCH (keys per read, default 32).
 */
import 'reflect-metadata';
import crypto from 'node:crypto';
import os from 'node:os';
import { benchDatabase } from './bench-database';
import { PostgresBlobStorage } from '../../src/platform/storage';
import { startTestApp } from '../support/test-app';

const IMAGES = Number(process.env.BENCH_IMAGES ?? 256);
const KIB = Number(process.env.BENCH_IMAGE_KIB ?? 93);
const BATCH = Number(process.env.BENCH_BATCH ?? 32);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 5);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const load = () => os.loadavg().map((l) => l.toFixed(1)).join(' ');

async function main(): Promise<void> {
  const stopDatabase = await benchDatabase();
  const app = await startTestApp({ RATE_LIMIT_PER_MINUTE: '0' });
  try {
    const storage = new PostgresBlobStorage(app.ds);
    const keys: string[] = [];
    for (let i = 0; i < IMAGES; i++) {
      const key = `bench/originals/${i}`;
      await storage.put(key, crypto.randomBytes(KIB * 1024), 'image/png');
      keys.push(key);
    }
    await app.ds.query('ANALYZE blob_objects');
    const batches: string[][] = [];
    for (let i = 0; i < keys.length; i += BATCH) batches.push(keys.slice(i, i + BATCH));

    const readText = async (batch: string[]) => {
      const rows: { key: string; data: Buffer }[] = await app.ds.query(`SELECT key, data FROM blob_objects WHERE key = ANY($1::text[])`, [batch]);
      return new Map(rows.map((r) => [r.key, r.data]));
    };
    const readBinary = (batch: string[]) => storage.getMany(batch);
    const ways = { text: readText, 'binary COPY': readBinary } as const;

    // Warm-up, and the check that both ways read the same bytes.
    for (const batch of batches) {
      const [a, b] = [await readText(batch), await readBinary(batch)];
      for (const key of batch) if (!a.get(key)!.equals(b.get(key)!)) throw new Error(`different bytes for ${key}`);
    }

    const wall: Record<string, number[]> = { text: [], 'binary COPY': [] };
    const cpu: Record<string, number[]> = { text: [], 'binary COPY': [] };
    for (let r = 0; r < REPEAT; r++) {
      for (const [name, read] of Object.entries(ways)) {
        const started = process.hrtime.bigint();
        const usage = process.cpuUsage();
        let n = 0;
        for (const batch of batches) n += (await read(batch)).size;
        const used = process.cpuUsage(usage);
        if (n !== IMAGES) throw new Error(`${name} read ${n} images, expected ${IMAGES}`);
        wall[name].push(Number(process.hrtime.bigint() - started) / 1e6 / IMAGES);
        cpu[name].push((used.user + used.system) / 1000 / IMAGES);
      }
    }
    console.log(`\nimage bytes from blob storage: ${IMAGES} images of ${KIB} KiB, ${BATCH} per read, median of ${REPEAT} rounds, interleaved`);
    console.log(`${os.cpus().length} CPUs, load average ${load()} (1, 5, 15 min)`);
    console.log('read           wall ms/image  CPU ms/image (this process)');
    for (const name of Object.keys(ways)) {
      console.log(`${name.padEnd(14)} ${median(wall[name]).toFixed(3).padStart(13)}  ${median(cpu[name]).toFixed(3).padStart(12)}`);
    }
    console.log(
      `binary COPY / text: wall ${(median(wall['binary COPY']) / median(wall.text)).toFixed(2)}, CPU ${(median(cpu['binary COPY']) / median(cpu.text)).toFixed(2)}`,
    );
  } finally {
    await app.stop();
    await stopDatabase();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
