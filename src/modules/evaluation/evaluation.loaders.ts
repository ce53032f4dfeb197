import DataLoader from 'dataloader';
import { RequestContext } from '../projects/request-context';
import { groupByKeys } from '../../platform/loaders';
import { PageArgs } from '../../platform/pagination';
import { SelectorEvaluation } from './selector-evaluation.entity';
import { EvaluationService } from './evaluation.service';

export function evaluationPagesBySelectorLoader(ctx: RequestContext, evaluation: EvaluationService, page: PageArgs): DataLoader<string, SelectorEvaluation[]> {
  return ctx.loader(`evaluations.pageBySelector:${page.first}:${page.after ?? ''}`, () =>
    new DataLoader(async (ids: readonly string[]) => groupByKeys(ids, await evaluation.pagesBySelector(ctx, ids, page), (e) => e.selectorModelId!)),
  );
}

export function evaluationCountBySelectorLoader(ctx: RequestContext, evaluation: EvaluationService): DataLoader<string, number> {
  return ctx.loader('evaluations.countBySelector', () => new DataLoader((ids: readonly string[]) => evaluation.countsBySelector(ctx, ids)));
}
