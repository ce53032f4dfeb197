import sharp from 'sharp';
import type { StoredRound } from '../candidates/conversation';
import { SelectorManifest } from './selector-manifest';

const FIT: Record<SelectorManifest['image']['resize'], keyof sharp.FitEnum> = { cover: 'cover', contain: 'contain', fill: 'fill' };

/** What of a candidate the selector's text template can draw on. */
export interface SelectorTextSource {
  caption: string;
  mentions: string[];
  rounds: StoredRound[];
}

/** A key for what `imagePixels` depends on, so preprocessed images are shared only between identical settings. */
export function preprocessingKey(manifest: SelectorManifest): string {
  const { size, resize, mean, std } = manifest.image;
  return [size, resize, ...mean, ...std].join(':');
}

/**
 * The image as `pixel_values` for one row: RGB, resized to a `size` square as the manifest says,
 * channel-first, scaled to [0, 1] and normalised with the manifest's mean and std.
 */
export async function imagePixels(bytes: Buffer, manifest: SelectorManifest): Promise<Float32Array> {
  const { size, resize, mean, std } = manifest.image;
  const { data, info } = await sharp(bytes, { failOn: 'error' })
    .flatten({ background: '#000000' })
    .toColourspace('srgb')
    .resize(size, size, { fit: FIT[resize], position: 'centre', background: '#000000' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const plane = size * size;
  const pixels = new Float32Array(3 * plane);
  const channels = info.channels;
  for (let c = 0; c < 3; c++) {
    const source = Math.min(c, channels - 1);
    const scale = 1 / (255 * std[c]);
    const shift = mean[c] / std[c];
    const offset = c * plane;
    for (let i = 0; i < plane; i++) pixels[offset + i] = data[i * channels + source] * scale - shift;
  }
  return pixels;
}

/** The selector's text for a candidate: the manifest's fields, in its order, over the rounds it selects. */
export function selectorText(source: SelectorTextSource, manifest: SelectorManifest): string {
  const { fields, rounds, separator } = manifest.text;
  const selected = rounds === 'all' ? source.rounds : source.rounds.slice(0, rounds);
  const parts: string[] = [];
  if (fields.includes('caption') && source.caption) parts.push(source.caption);
  if (fields.includes('mentions')) parts.push(...source.mentions.filter(Boolean));
  for (const round of selected) {
    for (const field of fields) {
      if (field === 'question') parts.push(round.question);
      else if (field === 'answer') parts.push(round.answers[0] ?? '');
    }
  }
  return parts.filter((p) => p.length > 0).join(separator);
}
