import { checkUrlWithoutFetching, SafeFetchError } from '../../platform/safe-fetch';

export const MAX_URL_LENGTH = 2048;

/**
 * Why a URL cannot be an endpoint, or null when it can: the same check image imports make before
 * fetching (syntax, scheme, credentials, a literal non-public address unless private networks are
 * allowed). Names are checked again at connection time by the sender's agent.
 */
export function endpointUrlProblem(raw: string, allowPrivateNetworks: boolean): string | null {
  try {
    checkUrlWithoutFetching(raw, allowPrivateNetworks);
    return null;
  } catch (error) {
    if (!(error instanceof SafeFetchError)) throw error;
    return error.reason === 'REFUSED' ? 'The address is private, loopback or link-local; webhooks must reach a public address' : error.message;
  }
}
