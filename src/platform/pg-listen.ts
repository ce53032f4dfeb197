import { Client } from 'pg';
import { logger } from './logging';

export interface ChannelHandlers {
  /** A notification's payload, as sent. */
  notification(payload: string | undefined): void;
  /** Called after a lost connection is back: notifications sent meanwhile are gone, so callers re-check. */
  reconnected(): void;
}

const FIRST_RETRY_MS = 250;
const MAX_RETRY_MS = 2_000;

/**
 * One Postgres LISTEN connection on one channel that survives its database: a lost connection is
 * replaced with backoff (250 ms doubling to 2 s, so it is back within seconds of its database), and the caller hears when it is back. Used for
 * run events and access changes; each api process holds one per channel.
 */
export class ReconnectingListener {
  private client: Client | null = null;
  private stopped = false;
  private reconnecting = false;
  private retryMs = FIRST_RETRY_MS;

  constructor(
    private readonly connectionString: string,
    private readonly channel: string,
    private readonly handlers: ChannelHandlers,
  ) {}

  async start(): Promise<void> {
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const client = this.client;
    this.client = null;
    client?.removeAllListeners();
    client?.on('error', () => undefined);
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new Client({ connectionString: this.connectionString });
    client.on('notification', (message) => this.handlers.notification(message.payload));
    // Only the current client's loss counts: a late 'error' or 'end' from an attempt that failed
    // during an outage must not tear down the connection that replaced it.
    client.on('error', (error) => client === this.client && this.reconnectAfter(error));
    client.on('end', () => client === this.client && this.reconnectAfter(new Error('LISTEN connection ended')));
    try {
      await client.connect();
      await client.query(`LISTEN ${this.channel}`);
    } catch (error) {
      client.removeAllListeners();
      client.on('error', () => undefined);
      void client.end().catch(() => undefined);
      throw error;
    }
    this.client = client;
    this.retryMs = FIRST_RETRY_MS;
  }

  private reconnectAfter(error: Error): void {
    if (this.stopped || this.reconnecting) return;
    this.reconnecting = true;
    // The dead client may still emit 'error' or 'end'; an 'error' with no listener would crash the process.
    this.client?.removeAllListeners();
    this.client?.on('error', () => undefined);
    this.client = null;
    logger.warn('LISTEN connection lost; reconnecting', { channel: this.channel, error: error.message });
    const attempt = async () => {
      if (this.stopped) return;
      try {
        await this.connect();
        this.reconnecting = false;
        this.handlers.reconnected();
      } catch {
        this.retryMs = Math.min(this.retryMs * 2, MAX_RETRY_MS);
        setTimeout(attempt, this.retryMs).unref();
      }
    };
    setTimeout(attempt, this.retryMs).unref();
  }
}
