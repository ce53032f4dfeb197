import sharp from 'sharp';
import path from 'node:path';
import { computePool } from '../../platform/compute-pool';
import type { KMeansResult } from './kmeans';

export { kMeans, type KMeansResult } from './kmeans';

/**
 * Features and clustering for BioMed-VITAL's diversity sampling: each image is represented by a text
 * embedding (caption + in-text mentions) joined with a cheap image descriptor, and k-means groups
 * them (the reference uses k = 60). Everything here is pure and deterministic.
 */

const THUMBNAIL_SIDE = 6;
const THUMBNAIL_LENGTH = THUMBNAIL_SIDE * THUMBNAIL_SIDE;
const HISTOGRAM_BINS = 8;
const COLOUR_CHANNELS = 3;
const HISTOGRAM_LENGTH = HISTOGRAM_BINS * COLOUR_CHANNELS;
/** Images are shrunk to at most this many pixels a side before the histogram is counted. */
const HISTOGRAM_MAX_SIDE = 128;

/** Length of the image feature vector: thumbnail, colour histograms, aspect ratio. */
export const IMAGE_FEATURE_DIM = THUMBNAIL_LENGTH + HISTOGRAM_LENGTH + 1;

const DEFAULT_MAX_TEXT_CHARS = 8000;

interface RgbPixels {
  data: Buffer;
  width: number;
  height: number;
}

/**
 * A cheap, deterministic image descriptor: a 6x6 grayscale thumbnail (36 values in [0, 1]), per-channel
 * 8-bin colour histograms (24 fractions, each channel sums to 1) and the aspect ratio as
 * width / (width + height); L2-normalised. Alpha is flattened onto white; grayscale and 16-bit inputs
 * are converted to 8-bit sRGB; EXIF orientation is applied. Throws when the bytes are not an image
 * sharp can decode.
 */
export async function imageFeatureVector(bytes: Buffer): Promise<Float32Array> {
  const pixels = await decodeSmallRgb(bytes);
  const features = new Float32Array(IMAGE_FEATURE_DIM);
  features.set(await grayscaleThumbnail(pixels), 0);
  features.set(colourHistograms(pixels), THUMBNAIL_LENGTH);
  features[IMAGE_FEATURE_DIM - 1] = pixels.width / (pixels.width + pixels.height);
  return l2Normalised(features);
}

/** Zero vector for images whose bytes are not stored. */
export function missingImageFeatures(): Float32Array {
  return new Float32Array(IMAGE_FEATURE_DIM);
}

async function decodeSmallRgb(bytes: Buffer): Promise<RgbPixels> {
  const { data, info } = await sharp(bytes)
    .rotate()
    .flatten({ background: '#ffffff' })
    .toColourspace('srgb')
    .resize(HISTOGRAM_MAX_SIDE, HISTOGRAM_MAX_SIDE, { fit: 'inside', withoutEnlargement: true })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== COLOUR_CHANNELS) {
    throw new Error(`Expected ${COLOUR_CHANNELS} colour channels after conversion, got ${info.channels}`);
  }
  return { data, width: info.width, height: info.height };
}

async function grayscaleThumbnail(pixels: RgbPixels): Promise<number[]> {
  const raw = { width: pixels.width, height: pixels.height, channels: COLOUR_CHANNELS } as const;
  const thumbnail = await sharp(pixels.data, { raw })
    .resize(THUMBNAIL_SIDE, THUMBNAIL_SIDE, { fit: 'fill' })
    .grayscale()
    .raw()
    .toBuffer();
  return Array.from(thumbnail, (value) => value / 255);
}

function colourHistograms(pixels: RgbPixels): number[] {
  const counts = new Array<number>(HISTOGRAM_LENGTH).fill(0);
  const binWidth = 256 / HISTOGRAM_BINS;
  for (let offset = 0; offset < pixels.data.length; offset += COLOUR_CHANNELS) {
    for (let channel = 0; channel < COLOUR_CHANNELS; channel++) {
      const bin = Math.floor(pixels.data[offset + channel] / binWidth);
      counts[channel * HISTOGRAM_BINS + bin]++;
    }
  }
  const pixelCount = pixels.width * pixels.height;
  return counts.map((count) => count / pixelCount);
}

/**
 * L2-normalise each part (a zero part stays zero), scale each by its weight (default 1), then
 * concatenate: text part first, image part second.
 */
export function joinFeatures(
  text: ArrayLike<number>,
  image: ArrayLike<number>,
  weights: { text?: number; image?: number } = {},
): Float32Array {
  const textWeight = validWeight(weights.text ?? 1, 'text');
  const imageWeight = validWeight(weights.image ?? 1, 'image');
  const joined = new Float32Array(text.length + image.length);
  joined.set(scaled(l2Normalised(text), textWeight), 0);
  joined.set(scaled(l2Normalised(image), imageWeight), text.length);
  return joined;
}

function validWeight(weight: number, name: string): number {
  if (!Number.isFinite(weight) || weight < 0) {
    throw new RangeError(`The ${name} weight must be a finite number >= 0, got ${weight}`);
  }
  return weight;
}

function l2Normalised(values: ArrayLike<number>): Float32Array {
  let sumOfSquares = 0;
  for (let i = 0; i < values.length; i++) sumOfSquares += values[i] * values[i];
  if (!Number.isFinite(sumOfSquares)) throw new RangeError('Feature values must be finite numbers');
  const norm = Math.sqrt(sumOfSquares);
  const normalised = new Float32Array(values.length);
  if (norm === 0) return normalised;
  for (let i = 0; i < values.length; i++) normalised[i] = values[i] / norm;
  return normalised;
}

function scaled(values: Float32Array, factor: number): Float32Array {
  return factor === 1 ? values : values.map((value) => value * factor);
}

/**
 * The text that is embedded for an image: the caption, then each mention, one per line (blank parts
 * left out); trimmed; cut to at most maxChars characters (UTF-16 code units, never half a surrogate pair).
 */
export function clusteringText(caption: string, mentions: string[], maxChars = DEFAULT_MAX_TEXT_CHARS): string {
  if (!Number.isInteger(maxChars) || maxChars < 0) {
    throw new RangeError(`maxChars must be an integer >= 0, got ${maxChars}`);
  }
  const parts = [caption, ...mentions].map((part) => part.trim()).filter((part) => part.length > 0);
  return truncated(parts.join('\n'), maxChars).trimEnd();
}

function truncated(text: string, maxChars: number): string {
  if (text.length <= maxChars) return text;
  const cut = text.slice(0, maxChars);
  return isHighSurrogate(cut.charCodeAt(cut.length - 1)) ? cut.slice(0, -1) : cut;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/**
 * kMeans in a thread of the shared compute pool: the same function on the same rows, so the same
 * result, without holding the event loop for the seconds k-means takes on a large project.
 */
export function kMeansInThread(rows: ArrayLike<number>[], k: number, seed: number, maxIterations?: number): Promise<KMeansResult> {
  // Typed arrays are cloned, not transferred: callers keep their rows.
  return computePool().call<KMeansResult>(path.join(__dirname, 'kmeans'), 'kMeans', maxIterations === undefined ? [rows, k, seed] : [rows, k, seed, maxIterations]);
}

/** Number of rows per cluster id, by ascending id (ids with no rows are not listed). */
export function clusterSizes(assignments: number[]): { clusterId: number; size: number }[] {
  const sizes = new Map<number, number>();
  for (const clusterId of assignments) sizes.set(clusterId, (sizes.get(clusterId) ?? 0) + 1);
  return [...sizes.entries()]
    .sort(([a], [b]) => a - b)
    .map(([clusterId, size]) => ({ clusterId, size }));
}
