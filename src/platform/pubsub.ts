import { DataSource } from 'typeorm';
import { createPubSub } from '@graphql-yoga/subscription';
import { logger } from './logging';
import { ReconnectingListener } from './pg-listen';

/**
 * Run progress crosses processes through Postgres LISTEN/NOTIFY. A notification carries only
 * `{runId, seq}`; subscribers re-read the run, so a lost or coalesced notification loses nothing.
 */
export const RUN_EVENTS_CHANNEL = 'run_events';

const NOTIFY_ATTEMPTS = 4;
const NOTIFY_RETRY_MS = 250;

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
    // After a database outage the pool can still hand out a connection that died with it; the next
    // try gets a fresh one. A lost final event would leave subscribers waiting, so try a few times.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.ds.query(`SELECT pg_notify($1, $2)`, [RUN_EVENTS_CHANNEL, JSON.stringify(payload)]);
        return;
      } catch (error) {
        if (attempt >= NOTIFY_ATTEMPTS) return void logger.warn('notify failed', { runId, error: String(error) });
        await new Promise((resolve) => setTimeout(resolve, NOTIFY_RETRY_MS * attempt));
      }
    }
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
  private readonly listener: ReconnectingListener;

  constructor(connectionString: string) {
    this.listener = new ReconnectingListener(connectionString, RUN_EVENTS_CHANNEL, {
      notification: (payload) => this.dispatch(payload),
      reconnected: () => {
        for (const runId of this.watched.keys()) this.local.publish('run', runId, { runId, seq: -1 });
      },
    });
  }

  start(): Promise<void> {
    return this.listener.start();
  }

  stop(): Promise<void> {
    return this.listener.stop();
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

  private dispatch(payload: string | undefined): void {
    try {
      const event = JSON.parse(payload ?? '') as RunEvent;
      if (typeof event.runId === 'string' && this.watched.has(event.runId)) this.local.publish('run', event.runId, event);
    } catch {
      logger.warn('ignored a malformed run notification', { payload });
    }
  }
}
