import { Client } from 'pg';
import { DataSource, EntityManager } from 'typeorm';
import { logger } from './logging';

/**
 * "Who may do what" changed: a key was revoked, or a member's role in a project changed. Sent with
 * Postgres NOTIFY inside the transaction that made the change (delivered on commit), so every api
 * process hears it and re-checks the WebSocket connections opened with that key or by that member.
 */
export const ACCESS_CHANGES_CHANNEL = 'access_changes';

export type AccessChange = { apiKeyId: string } | { projectId: string; userId: string };

export async function notifyAccessChange(db: DataSource | EntityManager, change: AccessChange): Promise<void> {
  await db.query(`SELECT pg_notify($1, $2)`, [ACCESS_CHANGES_CHANNEL, JSON.stringify(change)]);
}

/** A change, or 'resync' after a lost LISTEN connection: notifications sent meanwhile are gone, so re-check everything. */
export type AccessChangeHandler = (change: AccessChange | 'resync') => void;

/** One LISTEN connection per api process; reconnects with backoff. */
export class AccessChangesListener {
  private readonly handlers = new Set<AccessChangeHandler>();
  private client: Client | null = null;
  private stopped = false;
  private reconnecting = false;
  private retryMs = 250;

  constructor(private readonly connectionString: string) {}

  onChange(handler: AccessChangeHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  async start(): Promise<void> {
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.client?.removeAllListeners();
    await this.client?.end().catch(() => undefined);
    this.client = null;
  }

  private emit(change: AccessChange | 'resync'): void {
    for (const handler of this.handlers) handler(change);
  }

  private async connect(): Promise<void> {
    const client = new Client({ connectionString: this.connectionString });
    client.on('notification', (message) => {
      try {
        this.emit(JSON.parse(message.payload ?? '') as AccessChange);
      } catch {
        logger.warn('ignored a malformed access notification', { payload: message.payload });
      }
    });
    client.on('error', (error) => this.reconnectAfter(error));
    client.on('end', () => this.reconnectAfter(new Error('LISTEN connection ended')));
    await client.connect();
    await client.query(`LISTEN ${ACCESS_CHANGES_CHANNEL}`);
    this.client = client;
    this.retryMs = 250;
  }

  private reconnectAfter(error: Error): void {
    if (this.stopped || this.reconnecting) return;
    this.reconnecting = true;
    this.client?.removeAllListeners();
    this.client?.on('error', () => undefined);
    this.client = null;
    logger.warn('access changes connection lost; reconnecting', { error: error.message });
    const attempt = async () => {
      if (this.stopped) return;
      try {
        await this.connect();
        this.reconnecting = false;
        this.emit('resync');
      } catch {
        this.retryMs = Math.min(this.retryMs * 2, 10_000);
        setTimeout(attempt, this.retryMs).unref();
      }
    };
    setTimeout(attempt, this.retryMs).unref();
  }
}
