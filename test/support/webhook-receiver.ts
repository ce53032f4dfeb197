import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface ReceivedWebhook {
  headers: Record<string, string>;
  body: string;
  /** The parsed body when the signature verified with every secret given to `verifyWith`; null otherwise. */
  verified: unknown;
  /** Per secret: did the signature verify with it. */
  verifiedBy: boolean[];
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/**
 * A partner's webhook receiver on a real port: it verifies every delivery with the standardwebhooks
 * package (the one partners use) and answers what the test scripts, 200 by default.
 */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  private answers: Answer[] = [];
  private fallback: Answer = { status: 200, body: 'ok' };
  private secrets: string[] = [];

  private constructor(private readonly server: http.Server) {}

  static async start(hostname = '127.0.0.1'): Promise<WebhookReceiver> {
    let receiver!: WebhookReceiver;
    const server = http.createServer((req, res) => receiver.handle(req, res));
    receiver = new WebhookReceiver(server);
    await new Promise<void>((resolve) => server.listen(0, hostname, resolve));
    return receiver;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(host = '127.0.0.1', path = '/hooks'): string {
    return `http://${host}:${this.port}${path}`;
  }

  verifyWith(...secrets: string[]): void {
    this.secrets = secrets;
  }

  /** The next answers, in order; then `fallback`. */
  answerWith(answers: Answer[], fallback: Answer = { status: 200, body: 'ok' }): void {
    this.answers = [...answers];
    this.fallback = fallback;
  }

  reset(): void {
    this.received.length = 0;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
      const verifiedBy = this.secrets.map((secret) => {
        try {
          new Webhook(secret).verify(body, headers);
          return true;
        } catch {
          return false;
        }
      });
      const verified = verifiedBy.length && verifiedBy.every(Boolean) ? JSON.parse(body) : null;
      this.received.push({ headers, body, verified, verifiedBy });
      const answer = this.answers.shift() ?? this.fallback;
      res.writeHead(answer.status, answer.headers ?? {});
      res.end(answer.body ?? '');
    });
  }
}

/** Polls until `check` holds (or throws with what it last saw). */
export async function eventually<T>(what: string, read: () => Promise<T> | T, check: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await read();
  while (!check(last)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last saw ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
    last = await read();
  }
  return last;
}
