import DataLoader from 'dataloader';
import { RequestContext } from '../projects/request-context';
import { byKeys, groupByKeys } from '../../platform/loaders';
import { PageArgs } from '../../platform/pagination';
import { Score } from './score.entity';
import { ScoringService } from './scoring.service';

export function scorePagesByCandidateLoader(ctx: RequestContext, scoring: ScoringService, page: PageArgs): DataLoader<string, Score[]> {
  return ctx.loader(`scores.pageByCandidate:${page.first}:${page.after ?? ''}`, () =>
    new DataLoader(async (ids: readonly string[]) => groupByKeys(ids, await scoring.pagesByCandidate(ctx, ids, page), (s) => s.candidateId)),
  );
}

export function scoreCountByCandidateLoader(ctx: RequestContext, scoring: ScoringService): DataLoader<string, number> {
  return ctx.loader('scores.countByCandidate', () => new DataLoader((ids: readonly string[]) => scoring.countsByCandidate(ctx, ids)));
}

export function scoreBySelectorLoader(ctx: RequestContext, scoring: ScoringService, selectorModelId: string): DataLoader<string, Score | null> {
  return ctx.loader(`scores.bySelector:${selectorModelId}`, () =>
    new DataLoader(async (ids: readonly string[]) => byKeys(ids, await scoring.forCandidates(ctx, selectorModelId, ids), (s) => s.candidateId)),
  );
}
