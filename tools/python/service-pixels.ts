/**
 * The service's `pixel_values` for image files, written as a NumPy .npy file, to compare with
 * tools/python/preprocess.py on a machine that has Pillow:
 *
 *   npx ts-node --transpile-only tools/python/service-pixels.ts selector.json a.png b.jpg --out service.npy
 *   python3 tools/python/preprocess.py selector.json a.png b.jpg --out python.npy --compare service.npy
 */
import fs from 'node:fs';
import { imagePixels } from '../../src/modules/selectors/selector-inputs';
import { selectorManifestSchema } from '../../src/modules/selectors/selector-manifest';

/** A float32 array in NumPy's .npy format (version 1.0, little-endian, C order). */
function npy(data: Float32Array, shape: number[]): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  // Magic (6) + version (2) + header length (2) + header, padded with spaces to a multiple of 64, ending in \n.
  header = header.padEnd(Math.ceil((10 + header.length + 1) / 64) * 64 - 10 - 1, ' ') + '\n';
  const prefix = Buffer.alloc(10);
  prefix.write('\x93NUMPY', 0, 'latin1');
  prefix.writeUInt8(1, 6);
  prefix.writeUInt8(0, 7);
  prefix.writeUInt16LE(header.length, 8);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
}

async function main(argv: string[]): Promise<void> {
  const outAt = argv.indexOf('--out');
  const out = outAt >= 0 ? argv[outAt + 1] : 'service_pixel_values.npy';
  const [manifestPath, ...images] = argv.filter((_, i) => outAt < 0 || (i !== outAt && i !== outAt + 1));
  if (!manifestPath || images.length === 0) throw new Error('usage: service-pixels.ts selector.json image [image ...] [--out file.npy]');
  const manifest = selectorManifestSchema.parse(JSON.parse(fs.readFileSync(manifestPath, 'utf8')));
  const { size } = manifest.image;
  const batch = new Float32Array(images.length * 3 * size * size);
  for (const [i, file] of images.entries()) batch.set(await imagePixels(fs.readFileSync(file), manifest), i * 3 * size * size);
  fs.writeFileSync(out, npy(batch, [images.length, 3, size, size]));
  console.log(`${out}: (${images.length}, 3, ${size}, ${size}) float32`);
}

main(process.argv.slice(2)).catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
