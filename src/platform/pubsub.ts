import { DataSource } from 'typeorm';
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

/**
 * One subscriber's events: at most one waits, the latest. An event carries nothing but the run's id
 * (the subscriber re-reads the run), so a subscriber still busy with an earlier one loses nothing by
 * skipping to the newest, and a slow socket cannot make the queue grow. `return()` ends it at once,
 * also while it waits for an event.
 */
class LatestEvent implements AsyncIterableIterator<RunEvent> {
  private pending: RunEvent | null = null;
  private waiting: ((result: IteratorResult<RunEvent>) => void) | null = null;
  private closed = false;

  constructor(private readonly onClose: () => void) {}

  push(event: RunEvent): void {
    if (this.closed) return;
    const waiting = this.waiting;
    if (!waiting) return void (this.pending = event);
    this.waiting = null;
    waiting({ value: event, done: false });
  }

  next(): Promise<IteratorResult<RunEvent>> {
    if (this.pending) {
      const value = this.pending;
      this.pending = null;
      return Promise.resolve({ value, done: false });
    }
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  return(): Promise<IteratorResult<RunEvent>> {
    if (!this.closed) {
      this.closed = true;
      this.pending = null;
      this.onClose();
    }
    const waiting = this.waiting;
    this.waiting = null;
    waiting?.({ value: undefined, done: true });
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/**
 * One LISTEN connection per api process, fanned out in memory to the subscriptions of this
 * process. After a reconnect every watched run gets an event, since notifications sent while
 * disconnected are gone. Every subscriber of a run gets the same event object, which is what
 * lets them share the read it causes (RunsService.findAfterEvent). Plain sets of subscribers, not
 * an EventTarget of Repeaters: with a thousand subscribers of one run, the per-subscriber
 * machinery of those was a good part of the fan-out.
 */
export class RunEventsListener {
  private readonly subscribers = new Map<string, Set<LatestEvent>>();
  private readonly listener: ReconnectingListener;

  constructor(connectionString: string) {
    this.listener = new ReconnectingListener(connectionString, RUN_EVENTS_CHANNEL, {
      notification: (payload) => this.dispatch(payload),
      reconnected: () => {
        for (const runId of this.subscribers.keys()) this.publish({ runId, seq: -1 });
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
    let subscribers = this.subscribers.get(runId);
    if (!subscribers) this.subscribers.set(runId, (subscribers = new Set()));
    const events: LatestEvent = new LatestEvent(() => {
      subscribers.delete(events);
      if (!subscribers.size && this.subscribers.get(runId) === subscribers) this.subscribers.delete(runId);
    });
    subscribers.add(events);
    return events;
  }

  private publish(event: RunEvent): void {
    for (const events of this.subscribers.get(event.runId) ?? []) events.push(event);
  }

  private dispatch(payload: string | undefined): void {
    try {
      const event = JSON.parse(payload ?? '') as RunEvent;
      if (typeof event.runId === 'string') this.publish(event);
    } catch {
      logger.warn('ignored a malformed run notification', { payload });
    }
  }
}
