import DataLoader from 'dataloader';
import { RequestContext } from '../projects/request-context';
import { groupByKeys } from '../../platform/loaders';
import { PageArgs } from '../../platform/pagination';
import { Preference } from './preference.entity';
import { PreferencesService } from './preferences.service';

export function preferencePagesByCandidateLoader(ctx: RequestContext, preferences: PreferencesService, page: PageArgs): DataLoader<string, Preference[]> {
  return ctx.loader(`preferences.pageByCandidate:${page.first}:${page.after ?? ''}`, () =>
    new DataLoader(async (ids: readonly string[]) => groupByKeys(ids, await preferences.pagesByCandidate(ctx, ids, page), (p) => p.candidateId)),
  );
}

export function preferenceCountByCandidateLoader(ctx: RequestContext, preferences: PreferencesService): DataLoader<string, number> {
  return ctx.loader('preferences.countByCandidate', () => new DataLoader((ids: readonly string[]) => preferences.countsByCandidate(ctx, ids)));
}
