import DataLoader from 'dataloader';
import { RequestContext } from '../projects/request-context';
import { byKeys } from '../../platform/loaders';
import { SelectorModel } from './selector-model.entity';
import { SelectorsService } from './selectors.service';

export function selectorModelByIdLoader(ctx: RequestContext, selectors: SelectorsService): DataLoader<string, SelectorModel | null> {
  return ctx.loader('selectors.byId', () => new DataLoader(async (ids: readonly string[]) => byKeys(ids, await selectors.findByIds(ctx, ids), (m) => m.id)));
}
