import crypto from 'node:crypto';
import { DataSource, EntityManager } from 'typeorm';
import { Webhook } from 'standardwebhooks';
import { RequestContext } from '../projects/request-context';
import { Role } from '../projects/role';
import { applyKeyset, childPages, ConnectionShape, countChildren, PageArgs, SortDirection, toConnection } from '../../platform/pagination';
import { toGlobalId } from '../../platform/ids';
import { currentRequestId, logger } from '../../platform/logging';
import { userError, UserErrorCode, UserErrorsException } from '../../platform/user-errors';
import { WebhookEndpoint, WebhookEventType } from './webhook-endpoint.entity';
import { WebhookAttempt, WebhookAttemptOutcome, WebhookDelivery, WebhookDeliveryStatus, webhookMessageId } from './webhook-delivery.entity';
import { endpointUrlProblem, MAX_URL_LENGTH } from './endpoint-url';
import { SendResult, WebhookSender } from './webhook-sender';
import type { CreateWebhookEndpointInput, UpdateWebhookEndpointInput } from './webhooks.inputs';

export const WEBHOOK_TASK = 'webhook-delivery';
const attemptJobKey = (deliveryId: string, attempt: number) => `webhook:${deliveryId}:${attempt}`;

export interface WebhookSettings {
  retryScheduleMs: number[];
  allowPrivateNetworks: boolean;
  timeoutMs: number;
  disableAfterFailedDeliveries: number;
  secretGraceMs: number;
}

/** What a delivery job carries: the attempt it is meant to make, so a repeated job makes it once. */
export interface DeliveryJob {
  deliveryId: string;
  attempt: number;
  manual?: boolean;
  /** Of the request (or run) whose event this is: the worker logs the delivery with it. */
  requestId?: string;
}

/** A run as the `run.finished` event describes it. */
export interface FinishedRun {
  id: string;
  projectId: string;
  kind: string;
  status: string;
  total: number;
  done: number;
  failed: number;
  promptTokens: number;
  completionTokens: number;
  costUsd: number;
  finishedAt: Date | null;
}

const invalid = (message: string, field: string[]) => new UserErrorsException([userError(UserErrorCode.INVALID, message, field)]);
const endpointNotFound = (field: string[]) => new UserErrorsException([userError(UserErrorCode.NOT_FOUND, 'Webhook endpoint not found', field)]);

/** `whsec_` and 32 random bytes in base64, the Standard Webhooks secret format. */
export const newWebhookSecret = () => `whsec_${crypto.randomBytes(32).toString('base64')}`;

/**
 * Webhooks: endpoints (OWNER only: they hold signing secrets), the outbox written with the change
 * that causes an event, and delivery through the job queue with the Standard Webhooks retry
 * schedule. Every attempt is logged before the next is scheduled.
 */
export class WebhooksService {
  private sender: WebhookSender | null = null;

  constructor(
    private readonly ds: DataSource,
    private readonly settings: WebhookSettings,
  ) {}

  // --- endpoints -------------------------------------------------------------------------------

  async createEndpoint(ctx: RequestContext, input: CreateWebhookEndpointInput): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    ctx.assertRole(Role.OWNER);
    const url = this.checkedUrl(input.url, ['input', 'url']);
    const events = this.checkedEvents(input.events, ['input', 'events']);
    const secret = newWebhookSecret();
    const repo = this.ds.getRepository(WebhookEndpoint);
    const endpoint = await repo.save(repo.create({ projectId: ctx.projectId, url, events, description: input.description?.trim() || null, secret, enabled: true }));
    return { endpoint, secret };
  }

  async updateEndpoint(ctx: RequestContext, id: string, input: UpdateWebhookEndpointInput): Promise<WebhookEndpoint> {
    ctx.assertRole(Role.OWNER);
    const endpoint = await this.findEndpoint(ctx, id);
    if (!endpoint) throw endpointNotFound(['input', 'id']);
    if (input.url != null) endpoint.url = this.checkedUrl(input.url, ['input', 'url']);
    if (input.events != null) endpoint.events = this.checkedEvents(input.events, ['input', 'events']);
    if (input.description !== undefined) endpoint.description = input.description?.trim() || null;
    if (input.enabled != null) {
      // Enabling again starts a fresh streak: the partner says the endpoint is fixed.
      if (input.enabled && !endpoint.enabled) Object.assign(endpoint, { consecutiveFailedDeliveries: 0, disabledReason: null });
      endpoint.enabled = input.enabled;
    }
    return this.ds.getRepository(WebhookEndpoint).save(endpoint);
  }

  /** A new secret; the current one keeps signing alongside it for the grace period. */
  async rotateSecret(ctx: RequestContext, id: string): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    ctx.assertRole(Role.OWNER);
    const endpoint = await this.findEndpoint(ctx, id);
    if (!endpoint) throw endpointNotFound(['input', 'id']);
    const secret = newWebhookSecret();
    Object.assign(endpoint, { previousSecret: endpoint.secret, previousSecretExpiresAt: new Date(Date.now() + this.settings.secretGraceMs), secret });
    return { endpoint: await this.ds.getRepository(WebhookEndpoint).save(endpoint), secret };
  }

  /** Deletes the endpoint with its delivery log; queued attempts find nothing and stop. */
  async deleteEndpoint(ctx: RequestContext, id: string): Promise<string> {
    ctx.assertRole(Role.OWNER);
    const result = await this.ds.getRepository(WebhookEndpoint).delete({ id, projectId: ctx.projectId });
    if (!result.affected) throw endpointNotFound(['input', 'id']);
    return toGlobalId('WebhookEndpoint', id);
  }

  async listEndpoints(ctx: RequestContext, page: PageArgs): Promise<ConnectionShape<WebhookEndpoint>> {
    ctx.assertRole(Role.OWNER);
    const base = () => this.ds.getRepository(WebhookEndpoint).createQueryBuilder('e').where('e.projectId = :p', { p: ctx.projectId });
    const rows = await applyKeyset(base(), { sortExpr: 'e.createdAt', idExpr: 'e.id', direction: SortDirection.DESC }, page).getMany();
    return toConnection(rows, page, (e) => ({ value: e.createdAt, id: e.id }), () => base().getCount());
  }

  async findEndpoint(ctx: RequestContext, id: string): Promise<WebhookEndpoint | null> {
    if (ctx.role !== Role.OWNER) return null;
    return this.ds.getRepository(WebhookEndpoint).findOneBy({ id, projectId: ctx.projectId });
  }

  // --- delivery log ----------------------------------------------------------------------------

  async deliveries(ctx: RequestContext, endpointId: string, page: PageArgs): Promise<ConnectionShape<WebhookDelivery>> {
    ctx.assertRole(Role.OWNER);
    const base = () => this.ds.getRepository(WebhookDelivery).createQueryBuilder('d').where('d.projectId = :p AND d.endpointId = :e', { p: ctx.projectId, e: endpointId });
    const rows = await applyKeyset(base(), { sortExpr: 'd.createdAt', idExpr: 'd.id', direction: SortDirection.DESC }, page).getMany();
    return toConnection(rows, page, (d) => ({ value: d.createdAt, id: d.id }), () => base().getCount());
  }

  /** A page of attempts for each of many deliveries, in the order they were made, in one statement. */
  async attemptPages(ctx: RequestContext, deliveryIds: readonly string[], page: PageArgs): Promise<WebhookAttempt[]> {
    ctx.assertRole(Role.OWNER);
    return childPages(this.ds.getRepository(WebhookAttempt), { table: 'webhook_attempts', parentColumn: 'delivery_id', projectId: ctx.projectId, parentIds: deliveryIds, page, direction: SortDirection.ASC });
  }

  async attemptCounts(ctx: RequestContext, deliveryIds: readonly string[]): Promise<number[]> {
    ctx.assertRole(Role.OWNER);
    return countChildren(this.ds, { table: 'webhook_attempts', parentColumn: 'delivery_id', projectId: ctx.projectId, parentIds: deliveryIds });
  }

  async findDelivery(ctx: RequestContext, id: string): Promise<WebhookDelivery | null> {
    if (ctx.role !== Role.OWNER) return null;
    return this.ds.getRepository(WebhookDelivery).findOneBy({ id, projectId: ctx.projectId });
  }

  async findAttempt(ctx: RequestContext, id: string): Promise<WebhookAttempt | null> {
    if (ctx.role !== Role.OWNER) return null;
    return this.ds.getRepository(WebhookAttempt).findOneBy({ id, projectId: ctx.projectId });
  }

  /**
   * One more attempt now, with the same `webhook-id`, for a delivery that has ended (succeeded or
   * failed); a failed manual attempt is not retried. A delivery still retrying is a CONFLICT.
   */
  async redeliver(ctx: RequestContext, deliveryId: string): Promise<WebhookDelivery> {
    ctx.assertRole(Role.OWNER);
    return this.ds.transaction(async (em) => {
      const delivery = await em.getRepository(WebhookDelivery).findOne({ where: { id: deliveryId, projectId: ctx.projectId }, lock: { mode: 'pessimistic_write' } });
      if (!delivery) throw new UserErrorsException([userError(UserErrorCode.NOT_FOUND, 'Webhook delivery not found', ['input', 'deliveryId'])]);
      if (delivery.status === WebhookDeliveryStatus.PENDING) {
        throw new UserErrorsException([userError(UserErrorCode.CONFLICT, 'The delivery is still being attempted; redeliver it once it has ended', ['input', 'deliveryId'])]);
      }
      const endpoint = await em.getRepository(WebhookEndpoint).findOneBy({ id: delivery.endpointId });
      if (!endpoint?.enabled) throw new UserErrorsException([userError(UserErrorCode.CONFLICT, 'The endpoint is disabled; enable it first', ['input', 'deliveryId'])]);
      Object.assign(delivery, { status: WebhookDeliveryStatus.PENDING, nextAttemptAt: new Date() });
      await em.getRepository(WebhookDelivery).save(delivery);
      await enqueueAttempt(em, { deliveryId, attempt: delivery.attemptCount + 1, manual: true, ...(ctx.requestId ? { requestId: ctx.requestId } : {}) }, null);
      return delivery;
    });
  }

  // --- events ----------------------------------------------------------------------------------

  /**
   * Queues an event for every enabled endpoint of the project that subscribed to it, in the
   * caller's transaction. `eventKey` names what happened (`run.finished:<id>`): emitting it twice
   * queues it once per endpoint.
   */
  async emit(em: EntityManager, projectId: string, type: WebhookEventType, eventKey: string, data: Record<string, unknown>, requestId?: string | null): Promise<number> {
    const payload = { type, timestamp: new Date().toISOString(), data };
    const rows: { id: string }[] = await em.query(
      `INSERT INTO webhook_deliveries (project_id, endpoint_id, event_type, event_key, payload)
       SELECT $1, e.id, $2, $3, $4::jsonb FROM webhook_endpoints e WHERE e.project_id = $1 AND e.enabled AND $2 = ANY(e.events)
       ON CONFLICT (endpoint_id, event_key) DO NOTHING RETURNING id`,
      [projectId, type, eventKey, JSON.stringify(payload)],
    );
    for (const { id } of rows) await enqueueAttempt(em, { deliveryId: id, attempt: 1, ...(requestId ? { requestId } : {}) }, null);
    return rows.length;
  }

  async datasetCreated(em: EntityManager, dataset: { id: string; projectId: string; name: string; version: number; itemCount: number; contentHash: string | null; createdAt: Date }, requestId?: string | null): Promise<void> {
    await this.emit(em, dataset.projectId, WebhookEventType.DATASET_CREATED, `dataset.created:${dataset.id}`, {
      datasetId: toGlobalId('Dataset', dataset.id),
      projectId: toGlobalId('Project', dataset.projectId),
      name: dataset.name,
      version: dataset.version,
      itemCount: dataset.itemCount,
      contentHash: dataset.contentHash,
      createdAt: dataset.createdAt.toISOString(),
    }, requestId);
  }

  /** Called after a submission that may have completed a campaign; the event key makes a second call a no-op. */
  async campaignCompleted(em: EntityManager, campaign: { id: string; projectId: string; name: string; items: number; submissions: number }): Promise<void> {
    await this.emit(em, campaign.projectId, WebhookEventType.ANNOTATION_CAMPAIGN_COMPLETED, `annotation.campaign.completed:${campaign.id}`, {
      campaignId: toGlobalId('AnnotationCampaign', campaign.id),
      projectId: toGlobalId('Project', campaign.projectId),
      name: campaign.name,
      items: campaign.items,
      submissions: campaign.submissions,
    });
  }

  /** Called once a run has reached a terminal status (the runs module's onFinished hook). */
  async runFinished(run: FinishedRun, requestId?: string | null): Promise<void> {
    await this.ds.transaction((em) =>
      this.emit(em, run.projectId, WebhookEventType.RUN_FINISHED, `run.finished:${run.id}`, {
        runId: toGlobalId('Run', run.id),
        projectId: toGlobalId('Project', run.projectId),
        kind: run.kind,
        status: run.status,
        counters: { total: run.total, done: run.done, failed: run.failed, promptTokens: run.promptTokens, completionTokens: run.completionTokens, costUsd: run.costUsd },
        finishedAt: run.finishedAt?.toISOString() ?? null,
      }, requestId),
    );
  }

  // --- delivery --------------------------------------------------------------------------------

  /** The job queue's task: makes the attempt the job names, records it, schedules the next. */
  async handleJob(job: DeliveryJob): Promise<void> {
    const delivery = await this.ds.getRepository(WebhookDelivery).findOneBy({ id: job.deliveryId });
    // Already recorded (a repeated job), ended, or deleted with its endpoint: nothing to do.
    if (!delivery || delivery.status !== WebhookDeliveryStatus.PENDING || delivery.attemptCount + 1 !== job.attempt) return;
    const endpoint = await this.ds.getRepository(WebhookEndpoint).findOneBy({ id: delivery.endpointId });
    if (!endpoint) return;
    if (!endpoint.enabled) {
      await this.ds.query(`UPDATE webhook_deliveries SET status = 'FAILED', next_attempt_at = NULL, updated_at = now() WHERE id = $1 AND attempt_count = $2 AND status = 'PENDING'`, [delivery.id, job.attempt - 1]);
      return;
    }
    const body = JSON.stringify(delivery.payload);
    const result = await this.getSender().send(endpoint.url, signedHeaders(endpoint, delivery.id, body, new Date()), body);
    logger.info('webhook attempt', { deliveryId: delivery.id, attempt: job.attempt, outcome: result.outcome, statusCode: result.statusCode, latencyMs: result.latencyMs });
    await this.record(job, result);
  }

  /** Records the attempt and decides what follows, all in one transaction, under the delivery's lock. */
  private async record(job: DeliveryJob, result: SendResult): Promise<void> {
    await this.ds.transaction(async (em) => {
      const delivery = await em.getRepository(WebhookDelivery).findOne({ where: { id: job.deliveryId }, lock: { mode: 'pessimistic_write' } });
      if (!delivery || delivery.status !== WebhookDeliveryStatus.PENDING || delivery.attemptCount + 1 !== job.attempt) return;
      const endpoint = await em.getRepository(WebhookEndpoint).findOne({ where: { id: delivery.endpointId }, lock: { mode: 'pessimistic_write' } });
      if (!endpoint) return;
      const gone = result.statusCode === 410;
      const nextDelay = result.outcome === WebhookAttemptOutcome.SUCCEEDED || gone || job.manual ? null : this.retryDelay(job.attempt, result);
      const nextAttemptAt = nextDelay == null ? null : new Date(Date.now() + nextDelay);
      await em.getRepository(WebhookAttempt).insert({
        projectId: delivery.projectId,
        deliveryId: delivery.id,
        attemptNumber: job.attempt,
        manual: Boolean(job.manual),
        outcome: result.outcome,
        statusCode: result.statusCode,
        latencyMs: result.latencyMs,
        responseExcerpt: result.responseExcerpt,
        error: result.error,
        nextAttemptAt,
      });
      const status = result.outcome === WebhookAttemptOutcome.SUCCEEDED ? WebhookDeliveryStatus.SUCCEEDED : nextAttemptAt ? WebhookDeliveryStatus.PENDING : WebhookDeliveryStatus.FAILED;
      await em.update(WebhookDelivery, { id: delivery.id }, { attemptCount: job.attempt, status, nextAttemptAt });
      if (nextAttemptAt) await enqueueAttempt(em, { deliveryId: delivery.id, attempt: job.attempt + 1 }, nextAttemptAt);
      await em.update(WebhookEndpoint, { id: endpoint.id }, this.endpointAfter(endpoint, status, gone, Boolean(job.manual)));
    });
  }

  /** 410 disables at once; a streak of deliveries that failed every attempt disables too; a success resets it. */
  private endpointAfter(endpoint: WebhookEndpoint, status: WebhookDeliveryStatus, gone: boolean, manual: boolean): Partial<WebhookEndpoint> {
    if (gone) return { enabled: false, disabledReason: 'The endpoint answered 410 Gone' };
    if (status === WebhookDeliveryStatus.SUCCEEDED) return { consecutiveFailedDeliveries: 0 };
    if (status === WebhookDeliveryStatus.PENDING || manual) return {};
    const streak = endpoint.consecutiveFailedDeliveries + 1;
    if (streak < this.settings.disableAfterFailedDeliveries || !endpoint.enabled) return { consecutiveFailedDeliveries: streak };
    logger.warn('webhook endpoint disabled after a failure streak', { endpointId: endpoint.id, streak });
    return { consecutiveFailedDeliveries: streak, enabled: false, disabledReason: `${streak} deliveries in a row failed every attempt` };
  }

  /**
   * The wait before attempt `attempt + 1`, or null when the schedule is spent: the schedule's delay
   * with ±10% jitter (so endpoints that failed together do not retry together), or a longer
   * `Retry-After` (429, 503), never more than the schedule's longest delay.
   */
  private retryDelay(attempt: number, result: SendResult): number | null {
    const schedule = this.settings.retryScheduleMs;
    if (attempt > schedule.length) return null;
    const jittered = Math.round(schedule[attempt - 1] * (0.9 + Math.random() * 0.2));
    const asked = result.statusCode === 429 || result.statusCode === 503 ? (result.retryAfterMs ?? 0) : 0;
    return Math.min(Math.max(jittered, asked), Math.max(...schedule));
  }

  private getSender(): WebhookSender {
    this.sender ??= new WebhookSender({ allowPrivateNetworks: this.settings.allowPrivateNetworks, timeoutMs: this.settings.timeoutMs });
    return this.sender;
  }

  private checkedUrl(raw: string, field: string[]): string {
    const url = raw.trim();
    if (url.length > MAX_URL_LENGTH) throw invalid(`Use at most ${MAX_URL_LENGTH} characters`, field);
    const problem = endpointUrlProblem(url, this.settings.allowPrivateNetworks);
    if (problem) throw invalid(problem, field);
    return url;
  }

  private checkedEvents(events: WebhookEventType[], field: string[]): WebhookEventType[] {
    const unique = [...new Set(events)];
    if (!unique.length) throw invalid('Subscribe to at least one event', field);
    return unique;
  }
}

/**
 * The Standard Webhooks headers. During a rotation's grace period the body is signed with both
 * secrets, space-separated in `webhook-signature`, so verification with either succeeds.
 */
export function signedHeaders(endpoint: Pick<WebhookEndpoint, 'secret' | 'previousSecret' | 'previousSecretExpiresAt'>, deliveryId: string, body: string, at: Date): Record<string, string> {
  const id = webhookMessageId(deliveryId);
  const secrets = [endpoint.secret];
  if (endpoint.previousSecret && endpoint.previousSecretExpiresAt && endpoint.previousSecretExpiresAt > at) secrets.push(endpoint.previousSecret);
  return {
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': secrets.map((s) => new Webhook(s).sign(id, at, body)).join(' '),
  };
}

/** Queues one attempt; `runAt` null is now. Each attempt has its own job key, so scheduling the next never touches the running job. */
async function enqueueAttempt(em: EntityManager, job: DeliveryJob, runAt: Date | null): Promise<void> {
  await em.query(`SELECT graphile_worker.add_job($1, $2::json, run_at => $3::timestamptz, job_key => $4, job_key_mode => 'replace', max_attempts => 5)`, [
    WEBHOOK_TASK,
    JSON.stringify({ ...job, requestId: job.requestId ?? currentRequestId() ?? undefined }),
    runAt ?? new Date(),
    attemptJobKey(job.deliveryId, job.attempt),
  ]);
}
