import DataLoader from 'dataloader';
import { RequestContext } from '../projects/request-context';
import { byKeys, groupByKeys } from '../../platform/loaders';
import { PageArgs } from '../../platform/pagination';
import { Candidate } from './candidate.entity';
import { CandidatesService } from './candidates.service';

export function candidateByIdLoader(ctx: RequestContext, candidates: CandidatesService): DataLoader<string, Candidate | null> {
  return ctx.loader('candidates.byId', () => new DataLoader(async (ids: readonly string[]) => byKeys(ids, await candidates.findByIds(ctx, ids), (c) => c.id)));
}

/** One loader per page shape, so that every image of a page asking for the same `first/after` batches together. */
export function candidatePagesByImageLoader(ctx: RequestContext, candidates: CandidatesService, page: PageArgs): DataLoader<string, Candidate[]> {
  return ctx.loader(`candidates.pageByImage:${page.first}:${page.after ?? ''}`, () =>
    new DataLoader(async (imageIds: readonly string[]) => groupByKeys(imageIds, await candidates.pagesByImage(ctx, imageIds, page), (c) => c.imageId)),
  );
}

export function candidateCountByImageLoader(ctx: RequestContext, candidates: CandidatesService): DataLoader<string, number> {
  return ctx.loader('candidates.countByImage', () => new DataLoader((imageIds: readonly string[]) => candidates.countsByImage(ctx, imageIds)));
}
