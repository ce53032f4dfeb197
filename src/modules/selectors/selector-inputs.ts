import sharp from 'sharp';
import type { StoredRound } from '../candidates/conversation';
import { DEFAULT_ALPHA_BACKGROUND, SelectorManifest } from './selector-manifest';

/** What of a candidate the selector's text template can draw on. */
export interface SelectorTextSource {
  caption: string;
  mentions: string[];
  rounds: StoredRound[];
}

/** A key for what `imagePixels` depends on, so preprocessed images are shared only between identical settings. */
export function preprocessingKey(manifest: SelectorManifest): string {
  const { size, resize, mean, std, alpha, alphaBackground, exifOrientation } = manifest.image;
  return [size, resize, ...mean, ...std, alpha, ...(alpha === 'flatten' ? (alphaBackground ?? DEFAULT_ALPHA_BACKGROUND) : []), exifOrientation].join(':');
}

/** An image as full-size 8-bit RGB, interleaved, row-major. */
export interface RgbImage {
  data: Buffer;
  width: number;
  height: number;
}

/**
 * The image as a Python lab reads it before any resizing: `PIL.Image.open(f)`, then
 * `ImageOps.exif_transpose` when the manifest applies EXIF orientation, then `convert('RGB')`
 * (alpha drop) or a composite onto the background (alpha flatten). Bit-exact with PIL for 8-bit
 * images: embedded ICC profiles are ignored (PIL does not apply them), palette images keep their
 * palette colours, greyscale is repeated in R, G and B, 16-bit samples keep their high byte.
 *
 * This is a step of its own, before the resize, on purpose: in one sharp pipeline the resize
 * runs on premultiplied RGBA, so fully transparent pixels would come out black whatever `alpha` says.
 */
export async function decodeRgb(bytes: Buffer, image: SelectorManifest['image']): Promise<RgbImage> {
  let pipeline = sharp(bytes, { failOn: 'error', ignoreIcc: true });
  if (image.exifOrientation === 'apply') pipeline = pipeline.autoOrient();
  if (image.alpha === 'flatten') {
    const [r, g, b] = image.alphaBackground ?? DEFAULT_ALPHA_BACKGROUND;
    pipeline = pipeline.flatten({ background: { r, g, b } });
  } else {
    pipeline = pipeline.removeAlpha();
  }
  const { data, info } = await pipeline.toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`Expected 3 channels after conversion to RGB, got ${info.channels}`);
  return { data, width: info.width, height: info.height };
}

/**
 * The image as `pixel_values` for one row: decoded to RGB as `decodeRgb` says, resized to a
 * `size` square as the manifest says (Lanczos-3 reducing, bicubic enlarging; `cover` centre-crops,
 * `contain` letterboxes on black), channel-first, scaled to [0, 1] and normalised with the manifest's mean and std.
 * `tools/python/preprocess.py` is the same in PIL + numpy.
 */
export async function imagePixels(bytes: Buffer, manifest: SelectorManifest): Promise<Float32Array> {
  const { size, resize, mean, std } = manifest.image;
  const rgb = await decodeRgb(bytes, manifest.image);
  const { data, info } = await fitToSquare(rgb, size, resize).raw().toBuffer({ resolveWithObject: true });
  const plane = size * size;
  const pixels = new Float32Array(3 * plane);
  const channels = info.channels;
  for (let c = 0; c < 3; c++) {
    const scale = 1 / (255 * std[c]);
    const shift = mean[c] / std[c];
    const offset = c * plane;
    for (let i = 0; i < plane; i++) pixels[offset + i] = data[i * channels + c] * scale - shift;
  }
  return pixels;
}

/**
 * The resize and crop or letterbox, with the geometry spelled out rather than left to sharp's `fit`:
 * each axis is scaled by exactly target / source (as Pillow's `resize((w, h))` does), where
 * `fit: 'cover'` would use one factor for both and land up to a third of a pixel away on enlargements.
 */
function fitToSquare(rgb: RgbImage, size: number, mode: SelectorManifest['image']['resize']): sharp.Sharp {
  const image = sharp(rgb.data, { raw: { width: rgb.width, height: rgb.height, channels: 3 } });
  if (mode === 'fill') return image.resize(size, size, { fit: 'fill' });
  const { width: w, height: h } = rgb;
  const shrink = mode === 'cover' ? Math.min(w / size, h / size) : Math.max(w / size, h / size);
  // At least one pixel: a 4000 × 10 strip letterboxed into 224 would round its height to 0.
  const rw = Math.max(1, Math.floor(w / shrink + 0.5));
  const rh = Math.max(1, Math.floor(h / shrink + 0.5));
  const resized = image.resize(rw, rh, { fit: 'fill' });
  if (mode === 'cover') return resized.extract({ left: (rw - size + 1) >> 1, top: (rh - size + 1) >> 1, width: size, height: size });
  const left = (size - rw) >> 1;
  const top = (size - rh) >> 1;
  return resized.extend({ left, top, right: size - rw - left, bottom: size - rh - top, background: '#000000' });
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

/** What a preference pair compares (training and evaluation): a whole candidate, one of its rounds, or one answer of a round. */
export interface JudgedItem {
  roundIndex: number | null;
  answerIndex: number | null;
}

/**
 * The text source of one judged item, so a selector (or an encoder) scores exactly what the
 * clinician or the judge compared: one answer of a round is that round alone with that answer
 * in first place (`selectorText` reads `answers[0]`); a round without an answer index is that
 * round as generated; a whole candidate is the candidate. Caption and mentions stay, since the
 * selector sees them for every candidate.
 */
export function judgedItemSource(source: SelectorTextSource, item: JudgedItem): SelectorTextSource {
  if (item.roundIndex === null) return source;
  const round = source.rounds[item.roundIndex];
  if (!round) throw new Error(`Round ${item.roundIndex} does not exist (the candidate has ${source.rounds.length})`);
  if (item.answerIndex === null) return { ...source, rounds: [round] };
  const answer = round.answers[item.answerIndex];
  if (answer === undefined) throw new Error(`Answer ${item.answerIndex} of round ${item.roundIndex} does not exist`);
  return { ...source, rounds: [{ question: round.question, answers: [answer] }] };
}
