import crypto from 'node:crypto';
import sharp from 'sharp';
import { UserErrorCode, userError, UserErrorsException } from '../../platform/user-errors';

export interface ImageLimits {
  maxBytes: number;
  maxPixels: number;
  maxSide: number;
}

export interface InspectedImage {
  contentHash: string;
  mimeType: string;
  width: number;
  height: number;
  byteSize: number;
}

const MIME_BY_FORMAT: Record<string, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  tiff: 'image/tiff',
  gif: 'image/gif',
};

export function sha256(bytes: Buffer): string {
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

/**
 * Proves the bytes are a whole image we accept: sharp decodes every pixel (a truncated or corrupt
 * file fails here, not later in a worker), within byte, pixel and side limits. The mime type comes
 * from the decoded format, never from what the client claimed.
 */
export async function inspectImage(bytes: Buffer, limits: ImageLimits, field: string | string[] = 'file'): Promise<InspectedImage> {
  const fail = (code: UserErrorCode, message: string) => new UserErrorsException([userError(code, message, field)]);
  if (bytes.length === 0) throw fail(UserErrorCode.INVALID, 'The file is empty');
  if (bytes.length > limits.maxBytes) throw fail(UserErrorCode.TOO_LARGE, `The file is over ${limits.maxBytes} bytes`);
  let meta: sharp.Metadata;
  try {
    const image = sharp(bytes, { failOn: 'error', limitInputPixels: limits.maxPixels });
    meta = await image.metadata();
    await image.stats();
  } catch (error) {
    const reason = String((error as Error).message ?? error);
    if (/pixel limit/i.test(reason)) throw fail(UserErrorCode.TOO_LARGE, `The image has more than ${limits.maxPixels} pixels`);
    throw fail(UserErrorCode.UNSUPPORTED_MEDIA, `Not a readable image: ${reason.split('\n')[0].slice(0, 200)}`);
  }
  const mimeType = meta.format ? MIME_BY_FORMAT[meta.format] : undefined;
  if (!mimeType) throw fail(UserErrorCode.UNSUPPORTED_MEDIA, `Unsupported image format: ${meta.format ?? 'unknown'}`);
  if (!meta.width || !meta.height) throw fail(UserErrorCode.UNSUPPORTED_MEDIA, 'The image has no dimensions');
  if (meta.width > limits.maxSide || meta.height > limits.maxSide) {
    throw fail(UserErrorCode.TOO_LARGE, `The image is over ${limits.maxSide} pixels on a side`);
  }
  return { contentHash: sha256(bytes), mimeType, width: meta.width, height: meta.height, byteSize: bytes.length };
}

/** A WebP thumbnail that fits in a `size` square, keeping the aspect ratio. */
export async function makeThumbnail(bytes: Buffer, size: number): Promise<Buffer> {
  return sharp(bytes, { failOn: 'none' }).rotate().resize(size, size, { fit: 'inside', withoutEnlargement: true }).webp({ quality: 80 }).toBuffer();
}

const MODEL_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif']);

/**
 * The image as a vision model receives it: the original when it is small enough and in a format
 * the API accepts, otherwise downscaled to `maxSide` (JPEG for photos, PNG when there is alpha).
 */
export async function toModelInput(bytes: Buffer, maxSide: number): Promise<{ bytes: Buffer; contentType: string }> {
  const meta = await sharp(bytes, { failOn: 'none' }).metadata();
  const fits = (meta.width ?? 0) <= maxSide && (meta.height ?? 0) <= maxSide;
  if (fits && meta.format && MODEL_FORMATS.has(meta.format)) return { bytes, contentType: `image/${meta.format}` };
  const resized = sharp(bytes, { failOn: 'none' }).rotate().resize(maxSide, maxSide, { fit: 'inside', withoutEnlargement: true });
  if (meta.hasAlpha) return { bytes: await resized.png().toBuffer(), contentType: 'image/png' };
  return { bytes: await resized.jpeg({ quality: 90 }).toBuffer(), contentType: 'image/jpeg' };
}
