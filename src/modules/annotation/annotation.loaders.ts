import DataLoader from 'dataloader';
import { RequestContext } from '../projects/request-context';
import { byKeys, groupByKeys } from '../../platform/loaders';
import { AnnotationCampaign } from './annotation-campaign.entity';
import { AnnotationItem } from './annotation-item.entity';
import { AnnotationPromotion } from './annotation-promotion.entity';
import { AnnotationSubmission } from './annotation-submission.entity';
import { AnnotationService, ItemCounts, ItemStats, ProgressRow } from './annotation.service';

export function campaignByIdLoader(ctx: RequestContext, annotations: AnnotationService): DataLoader<string, AnnotationCampaign | null> {
  return ctx.loader('annotation.campaignById', () => new DataLoader(async (ids: readonly string[]) => byKeys(ids, await annotations.campaignsByIds(ctx, ids), (c) => c.id)));
}

export function itemByIdLoader(ctx: RequestContext, annotations: AnnotationService): DataLoader<string, AnnotationItem | null> {
  return ctx.loader('annotation.itemById', () => new DataLoader(async (ids: readonly string[]) => byKeys(ids, await annotations.itemsByIds(ctx, ids), (i) => i.id)));
}

export function itemStatsLoader(ctx: RequestContext, annotations: AnnotationService): DataLoader<string, ItemStats> {
  return ctx.loader('annotation.itemStats', () => new DataLoader((ids: readonly string[]) => annotations.itemStats(ctx, ids)));
}

export function itemCountsLoader(ctx: RequestContext, annotations: AnnotationService): DataLoader<string, ItemCounts> {
  return ctx.loader('annotation.itemCounts', () => new DataLoader((ids: readonly string[]) => annotations.itemCounts(ctx, ids)));
}

/** Keyed by campaign, so a page of campaigns reads its progress in one statement. */
export function progressLoader(ctx: RequestContext, annotations: AnnotationService): DataLoader<AnnotationCampaign, ProgressRow[], string> {
  return ctx.loader('annotation.progress', () => new DataLoader((campaigns: readonly AnnotationCampaign[]) => annotations.progress(ctx, campaigns), { cacheKeyFn: (c) => c.id }));
}

/** Submissions per item; `onlyMine` for a clinician of a blind campaign. */
export function submissionsByItemLoader(ctx: RequestContext, annotations: AnnotationService, latestOnly: boolean, onlyMine: boolean): DataLoader<string, AnnotationSubmission[]> {
  return ctx.loader(`annotation.submissionsByItem:${latestOnly}:${onlyMine}`, () =>
    new DataLoader(async (ids: readonly string[]) => groupByKeys(ids, await annotations.submissionsOfItems(ctx, ids, latestOnly, onlyMine ? ctx.userId : null), (s) => s.itemId)),
  );
}

export function promotionByDemonstrationLoader(ctx: RequestContext, annotations: AnnotationService): DataLoader<string, AnnotationPromotion | null> {
  return ctx.loader('annotation.promotionByDemonstration', () =>
    new DataLoader(async (ids: readonly string[]) => {
      const rows = await annotations.promotionsOfDemonstrations(ctx, ids);
      // A demonstration promoted from several items: the first promotion is its origin.
      return ids.map((id) => rows.find((p) => p.demonstrationId === id) ?? null);
    }),
  );
}
