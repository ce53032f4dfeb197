import http from 'node:http';
import net from 'node:net';
import https from 'node:https';
import { RequestFilteringHttpAgent, RequestFilteringHttpsAgent } from 'request-filtering-agent';

export interface SafeFetchOptions {
  /** Private, loopback and link-local addresses are refused unless true (on-premise sources, tests). */
  allowPrivateNetworks: boolean;
  /** For the whole fetch, redirects included: connecting, waiting for headers and reading the body. */
  timeoutMs: number;
  /** The body is cut off, and the fetch fails, as soon as it passes this many bytes. */
  maxBytes: number;
  maxRedirects: number;
  /** Checked on the final response's Content-Type before its body is read. */
  acceptContentType?: (contentType: string) => boolean;
  userAgent?: string;
}

export type SafeFetchFailure = 'INVALID_URL' | 'REFUSED' | 'TIMEOUT' | 'TOO_LARGE' | 'HTTP_STATUS' | 'TOO_MANY_REDIRECTS' | 'CONTENT_TYPE' | 'NETWORK';

export class SafeFetchError extends Error {
  constructor(
    readonly reason: SafeFetchFailure,
    message: string,
  ) {
    super(message);
  }
}

export interface SafeFetchResult {
  bytes: Buffer;
  contentType: string;
  /** The URL the bytes came from, after redirects. */
  finalUrl: string;
}

/**
 * HTTP and HTTPS agents that refuse private, loopback and link-local addresses (unless allowed),
 * checked on every address a name resolves to when a socket is created: for any outgoing request
 * to a URL a client chose (webhook deliveries, image fetches).
 */
export function ssrfSafeAgents(allowPrivateNetworks: boolean): { http: http.Agent; https: https.Agent } {
  const filter = { allowPrivateIPAddress: allowPrivateNetworks, allowMetaIPAddress: allowPrivateNetworks };
  return { http: new RequestFilteringHttpAgent({ ...filter, keepAlive: false }), https: new RequestFilteringHttpsAgent({ ...filter, keepAlive: false }) };
}

/** The error request-filtering-agent raises for a refused address. */
export function isSsrfRefusal(error: Error): boolean {
  return /is not allowed\. Because/.test(error.message);
}

/**
 * An HTTP(S) GET for URLs a client gave us. request-filtering-agent checks every address a name
 * resolves to when the socket is created (before any TCP connect), so a literal private address,
 * `localhost`, or a public name that resolves to a private one (DNS rebinding) is refused alike.
 * Redirects are followed by hand, each hop through the same agents, up to `maxRedirects`.
 */
export class SafeFetcher {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;

  constructor(private readonly options: SafeFetchOptions) {
    const agents = ssrfSafeAgents(options.allowPrivateNetworks);
    this.httpAgent = agents.http;
    this.httpsAgent = agents.https;
  }

  async get(url: string): Promise<SafeFetchResult> {
    const deadline = Date.now() + this.options.timeoutMs;
    let current = parseHttpUrl(url);
    for (let hop = 0; ; hop++) {
      const answer = await this.once(current, deadline);
      if ('location' in answer) {
        if (hop >= this.options.maxRedirects) throw new SafeFetchError('TOO_MANY_REDIRECTS', `More than ${this.options.maxRedirects} redirects`);
        current = parseHttpUrl(new URL(answer.location, current).toString());
        continue;
      }
      return answer;
    }
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  private once(target: URL, deadline: number): Promise<SafeFetchResult | { location: string }> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn();
      };
      const fail = (error: SafeFetchError) => {
        settle(() => reject(error));
        request.destroy();
      };
      const client = target.protocol === 'https:' ? https : http;
      const request = client.get(
        target,
        { agent: target.protocol === 'https:' ? this.httpsAgent : this.httpAgent, headers: { 'user-agent': this.options.userAgent ?? 'biomed-vital/1', accept: 'image/*' } },
        (response) => {
          const status = response.statusCode ?? 0;
          if (status >= 300 && status < 400 && response.headers.location) {
            response.resume();
            return settle(() => resolve({ location: response.headers.location! }));
          }
          if (status < 200 || status >= 300) return fail(new SafeFetchError('HTTP_STATUS', `HTTP ${status}`));
          const contentType = String(response.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
          if (this.options.acceptContentType && !this.options.acceptContentType(contentType)) {
            return fail(new SafeFetchError('CONTENT_TYPE', `Content-Type ${contentType || '(none)'} is not accepted`));
          }
          const declared = Number(response.headers['content-length']);
          if (Number.isFinite(declared) && declared > this.options.maxBytes) return fail(tooLarge(this.options.maxBytes));
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > this.options.maxBytes) return fail(tooLarge(this.options.maxBytes));
            chunks.push(chunk);
          });
          response.on('end', () => settle(() => resolve({ bytes: Buffer.concat(chunks), contentType, finalUrl: target.toString() })));
          response.on('error', (error) => fail(new SafeFetchError('NETWORK', error.message.slice(0, 300))));
        },
      );
      const timer = setTimeout(() => fail(new SafeFetchError('TIMEOUT', `No complete answer within ${this.options.timeoutMs} ms`)), Math.max(0, deadline - Date.now()));
      request.on('error', (error) => {
        const refused = isSsrfRefusal(error);
        fail(new SafeFetchError(refused ? 'REFUSED' : 'NETWORK', refused ? `Refused: ${target.hostname} is a private, loopback or link-local address` : error.message.slice(0, 300)));
      });
    });
  }
}

function tooLarge(maxBytes: number): SafeFetchError {
  return new SafeFetchError('TOO_LARGE', `The body is over ${maxBytes} bytes`);
}

function parseHttpUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new SafeFetchError('INVALID_URL', 'Not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new SafeFetchError('INVALID_URL', 'Use an http or https URL');
  if (url.username || url.password) throw new SafeFetchError('INVALID_URL', 'Put no credentials in the URL');
  return url;
}

/**
 * Literal addresses the agents would refuse (private, loopback, link-local, unspecified, shared,
 * multicast, reserved). Only for checking a URL before fetching it: names are resolved, and every
 * address re-checked, by the agents at connect time.
 */
const NON_PUBLIC = new net.BlockList();
for (const [network, prefix] of [['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12], ['192.168.0.0', 16], ['224.0.0.0', 3]] as const) {
  NON_PUBLIC.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [['::', 127], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) NON_PUBLIC.addSubnet(network, prefix, 'ipv6');

/**
 * What can be known about a URL without fetching it: its syntax, scheme, credentials and, when
 * private networks are refused, a literal non-public address. Throws the SafeFetchError a fetch would.
 */
export function checkUrlWithoutFetching(raw: string, allowPrivateNetworks: boolean): void {
  const url = parseHttpUrl(raw);
  if (allowPrivateNetworks) return;
  let host = url.hostname.replace(/^\[|\]$/g, '');
  // An IPv4 address written as IPv6 (::ffff:7f00:1) is the IPv4 address.
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(host);
  if (mapped) host = [parseInt(mapped[1], 16) >> 8, parseInt(mapped[1], 16) & 255, parseInt(mapped[2], 16) >> 8, parseInt(mapped[2], 16) & 255].join('.');
  const family = net.isIP(host);
  if (family && NON_PUBLIC.check(host, family === 4 ? 'ipv4' : 'ipv6')) {
    throw new SafeFetchError('REFUSED', `Refused: ${url.hostname} is a private, loopback or link-local address`);
  }
}

export function isHttpUrl(value: string): boolean {
  return /^https?:\/\//i.test(value);
}
