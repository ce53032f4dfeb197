import http from 'node:http';
import https from 'node:https';
import { isSsrfRefusal, ssrfSafeAgents } from '../../platform/safe-fetch';
import { WebhookAttemptOutcome } from './webhook-delivery.entity';

export const RESPONSE_EXCERPT_BYTES = 1024;

export interface SendOptions {
  allowPrivateNetworks: boolean;
  timeoutMs: number;
}

export interface SendResult {
  outcome: WebhookAttemptOutcome;
  statusCode: number | null;
  latencyMs: number;
  responseExcerpt: string | null;
  error: string | null;
  /** From a `Retry-After` header (seconds or an HTTP date), when the answer had one. */
  retryAfterMs: number | null;
}

/**
 * POSTs one signed body. The agents check every address the name resolves to at connection time,
 * so a name that resolves to a private address (DNS rebinding, /etc/hosts) is refused as surely as
 * a literal one. Redirects are not followed: a 3xx is a failed attempt.
 */
export class WebhookSender {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;

  constructor(private readonly options: SendOptions) {
    const agents = ssrfSafeAgents(options.allowPrivateNetworks);
    this.httpAgent = agents.http;
    this.httpsAgent = agents.https;
  }

  send(url: string, headers: Record<string, string>, body: string): Promise<SendResult> {
    const started = process.hrtime.bigint();
    const elapsed = () => Number((process.hrtime.bigint() - started) / 1_000_000n);
    return new Promise<SendResult>((resolve) => {
      let settled = false;
      const finish = (result: Omit<SendResult, 'latencyMs'>) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({ ...result, latencyMs: elapsed() });
      };
      const failed = (error: Error) => {
        const refused = isSsrfRefusal(error);
        finish({ outcome: refused ? WebhookAttemptOutcome.REFUSED : WebhookAttemptOutcome.FAILED, statusCode: null, responseExcerpt: null, error: error.message.slice(0, 500), retryAfterMs: null });
      };
      const target = new URL(url);
      const client = target.protocol === 'https:' ? https : http;
      const request = client.request(
        target,
        {
          method: 'POST',
          agent: target.protocol === 'https:' ? this.httpsAgent : this.httpAgent,
          headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'user-agent': 'biomed-vital-webhooks/1' },
        },
        (response) => {
          const chunks: Buffer[] = [];
          let kept = 0;
          const done = () => {
            const status = response.statusCode ?? 0;
            finish({
              outcome: status >= 200 && status < 300 ? WebhookAttemptOutcome.SUCCEEDED : WebhookAttemptOutcome.FAILED,
              statusCode: status,
              responseExcerpt: kept ? Buffer.concat(chunks).subarray(0, RESPONSE_EXCERPT_BYTES).toString('utf8') : null,
              error: status >= 200 && status < 300 ? null : `HTTP ${status}`,
              retryAfterMs: parseRetryAfter(response.headers['retry-after']),
            });
            response.destroy();
          };
          // Only the excerpt is kept; a receiver that streams a large body does not hold the worker.
          response.on('data', (chunk: Buffer) => {
            if (kept < RESPONSE_EXCERPT_BYTES) chunks.push(chunk);
            kept += chunk.length;
            if (kept >= RESPONSE_EXCERPT_BYTES) done();
          });
          response.on('end', done);
          response.on('error', (error) => failed(error));
        },
      );
      const timer = setTimeout(() => {
        request.destroy(new Error(`No answer within ${this.options.timeoutMs} ms`));
      }, this.options.timeoutMs);
      request.on('error', failed);
      request.end(body);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

export function parseRetryAfter(value: string | undefined): number | null {
  if (!value) return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}
