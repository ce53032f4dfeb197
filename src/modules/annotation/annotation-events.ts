import { DataSource } from 'typeorm';
import { createPubSub } from '@graphql-yoga/subscription';
import { logger } from '../../platform/logging';
import { ReconnectingListener } from '../../platform/pg-listen';

/**
 * Campaign changes cross processes through Postgres LISTEN/NOTIFY, as run events do: a notification
 * carries only the campaign id and subscribers re-read the campaign, so a lost or coalesced
 * notification loses nothing.
 */
export const ANNOTATION_EVENTS_CHANNEL = 'annotation_events';

export class AnnotationEvents {
  private readonly local = createPubSub<{ campaign: [string, { campaignId: string }] }>();
  private readonly watched = new Map<string, number>();
  private listener: ReconnectingListener | null = null;
  private starting: Promise<void> | null = null;

  constructor(
    private readonly ds: DataSource,
    private readonly connectionString: string,
  ) {}

  /** Something about the campaign changed (called after the change committed). Never throws: a lost event only delays a subscriber's view. */
  async changed(campaignId: string): Promise<void> {
    try {
      await this.ds.query(`SELECT pg_notify($1, $2)`, [ANNOTATION_EVENTS_CHANNEL, JSON.stringify({ campaignId })]);
    } catch (error) {
      logger.warn('annotation notify failed', { campaignId, error: String(error) });
    }
  }

  /**
   * Events for one campaign until the returned iterator is closed. The LISTEN connection opens with
   * the first subscriber of the process, so a process nobody subscribes on holds no extra connection.
   */
  async subscribe(campaignId: string): Promise<AsyncIterableIterator<{ campaignId: string }> & { return(): Promise<IteratorResult<{ campaignId: string }>> }> {
    await this.start();
    this.watched.set(campaignId, (this.watched.get(campaignId) ?? 0) + 1);
    const events = this.local.subscribe('campaign', campaignId);
    const originalReturn = events.return.bind(events);
    events.return = (value?: unknown) => {
      const left = (this.watched.get(campaignId) ?? 1) - 1;
      if (left <= 0) this.watched.delete(campaignId);
      else this.watched.set(campaignId, left);
      return originalReturn(value as never);
    };
    return events as never;
  }

  async stop(): Promise<void> {
    const listener = this.listener;
    this.listener = null;
    this.starting = null;
    await listener?.stop();
  }

  private start(): Promise<void> {
    this.starting ??= (async () => {
      const listener = new ReconnectingListener(this.connectionString, ANNOTATION_EVENTS_CHANNEL, {
        notification: (payload) => this.dispatch(payload),
        // Notifications sent while disconnected are gone: every watched campaign is re-read.
        reconnected: () => {
          for (const campaignId of this.watched.keys()) this.local.publish('campaign', campaignId, { campaignId });
        },
      });
      await listener.start();
      this.listener = listener;
    })().catch((error) => {
      this.starting = null;
      throw error;
    });
    return this.starting;
  }

  private dispatch(payload: string | undefined): void {
    try {
      const event = JSON.parse(payload ?? '') as { campaignId: string };
      if (typeof event.campaignId === 'string' && this.watched.has(event.campaignId)) this.local.publish('campaign', event.campaignId, event);
    } catch {
      logger.warn('ignored a malformed annotation notification', { payload });
    }
  }
}
