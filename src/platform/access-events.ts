import { DataSource, EntityManager } from 'typeorm';
import { logger } from './logging';
import { ReconnectingListener } from './pg-listen';

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

/** One LISTEN connection per api process (reconnecting; see ReconnectingListener). */
export class AccessChangesListener {
  private readonly handlers = new Set<AccessChangeHandler>();
  private readonly listener: ReconnectingListener;

  constructor(connectionString: string) {
    this.listener = new ReconnectingListener(connectionString, ACCESS_CHANGES_CHANNEL, {
      notification: (payload) => this.dispatch(payload),
      reconnected: () => this.emit('resync'),
    });
  }

  onChange(handler: AccessChangeHandler): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  start(): Promise<void> {
    return this.listener.start();
  }

  stop(): Promise<void> {
    return this.listener.stop();
  }

  private dispatch(payload: string | undefined): void {
    try {
      this.emit(JSON.parse(payload ?? '') as AccessChange);
    } catch {
      logger.warn('ignored a malformed access notification', { payload });
    }
  }

  private emit(change: AccessChange | 'resync'): void {
    for (const handler of this.handlers) handler(change);
  }
}
