import type { DataSource } from 'typeorm';
import type { AppConfig } from '../../platform/config';
import { connectionString } from '../../platform/db';
import { JobWorker, startJobWorker } from '../../platform/jobs';
import { withRequestId } from '../../platform/logging';
import { DeliveryJob, WEBHOOK_TASK, WebhooksService } from './webhooks.service';

/** What the delivery runner touches: the database it queues in, the webhooks service, and its slots and timings. */
export interface WebhookWorkerDeps {
  ds: DataSource;
  config: Pick<AppConfig, 'WEBHOOK_CONCURRENCY' | 'WORKER_POLL_MS' | 'WORKER_HEARTBEAT_MS' | 'WORKER_DEAD_AFTER_MS'>;
  webhooks: WebhooksService;
}

/**
 * Webhook deliveries run in a job runner of their own, with WEBHOOK_CONCURRENCY slots: a run holds
 * its slot for as long as it runs, so deliveries sharing the runs' slots would wait behind them.
 */
export function startWebhookWorker(services: WebhookWorkerDeps): Promise<JobWorker> {
  const { config } = services;
  return startJobWorker({
    connectionString: connectionString(services.ds),
    tasks: { [WEBHOOK_TASK]: (payload) => withRequestId((payload as DeliveryJob).requestId, () => services.webhooks.handleJob(payload as DeliveryJob)) },
    concurrency: config.WEBHOOK_CONCURRENCY,
    pollIntervalMs: config.WORKER_POLL_MS,
    heartbeatMs: config.WORKER_HEARTBEAT_MS,
    deadAfterMs: config.WORKER_DEAD_AFTER_MS,
  });
}
