import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { createPubSub } from '@graphql-yoga/subscription';
import { logger } from './logging';

/**
 * Run progress crosses processes through Postgres LISTEN/NOTIFY. A notification carries only
 * `{runId, seq}`; subscribers re-read the run, so a lost or coalesced notification loses nothing.
 */
export const RUN_EVENTS_CHANNEL = 'run_events';

export interface RunEvent {
  runId: string;
  seq: number;
}

/** Sends run notifications, at most one per run per interval, and the last one always. */
export class RunEventsPublisher {
  private seq = 0;
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private readonly lastSent = new Map<string, number>();

  constructor(
    private readonly ds: DataSource,
    private readonly intervalMs: number,
  ) {}

  /** Progress happened: notify now, or once the interval since the last notification has passed. */
  touch(runId: string): void {
    if (this.pending.has(runId)) return;
    const wait = (this.lastSent.get(runId) ?? 0) + this.intervalMs - Date.now();
    if (wait <= 0) return void this.send(runId);
    const timer = setTimeout(() => {
      this.pending.delete(runId);
      void this.send(runId);
    }, wait);
    timer.unref();
    this.pending.set(runId, timer);
  }

  /** A state change that must reach subscribers: notify at once, dropping any scheduled one. */
  async flush(runId: string): Promise<void> {
    const timer = this.pending.get(runId);
    if (timer) clearTimeout(timer);
    this.pending.delete(runId);
    await this.send(runId);
  }

  /** Forgets a finished run's throttle state. */
  done(runId: string): void {
    this.lastSent.delete(runId);
  }

  private async send(runId: string): Promise<void> {
    this.lastSent.set(runId, Date.now());
    const payload: RunEvent = { runId, seq: ++this.seq };
    await this.ds.query(`SELECT pg_notify($1, $2)`, [RUN_EVENTS_CHANNEL, JSON.stringify(payload)]).catch((error) => logger.warn('notify failed', { error: String(error) }));
  }
}

type Topics = { run: [string, RunEvent] };

/**
 * One LISTEN connection per api process, fanned out in memory to the subscriptions of this
 * process. After a reconnect every watched run gets an event, since notifications sent while
 * disconnected are gone.
 */
export class RunEventsListener {
  private readonly local = createPubSub<Topics>();
  private readonly watched = new Map<string, number>();
  private client: Client | null = null;
  private stopped = false;
  private retryMs = 250;
  private reconnecting = false;

  constructor(private readonly connectionString: string) {}

  async start(): Promise<void> {
    await this.connect();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.client?.end().catch(() => undefined);
    this.client = null;
  }

  /** Events for one run until the returned iterator is closed. */
  subscribe(runId: string): AsyncIterableIterator<RunEvent> & { return(): Promise<IteratorResult<RunEvent>> } {
    this.watched.set(runId, (this.watched.get(runId) ?? 0) + 1);
    const events = this.local.subscribe('run', runId);
    const release = () => {
      const left = (this.watched.get(runId) ?? 1) - 1;
      if (left <= 0) this.watched.delete(runId);
      else this.watched.set(runId, left);
    };
    const originalReturn = events.return.bind(events);
    events.return = (value?: unknown) => {
      release();
      return originalReturn(value as never);
    };
    return events as never;
  }

  private async connect(): Promise<void> {
    const client = new Client({ connectionString: this.connectionString });
    client.on('notification', (message) => this.dispatch(message.payload));
    // Only the current client's loss counts: a late 'error' or 'end' from an attempt that failed
    // during an outage must not tear down the connection that replaced it.
    client.on('error', (error) => client === this.client && this.reconnectAfter(error));
    client.on('end', () => client === this.client && this.reconnectAfter(new Error('LISTEN connection ended')));
    try {
      await client.connect();
      await client.query(`LISTEN ${RUN_EVENTS_CHANNEL}`);
    } catch (error) {
      client.removeAllListeners();
      client.on('error', () => undefined);
      void client.end().catch(() => undefined);
      throw error;
    }
    this.client = client;
    this.retryMs = 250;
  }

  private dispatch(payload: string | undefined): void {
    try {
      const event = JSON.parse(payload ?? '') as RunEvent;
      if (typeof event.runId === 'string' && this.watched.has(event.runId)) this.local.publish('run', event.runId, event);
    } catch {
      logger.warn('ignored a malformed run notification', { payload });
    }
  }

  private reconnectAfter(error: Error): void {
    if (this.stopped || this.reconnecting) return;
    this.reconnecting = true;
    // The dead client may still emit 'error' or 'end'; an 'error' with no listener would crash the process.
    this.client?.removeAllListeners();
    this.client?.on('error', () => undefined);
    this.client = null;
    logger.warn('run events connection lost; reconnecting', { error: error.message });
    const attempt = async () => {
      if (this.stopped) return;
      try {
        await this.connect();
        this.reconnecting = false;
        for (const runId of this.watched.keys()) this.local.publish('run', runId, { runId, seq: -1 });
      } catch {
        this.retryMs = Math.min(this.retryMs * 2, 10_000);
        setTimeout(attempt, this.retryMs).unref();
      }
    };
    setTimeout(attempt, this.retryMs).unref();
  }
}
