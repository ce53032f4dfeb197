import { SafeFetcher, SafeFetchError, SafeFetchFailure } from '../../platform/safe-fetch';
import { UserErrorCode, userError, UserErrorsException } from '../../platform/user-errors';

export interface ImageFetchSettings {
  allowPrivateNetworks: boolean;
  timeoutMs: number;
  maxRedirects: number;
  maxBytes: number;
}

const CODE_BY_FAILURE: Record<SafeFetchFailure, UserErrorCode> = {
  INVALID_URL: UserErrorCode.INVALID,
  REFUSED: UserErrorCode.INVALID,
  TIMEOUT: UserErrorCode.INVALID,
  HTTP_STATUS: UserErrorCode.INVALID,
  TOO_MANY_REDIRECTS: UserErrorCode.INVALID,
  NETWORK: UserErrorCode.INVALID,
  TOO_LARGE: UserErrorCode.TOO_LARGE,
  CONTENT_TYPE: UserErrorCode.UNSUPPORTED_MEDIA,
};

/**
 * Fetches image bytes from a client's URL. A server that labels a picture `application/octet-stream`
 * is common, so that and image/* pass here; what the bytes are is decided by decoding them
 * (inspectImage), never by the header.
 */
export function createImageFetcher(settings: ImageFetchSettings): SafeFetcher {
  return new SafeFetcher({
    allowPrivateNetworks: settings.allowPrivateNetworks,
    timeoutMs: settings.timeoutMs,
    maxRedirects: settings.maxRedirects,
    maxBytes: settings.maxBytes,
    acceptContentType: (type) => type.startsWith('image/') || type === 'application/octet-stream' || type === '',
    userAgent: 'biomed-vital-image-fetch/1',
  });
}

/** The bytes at `url`, or a user error on `field` saying why not (refused, timeout, HTTP status, size, type). */
export async function fetchImageBytes(fetcher: SafeFetcher, url: string, field: string | string[]): Promise<Buffer> {
  try {
    return (await fetcher.get(url)).bytes;
  } catch (error) {
    if (!(error instanceof SafeFetchError)) throw error;
    throw new UserErrorsException([userError(CODE_BY_FAILURE[error.reason], `Could not fetch the image: ${error.message}`, field)]);
  }
}
