import DataLoader from 'dataloader';
import { RequestContext } from '../projects/request-context';
import { groupByKeys } from '../../platform/loaders';
import { PageArgs } from '../../platform/pagination';
import { WebhookAttempt } from './webhook-delivery.entity';
import { WebhooksService } from './webhooks.service';

/** One loader per page shape: every delivery of a page asking for the same `first/after` batches together. */
export function attemptPagesByDeliveryLoader(ctx: RequestContext, webhooks: WebhooksService, page: PageArgs): DataLoader<string, WebhookAttempt[]> {
  return ctx.loader(`webhooks.attemptsByDelivery:${page.first}:${page.after ?? ''}`, () =>
    new DataLoader(async (ids: readonly string[]) => groupByKeys(ids, await webhooks.attemptPages(ctx, ids, page), (a) => a.deliveryId)),
  );
}

export function attemptCountByDeliveryLoader(ctx: RequestContext, webhooks: WebhooksService): DataLoader<string, number> {
  return ctx.loader('webhooks.attemptCountByDelivery', () => new DataLoader((ids: readonly string[]) => webhooks.attemptCounts(ctx, ids)));
}
