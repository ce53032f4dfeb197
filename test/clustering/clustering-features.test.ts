import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import {
  IMAGE_FEATURE_DIM,
  clusterSizes,
  clusteringText,
  imageFeatureVector,
  joinFeatures,
  kMeans,
  missingImageFeatures,
} from '../../src/modules/clustering/features';
import { SHARED_IMAGES } from '../support/shared-data';

/**
 * The pure feature and clustering code behind diversity sampling: image descriptors on the real
 * biomedical example images, feature joining, the text that is embedded, and seeded k-means.
 */

const IMAGE_NAMES = ['bio_patch.png', 'med_img_1.png', 'synpic32933.jpg', 'synpic42202.jpg', 'xy_chromosome.jpg'];

function readImage(name: string): Buffer {
  return fs.readFileSync(path.join(SHARED_IMAGES, name));
}

function norm(values: ArrayLike<number>): number {
  return Math.sqrt(Array.from(values).reduce((sum, value) => sum + value * value, 0));
}

function distance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return norm(Array.from(a, (value, i) => value - b[i]));
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return Array.from(a).reduce((sum, value, i) => sum + value * b[i], 0) / (norm(a) * norm(b));
}

/** Small seeded PRNG (mulberry32) so the synthetic data is the same on every run. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BLOB_CENTRES = [
  [0, 0, 0],
  [10, 10, 0],
  [-10, 10, 5],
];
const POINTS_PER_BLOB = 20;

/** 3 well-separated blobs of 20 points each (spread ±1 around the centre), rows grouped by blob. */
function blobRows(): { rows: number[][]; blobOfRow: number[] } {
  const random = seededRandom(2024);
  const rows: number[][] = [];
  const blobOfRow: number[] = [];
  BLOB_CENTRES.forEach((centre, blob) => {
    for (let i = 0; i < POINTS_PER_BLOB; i++) {
      rows.push(centre.map((value) => value + (random() * 2 - 1)));
      blobOfRow.push(blob);
    }
  });
  return { rows, blobOfRow };
}

function solidImage(width: number, height: number, channels: 1 | 2 | 3 | 4, value: number[]): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * channels);
  for (let i = 0; i < pixels.length; i++) pixels[i] = value[i % channels];
  const image = sharp(pixels, { raw: { width, height, channels } });
  // Without an explicit b-w colourspace sharp writes 1- and 2-channel input as RGB.
  return (channels <= 2 ? image.toColourspace('b-w') : image).png().toBuffer();
}

describe('imageFeatureVector', () => {
  it.each(IMAGE_NAMES)('gives a unit-length vector of IMAGE_FEATURE_DIM finite values for %s', async (name) => {
    const vector = await imageFeatureVector(readImage(name));
    expect(vector).toBeInstanceOf(Float32Array);
    expect(vector).toHaveLength(IMAGE_FEATURE_DIM);
    expect(Array.from(vector).every(Number.isFinite)).toBe(true);
    expect(norm(vector)).toBeCloseTo(1, 5);
  });

  it('is 6x6 thumbnail + 3x8 histogram bins + aspect ratio long', () => {
    expect(IMAGE_FEATURE_DIM).toBe(36 + 24 + 1);
  });

  it('gives identical vectors for identical bytes, also from a separate copy of the buffer', async () => {
    const bytes = readImage('synpic32933.jpg');
    const first = await imageFeatureVector(bytes);
    const second = await imageFeatureVector(Buffer.from(bytes));
    expect(Array.from(second)).toEqual(Array.from(first));
  });

  it('gives clearly different vectors for the five different images', async () => {
    const vectors = await Promise.all(IMAGE_NAMES.map((name) => imageFeatureVector(readImage(name))));
    for (let i = 0; i < vectors.length; i++) {
      for (let j = i + 1; j < vectors.length; j++) {
        expect(distance(vectors[i], vectors[j])).toBeGreaterThan(0.01);
      }
    }
  });

  it('reads the same picture as JPEG, PNG, WebP and TIFF to nearly the same vector', async () => {
    const jpeg = readImage('xy_chromosome.jpg');
    const reference = await imageFeatureVector(jpeg);
    for (const format of ['png', 'webp', 'tiff'] as const) {
      const converted = await sharp(jpeg).toFormat(format, { quality: 95 }).toBuffer();
      expect((await sharp(converted).metadata()).format).toBe(format);
      const vector = await imageFeatureVector(converted);
      expect(vector).toHaveLength(IMAGE_FEATURE_DIM);
      expect(cosine(vector, reference)).toBeGreaterThan(0.99);
    }
  });

  it('flattens alpha onto white: a fully transparent RGBA PNG reads like an opaque white one', async () => {
    const transparent = await solidImage(30, 20, 4, [0, 0, 0, 0]);
    const white = await solidImage(30, 20, 3, [255, 255, 255]);
    const halfRed = await solidImage(30, 20, 4, [255, 0, 0, 128]);
    expect((await sharp(transparent).metadata()).hasAlpha).toBe(true);

    const transparentVector = await imageFeatureVector(transparent);
    expect(Array.from(transparentVector)).toEqual(Array.from(await imageFeatureVector(white)));
    expect(distance(await imageFeatureVector(halfRed), transparentVector)).toBeGreaterThan(0.01);
  });

  it('handles the real RGBA histology patch the same as its alpha flattened onto white by hand', async () => {
    const rgba = readImage('bio_patch.png');
    expect((await sharp(rgba).metadata()).channels).toBe(4);
    const flattened = await sharp(rgba).flatten({ background: '#ffffff' }).png().toBuffer();
    expect(cosine(await imageFeatureVector(rgba), await imageFeatureVector(flattened))).toBeCloseTo(1, 5);
  });

  it('treats 1-channel grayscale and gray+alpha PNGs like the equivalent RGB image', async () => {
    const gray = await solidImage(16, 8, 1, [128]);
    const grayAlpha = await solidImage(16, 8, 2, [128, 255]);
    const rgb = await solidImage(16, 8, 3, [128, 128, 128]);
    expect((await sharp(gray).metadata()).channels).toBe(1);
    expect((await sharp(grayAlpha).metadata()).channels).toBe(2);

    const rgbVector = Array.from(await imageFeatureVector(rgb));
    expect(Array.from(await imageFeatureVector(gray))).toEqual(rgbVector);
    expect(Array.from(await imageFeatureVector(grayAlpha))).toEqual(rgbVector);
  });

  it('tells apart the same picture in portrait and landscape shape', async () => {
    const landscape = await solidImage(40, 10, 3, [90, 90, 90]);
    const portrait = await solidImage(10, 40, 3, [90, 90, 90]);
    expect(distance(await imageFeatureVector(landscape), await imageFeatureVector(portrait))).toBeGreaterThan(0.01);
  });

  it('rejects bytes that are not an image', async () => {
    await expect(imageFeatureVector(Buffer.from('not an image at all'))).rejects.toThrow();
  });
});

describe('missingImageFeatures', () => {
  it('is an all-zero vector of IMAGE_FEATURE_DIM, a fresh one each time', () => {
    const missing = missingImageFeatures();
    expect(missing).toHaveLength(IMAGE_FEATURE_DIM);
    expect(Array.from(missing).every((value) => value === 0)).toBe(true);
    missing[0] = 1;
    expect(missingImageFeatures()[0]).toBe(0);
  });
});

describe('joinFeatures', () => {
  it('normalises each part to unit length and puts the text part first', () => {
    const joined = joinFeatures([3, 4], [0, 0, 2]);
    expect(joined).toBeInstanceOf(Float32Array);
    expect(Array.from(joined)).toEqual([0.6, 0.8, 0, 0, 1].map((value) => Math.fround(value)));
  });

  it('keeps a zero part zero, e.g. an image without stored bytes', () => {
    const joined = joinFeatures([1, 2, 2], missingImageFeatures());
    expect(joined).toHaveLength(3 + IMAGE_FEATURE_DIM);
    expect(norm(joined.subarray(0, 3))).toBeCloseTo(1, 6);
    expect(Array.from(joined.subarray(3)).every((value) => value === 0)).toBe(true);
    expect(Array.from(joinFeatures([0, 0], [5]))).toEqual([0, 0, 1]);
  });

  it('scales each normalised part by its weight', () => {
    const joined = joinFeatures([10, 0], [0, 7], { text: 2, image: 0.5 });
    expect(Array.from(joined)).toEqual([2, 0, 0, 0.5]);
    expect(Array.from(joinFeatures([10, 0], [0, 7], { image: 0 }))).toEqual([1, 0, 0, 0]);
  });

  it('accepts typed arrays and does not change its inputs', () => {
    const text = new Float32Array([0, 3]);
    const image = new Float64Array([4, 0]);
    expect(Array.from(joinFeatures(text, image))).toEqual([0, 1, 1, 0]);
    expect(Array.from(text)).toEqual([0, 3]);
    expect(Array.from(image)).toEqual([4, 0]);
  });

  it('rejects negative weights and non-finite values', () => {
    expect(() => joinFeatures([1], [1], { text: -1 })).toThrow(RangeError);
    expect(() => joinFeatures([Number.NaN], [1])).toThrow(RangeError);
  });
});

describe('clusteringText', () => {
  it('puts the caption first, then the mentions, one per line, trimmed, blanks left out', () => {
    const text = clusteringText('  Chest X-ray showing a mass.  ', ['  As seen in Figure 1. ', '   ', 'The mass was resected.']);
    expect(text).toBe('Chest X-ray showing a mass.\nAs seen in Figure 1.\nThe mass was resected.');
    expect(clusteringText('   ', [])).toBe('');
  });

  it('truncates to 8000 characters by default and to maxChars when given', () => {
    const longCaption = 'CT scan of the abdomen. '.repeat(500);
    expect(longCaption.length).toBeGreaterThan(8000);
    const text = clusteringText(longCaption, ['a mention that is cut off']);
    expect(text.length).toBeLessThanOrEqual(8000);
    expect(text.length).toBeGreaterThan(7990);
    expect(longCaption.startsWith(text)).toBe(true);
    expect(clusteringText('MRI of the brain', ['axial T2'], 10)).toBe('MRI of the');
  });

  it('does not end in trailing whitespace after truncation or split a surrogate pair', () => {
    expect(clusteringText('Gross specimen image', [], 14)).toBe('Gross specimen');
    expect(clusteringText('Gross specimen image', [], 15)).toBe('Gross specimen');
    expect(clusteringText('ab😀cd', [], 3)).toBe('ab');
    expect(clusteringText('ab😀cd', [], 4)).toBe('ab😀');
  });
});

describe('kMeans', () => {
  it('recovers three well-separated blobs exactly with k = 3', () => {
    const { rows, blobOfRow } = blobRows();
    const result = kMeans(rows, 3, 42);

    expect(result.k).toBe(3);
    expect(result.converged).toBe(true);
    expect(result.iterations).toBeGreaterThanOrEqual(1);
    // Rows are grouped by blob, so the first-appearance ids are exactly the blob numbers.
    expect(result.assignments).toEqual(blobOfRow);
    result.centroids.forEach((centroid, clusterId) => {
      expect(distance(centroid, BLOB_CENTRES[clusterId])).toBeLessThan(1);
    });
  });

  it('gives the same result for the same rows and seed, and the same ids whatever the seed', () => {
    const { rows } = blobRows();
    const first = kMeans(rows, 3, 7);
    expect(kMeans(rows, 3, 7)).toEqual(first);
    for (const seed of [0, 1, 2, 3, 123456]) {
      expect(kMeans(rows, 3, seed).assignments).toEqual(first.assignments);
    }
  });

  it('numbers clusters by first appearance: row 0 is in cluster 0, then in order', () => {
    const { rows, blobOfRow } = blobRows();
    // Interleave the blobs in the order 2, 0, 1 so raw and renumbered ids cannot coincide by accident.
    const order = rows.map((_, i) => i).sort((a, b) => ((blobOfRow[a] + 1) % 3) - ((blobOfRow[b] + 1) % 3) || a - b);
    const shuffled = order.map((i) => rows[i]);
    for (const seed of [1, 2, 3]) {
      const { assignments, centroids } = kMeans(shuffled, 3, seed);
      expect(assignments[0]).toBe(0);
      const firstAppearance = assignments.filter((id, i) => assignments.indexOf(id) === i);
      expect(firstAppearance).toEqual([0, 1, 2]);
      expect(distance(centroids[0], BLOB_CENTRES[2])).toBeLessThan(1);
      expect(distance(centroids[1], BLOB_CENTRES[0])).toBeLessThan(1);
      expect(distance(centroids[2], BLOB_CENTRES[1])).toBeLessThan(1);
    }
  });

  it('caps k at the number of distinct rows: 5 identical rows with k = 3 form one cluster', () => {
    const rows = Array.from({ length: 5 }, () => new Float32Array([0.25, -1, 3]));
    const result = kMeans(rows, 3, 11);
    expect(result.k).toBe(1);
    expect(result.assignments).toEqual([0, 0, 0, 0, 0]);
    expect(result.centroids).toEqual([[0.25, -1, 3]]);
  });

  it('leaves no empty cluster when duplicates make fewer distinct rows than k', () => {
    const rows = [[1, 1], [5, 5], [1, 1], [5, 5], [1, 1]];
    const result = kMeans(rows, 4, 3);
    expect(result.k).toBe(2);
    expect(result.assignments).toEqual([0, 1, 0, 1, 0]);
    expect(result.centroids).toEqual([[1, 1], [5, 5]]);
    expect(clusterSizes(result.assignments)).toEqual([{ clusterId: 0, size: 3 }, { clusterId: 1, size: 2 }]);
  });

  it('stops after maxIterations', () => {
    const { rows } = blobRows();
    expect(kMeans(rows, 3, 5, 1).iterations).toBe(1);
  });

  it('gives k 0 and no assignments for empty input', () => {
    expect(kMeans([], 60, 1)).toEqual({ k: 0, assignments: [], centroids: [], iterations: 0, converged: true });
  });

  it('rejects a bad k, seed or maxIterations, and rows of different lengths', () => {
    expect(() => kMeans([[1]], 0, 1)).toThrow(RangeError);
    expect(() => kMeans([[1]], 1.5, 1)).toThrow(RangeError);
    expect(() => kMeans([[1]], 1, Number.NaN)).toThrow(RangeError);
    expect(() => kMeans([[1]], 1, 1, 0)).toThrow(RangeError);
    expect(() => kMeans([[1, 2], [3]], 1, 1)).toThrow(/Row 1/);
    expect(() => kMeans([[1, Number.POSITIVE_INFINITY]], 1, 1)).toThrow(RangeError);
  });
});

describe('clusterSizes', () => {
  it('counts rows per cluster id in ascending id order', () => {
    expect(clusterSizes([2, 0, 2, 1, 2, 0])).toEqual([
      { clusterId: 0, size: 2 },
      { clusterId: 1, size: 1 },
      { clusterId: 2, size: 3 },
    ]);
    expect(clusterSizes([])).toEqual([]);
  });

  it('adds up to the number of rows of a clustering', () => {
    const { rows } = blobRows();
    const sizes = clusterSizes(kMeans(rows, 3, 9).assignments);
    expect(sizes).toEqual([0, 1, 2].map((clusterId) => ({ clusterId, size: POINTS_PER_BLOB })));
  });
});
